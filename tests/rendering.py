"""Render the template fast and faithfully: copier's own run_copy, from a plain copy of the template.

Copier clones a git template for every render, compiles every Jinja source anew and runs
`git` once per written file to sync the destination's git index; over a matrix of ~1,000
renders that dominates. Rendering from a non-git copy into non-git destinations (where that
index sync is a no-op), and memoizing Jinja compilation (same source, same code), keeps
copier's output and removes the cost.
"""

from __future__ import annotations

import functools
import itertools
import shutil
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import copier._main
import jinja2
from copier import run_copy

REPO = Path(__file__).resolve().parent.parent

# The answers that change output, with every value.
CHOICES: dict[str, list[str]] = {
    "license": ["MIT", "Apache-2.0", "Proprietary"],
    "python_version": ["3.11", "3.12", "3.13"],
    "idp": ["keycloak", "auth0", "entra", "oidc"],
    "transport": ["stdio", "http", "both"],
    "trace_backend": ["console", "otlp", "jaeger", "tempo", "langfuse", "none"],
    "rate_limit_storage": ["memory", "redis"],
}
FUNCTIONAL = ("idp", "transport", "trace_backend", "rate_limit_storage")

Answers = dict[str, str]


def is_possible(answers: Mapping[str, str]) -> bool:
    """`idp` is only asked when the transport includes HTTP: stdio renders take its default."""
    return answers.get("transport") != "stdio" or answers.get("idp", "keycloak") == "keycloak"


def asked(answers: Mapping[str, str]) -> dict[str, str]:
    """The answers a render really asks for: no `idp` on a stdio-only server."""
    return {key: value for key, value in answers.items() if not (key == "idp" and answers.get("transport") == "stdio")}


def product(keys: tuple[str, ...] | None = None) -> list[Answers]:
    """Every possible combination of the given questions (all of them by default)."""
    names = list(keys or CHOICES)
    combos = [dict(zip(names, values, strict=True)) for values in itertools.product(*(CHOICES[n] for n in names))]
    return [combo for combo in combos if is_possible(combo)]


def name_of(answers: Mapping[str, str]) -> str:
    return "-".join(answers[key] for key in CHOICES if key in answers).replace(".", "")


def template_copy(destination: Path) -> Path:
    """copier.yml and template/ as a plain folder, so copier renders the working tree as is."""
    shutil.copy2(REPO / "copier.yml", destination / "copier.yml")
    shutil.copytree(REPO / "template", destination / "template")
    return destination


# Everything about an environment that changes the code Jinja generates for a source.
_CODEGEN_SETTINGS = (
    "block_start_string",
    "block_end_string",
    "variable_start_string",
    "variable_end_string",
    "comment_start_string",
    "comment_end_string",
    "line_statement_prefix",
    "line_comment_prefix",
    "trim_blocks",
    "lstrip_blocks",
    "newline_sequence",
    "keep_trailing_newline",
    "optimized",
    "autoescape",
    "finalize",
    "code_generator_class",
)

_COMPILED: dict[tuple[Any, ...], Any] = {}
_COMPILED_LOCK = threading.Lock()


def _codegen_key(env: jinja2.Environment) -> tuple[Any, ...]:
    return (
        type(env),
        *(getattr(env, setting) for setting in _CODEGEN_SETTINGS),
        tuple(sorted(env.extensions)),
        # The compiler checks filter and test names at compile time.
        tuple(sorted(env.filters)),
        tuple(sorted(env.tests)),
    )


@functools.cache
def _install_compile_cache() -> None:
    """Memoize `jinja2.Environment.compile` in this process (the harness only, never copier at large).

    Copier builds a fresh environment per render and compiles every template source (~400 per
    render) anew; the generated code depends only on the source and the settings above.
    """
    compile_source: Callable[..., Any] = jinja2.Environment.compile

    def compile_with_cache(
        self: jinja2.Environment,
        source: Any,
        name: str | None = None,
        filename: str | None = None,
        raw: bool = False,
        defer_init: bool = False,
    ) -> Any:
        if not isinstance(source, str):
            return compile_source(self, source, name, filename, raw, defer_init)
        try:
            key = (_codegen_key(self), source, name, filename, raw, defer_init)
            hash(key)
        except TypeError:  # an unhashable setting: compile as usual
            return compile_source(self, source, name, filename, raw, defer_init)
        with _COMPILED_LOCK:
            if key in _COMPILED:
                return _COMPILED[key]
        compiled = compile_source(self, source, name, filename, raw, defer_init)
        with _COMPILED_LOCK:
            _COMPILED.setdefault(key, compiled)
        return compiled

    jinja2.Environment.compile = compile_with_cache  # type: ignore[method-assign]
    # Destinations here are never git repositories: skip copier's per-file git index sync.
    copier._main.is_git_available = lambda: False  # type: ignore[attr-defined]


def render(template: Path, destination: Path, answers: Mapping[str, str], **extra: str) -> Path:
    """Render `answers` (plus any free-text `extra`) with --defaults for the rest, no --trust."""
    _install_compile_cache()
    data = {"project_name": "my-server", **answers, **extra}
    run_copy(str(template), str(destination), data=data, defaults=True, unsafe=False, quiet=True)
    return destination


def compile_cache_size() -> int:
    return len(_COMPILED)
