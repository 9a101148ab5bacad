"""`copier copy` for the harness: copier's public `run_copy`, sped up for the one copier release it was measured on.

Over a matrix of ~1,000 renders, five per-render costs of copier dominate, and each gives the same
answer every time for a plain-folder template rendered into a fresh, non-git destination:

- git probes: `git rev-parse`, `git init`, `git bundle verify`, and one `git` per written file to
  sync the destination's index (a no-op outside a repository), run under plumbum's process-wide
  chdir, which is also unsafe while renders run in threads;
- Jinja compiles every template source (~400 per render) in a fresh environment each time;
- copier.yml is parsed with pure-Python YAML on every render;
- `Worker.answers_relpath` renders the answers-file name ~150 times a render, and
  `Worker._render_context` builds the same Jinja context ~500 times (two thirds of a render's CPU).

The fast path memoizes these by patching copier's private modules, so it runs only under the exact
copier version it was written for (`WRITTEN_FOR`, the version uv.lock pins), and only while a fast
render is under way. Under any other version every render is plain `run_copy` (one at a time, for
that chdir) and `NOTICE` says so once. tests/test_render_matrix.py renders a few combinations both
ways and requires identical bytes.

`memoized()` keeps the git probes and memoizes the rest, for copier runs on git repositories (the
`copier update` tests, where the Jinja compiles alone are 60% of the CPU); those tests require an
updated project to equal a fresh copy byte for byte.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import sys
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import copier
import jinja2

WRITTEN_FOR = "9.19.1"
FAST = copier.__version__ == WRITTEN_FOR
NOTICE = (
    f"copier {copier.__version__}: fast render path (memoized config, Jinja compiles and context; no git probes)"
    if FAST
    else f"copier {copier.__version__}: plain run_copy, one render at a time "
    f"(tests/fast_copier.py's fast path is written for copier {WRITTEN_FOR}; slower, same output)"
)

_LOCK = threading.RLock()
_PLAIN = threading.Lock()  # plain renders, one at a time: copier chdirs the whole process around git


def copy_template(template: Path, destination: Path, data: Mapping[str, str], *, plain: bool = False) -> None:
    """`copier copy --defaults` of a plain-folder `template` with `data`, without --trust.

    `plain`: copier's `run_copy` alone even where the fast path would run.
    """
    arguments: dict[str, Any] = {"data": dict(data), "defaults": True, "unsafe": False, "quiet": True}
    if FAST and not plain:
        with _fast_path(plain_folder=True):
            copier.run_copy(str(template), str(destination), **arguments)
        return
    if not FAST:
        _notice_once()
    with _PLAIN:
        copier.run_copy(str(template), str(destination), **arguments)


@functools.cache
def _notice_once() -> None:
    print(NOTICE, file=sys.stderr)


def memoized() -> contextlib.AbstractContextManager[None]:
    """Copier runs inside are memoized as fast copies are, git probes kept: any template and
    destination, `run_update` included. Plain copier under another copier version."""
    return _fast_path(plain_folder=False) if FAST else contextlib.nullcontext()


# --- the fast path: patches installed while at least one fast render runs ---------------------


class _Thread(threading.local):
    plain_folder = False  # making a fast copy: a plain-folder template into a fresh destination


_active = 0
_thread = _Thread()
_originals: dict[tuple[object, str], object] = {}


@contextlib.contextmanager
def _fast_path(*, plain_folder: bool) -> Iterator[None]:
    global _active
    with _LOCK:
        if _active == 0:
            _install()
        _active += 1
    outer, _thread.plain_folder = _thread.plain_folder, plain_folder
    try:
        yield
    finally:
        _thread.plain_folder = outer
        with _LOCK:
            _active -= 1
            if _active == 0:
                for (owner, name), original in _originals.items():
                    setattr(owner, name, original)
                _originals.clear()


def _patch(owner: object, name: str, replacement: object) -> None:
    """Set `owner.name`, remembering the original for the last fast render's exit."""
    _originals[(owner, name)] = vars(owner)[name] if isinstance(owner, type) else getattr(owner, name)
    setattr(owner, name, replacement)


