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
from collections.abc import Iterator, Mapping
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


@functools.cache
def _install_compile_cache() -> None:
    compile_source = jinja2.Environment.compile

    @functools.lru_cache(maxsize=4096)
    def cached(env_id: int, source: str, name: str | None, filename: str | None, raw: bool, defer: bool) -> Any:
        return compile_source(_ENVIRONMENTS[env_id], source, name, filename, raw, defer)

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
        # Environments of one render differ only by object identity: key by their settings.
        key = hash((type(self), tuple(sorted(self.filters)), self.block_start_string, self.keep_trailing_newline))
        _ENVIRONMENTS.setdefault(key, self)
        return cached(key, source, name, filename, raw, defer_init)

    jinja2.Environment.compile = compile_with_cache  # type: ignore[method-assign]
    # Destinations here are never git repositories: skip the per-file git index sync.
    copier._main.is_git_available = lambda: False  # type: ignore[attr-defined]


_ENVIRONMENTS: dict[int, jinja2.Environment] = {}


def render(template: Path, destination: Path, answers: Mapping[str, str], **extra: str) -> Path:
    """Render `answers` (plus any free-text `extra`) with --defaults for the rest, no --trust."""
    _install_compile_cache()
    data = {"project_name": "my-server", **answers, **extra}
    run_copy(str(template), str(destination), data=data, defaults=True, unsafe=False, quiet=True)
    return destination


def files_of(root: Path) -> Iterator[Path]:
    return (path for path in sorted(root.rglob("*")) if path.is_file() and ".git" not in path.parts)
