"""Render the template fast and faithfully: copier's own run_copy, from a plain copy of the template.

Copier clones a git template for every render, compiles every Jinja source anew and runs
`git` once per written file to sync the destination's git index; over a matrix of ~1,000
renders that dominates. Rendering from a non-git copy into non-git destinations (where that
index sync is a no-op), and memoizing Jinja compilation (same source, same code), keeps
copier's output and removes the cost.
"""

from __future__ import annotations

import copy
import functools
import itertools
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, cast

import copier._main
import copier._template
import copier._types
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
_CACHE_LOCK = threading.Lock()


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
        with _CACHE_LOCK:
            if key in _COMPILED:
                return _COMPILED[key]
        compiled = compile_source(self, source, name, filename, raw, defer_init)
        with _CACHE_LOCK:
            _COMPILED.setdefault(key, compiled)
        return compiled

    jinja2.Environment.compile = compile_with_cache  # type: ignore[method-assign]
    _memoize_copier_config_and_answers_path()
    # The template is a plain folder and destinations are never git repositories, so copier's
    # git probes answer "no VCS" anyway: skip them. Per render that saves the per-file git index
    # sync and `git rev-parse`, `git init` and `git bundle verify` subprocesses run under a
    # process-wide chdir (plumbum's local.cwd), unsafe while renders run in threads.
    copier._main.is_git_available = lambda: False  # type: ignore[attr-defined]
    copier._template.is_git_available = lambda: False  # type: ignore[attr-defined]


def _memoize_copier_config_and_answers_path() -> None:
    """Two more per-render costs that give the same answer every time (about a third of a render).

    copier.yml is parsed with pure-Python YAML on every render: parse it once per file version and
    hand each render its own copy. `Worker.answers_relpath` renders the answers-file name with a
    fresh Jinja context each time it is read (~150 times a render); once the answers are final
    (the render phase) it cannot change, so one reading per render serves.
    """
    load_config: Callable[..., Any] = copier._template.load_template_config
    configs: dict[tuple[Any, ...], Any] = {}

    def load_config_once(conf_path: Path, quiet: bool = False) -> Any:
        stat = conf_path.stat()
        key = (str(conf_path.resolve()), stat.st_mtime_ns, stat.st_size, quiet)
        with _CACHE_LOCK:
            if key not in configs:
                configs[key] = load_config(conf_path, quiet)
            return copy.deepcopy(configs[key])

    copier._template.load_template_config = load_config_once

    answers_relpath = cast(property, vars(copier._main.Worker)["answers_relpath"])

    def answers_relpath_once(worker: copier._main.Worker) -> Path:
        if copier._types.Phase.current() != copier._types.Phase.RENDER:
            return cast(Path, answers_relpath.__get__(worker))
        cached: Path | None = worker.__dict__.get("_rendering_answers_relpath")
        if cached is None:
            cached = worker.__dict__["_rendering_answers_relpath"] = answers_relpath.__get__(worker)
        return cached

    setattr(copier._main.Worker, "answers_relpath", property(answers_relpath_once))  # noqa: B010 - a read-only property


def render(template: Path, destination: Path, answers: Mapping[str, str], **extra: str) -> Path:
    """Render `answers` (plus any free-text `extra`) with --defaults for the rest, no --trust."""
    _install_compile_cache()
    data = {"project_name": "my-server", **answers, **extra}
    run_copy(str(template), str(destination), data=data, defaults=True, unsafe=False, quiet=True)
    return destination


def compile_cache_size() -> int:
    return len(_COMPILED)


def render_twice(template: str, first: str, second: str, combos: list[Answers]) -> list[str]:
    """Render each combination into `first`/<name> and `second`/<name> (a process-pool job)."""
    names = []
    for answers in combos:
        name = name_of(answers)
        for root in (first, second):
            render(Path(template), Path(root) / name, answers)
        names.append(name)
    return names


def _lowest_priority() -> None:
    os.nice(19)  # only idle CPU: the generated projects' timing-sensitive tests run meanwhile


class BackgroundMatrix:
    """The render matrix, started early in niced worker processes; `result()` waits for it.

    Generated projects spend about half their wall time waiting (subprocess start-up,
    sockets, sleeps), so the CPU-bound renders fill those gaps instead of adding minutes.
    """

    def __init__(self, template: Path, first: Path, second: Path, combos: list[Answers], workers: int) -> None:
        self.first, self.second, self.workers = first, second, workers
        self.started = time.perf_counter()
        self._done: list[float] = []
        self._pool = ProcessPoolExecutor(max_workers=workers, initializer=_lowest_priority)
        chunks = [combos[start : start + 8] for start in range(0, len(combos), 8)]
        self._futures = [
            self._pool.submit(render_twice, str(template), str(first), str(second), chunk) for chunk in chunks
        ]
        for future in self._futures:
            future.add_done_callback(lambda _: self._done.append(time.perf_counter()))

    def result(self) -> tuple[list[str], float]:
        """Every rendered name (product order) and the wall time from start to the last render."""
        names = [name for future in self._futures for name in future.result()]
        self._pool.shutdown()
        return names, max(self._done) - self.started

    def cancel(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