def _install() -> None:
    import copier._main
    import copier._template
    import copier._types

    # A fast copy's template is a plain folder and its destination a fresh one: copier's git probes
    # would answer "no VCS" anyway.
    for module in (copier._main, copier._template):
        _patch(module, "is_git_available", _git_probe(module.is_git_available))
    _patch(jinja2.Environment, "compile", _compile_with_cache(jinja2.Environment.compile))

    _patch(copier._template, "load_template_config", _load_config_once(copier._template.load_template_config))

    answers_relpath = cast(property, vars(copier._main.Worker)["answers_relpath"])
    render_phase = copier._types.Phase.RENDER

    def answers_relpath_once(worker: Any) -> Path:
        # Once the answers are final (the render phase) the answers-file name cannot change.
        if copier._types.Phase.current() != render_phase:
            return cast(Path, answers_relpath.__get__(worker))
        cached: Path | None = worker.__dict__.get("_rendering_answers_relpath")
        if cached is None:
            cached = worker.__dict__["_rendering_answers_relpath"] = answers_relpath.__get__(worker)
        return cached

    _patch(copier._main.Worker, "answers_relpath", property(answers_relpath_once))

    render_context = copier._main.Worker._render_context

    def render_context_once(worker: Any) -> Any:
        # Built for every file and path part (~500 times a render), from answers that are final in
        # the render phase. Each caller gets its own copy, `_copier_conf` included (copier sets a
        # key of it in one place), as before.
        if copier._types.Phase.current() != render_phase:
            return render_context(worker)
        cached = worker.__dict__.get("_rendering_context")
        if cached is None:
            cached = worker.__dict__["_rendering_context"] = render_context(worker)
        conf = copier._types.LazyDict(cached["_copier_conf"]._pending)
        conf._done.update(cached["_copier_conf"]._done)
        return {**cached, "_copier_conf": conf}

    _patch(copier._main.Worker, "_render_context", render_context_once)


def _git_probe(is_git_available: Callable[[], bool]) -> Callable[[], bool]:
    def git_available_unless_plain_folder() -> bool:
        return False if _thread.plain_folder else is_git_available()

    return git_available_unless_plain_folder


_CONFIGS: dict[tuple[Any, ...], Any] = {}


def _load_config_once(load_config: Callable[..., Any]) -> Callable[..., Any]:
    """copier.yml parsed once per file version; each render gets its own copy."""

    def load_config_once(conf_path: Path, quiet: bool = False) -> Any:
        stat = conf_path.stat()
        key = (str(conf_path.resolve()), stat.st_mtime_ns, stat.st_size, quiet)
        with _LOCK:
            if key not in _CONFIGS:
                _CONFIGS[key] = load_config(conf_path, quiet)
            return copy.deepcopy(_CONFIGS[key])

    return load_config_once


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
# Each environment's settings key, made on its first compile: copier sets up an environment's
# filters and tests before it renders with it, and sorting them for each of ~400 compiles a render
# was a sixth of the render.
_KEYS: weakref.WeakKeyDictionary[jinja2.Environment, tuple[Any, ...]] = weakref.WeakKeyDictionary()


def _codegen_key(env: jinja2.Environment) -> tuple[Any, ...]:
    with _LOCK:
        key = _KEYS.get(env)
        if key is None:
            key = _KEYS[env] = (
                type(env),
                *(getattr(env, setting) for setting in _CODEGEN_SETTINGS),
                tuple(sorted(env.extensions)),
                # The compiler checks filter and test names at compile time.
                tuple(sorted(env.filters)),
                tuple(sorted(env.tests)),
            )
        return key


def _compile_with_cache(compile_source: Callable[..., Any]) -> Callable[..., Any]:
    """`jinja2.Environment.compile`, memoized: the code depends only on the source, its name and the
    settings above. The file it was read from only names it in error messages, and copier reads a
    git template from a fresh clone on every run."""

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
            key = (_codegen_key(self), source, name, raw, defer_init)
            hash(key)
        except TypeError:  # an unhashable setting: compile as usual
            return compile_source(self, source, name, filename, raw, defer_init)
        with _LOCK:
            if key in _COMPILED:
                return _COMPILED[key]
        compiled = compile_source(self, source, name, filename, raw, defer_init)
        with _LOCK:
            _COMPILED.setdefault(key, compiled)
        return compiled

    return compile_with_cache
