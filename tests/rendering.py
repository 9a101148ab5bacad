"""Render the template the way a user does: `copier copy --defaults` from a plain copy of the working tree.

Every render of the harness goes through `render` (tests/fast_copier.py decides how copier runs);
`BackgroundMatrix` renders the whole answer space (tests/answer_space.py) in worker processes.
"""

from __future__ import annotations

import multiprocessing
import shutil
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from answer_space import Answers, name_of
from fast_copier import copy_template

REPO = Path(__file__).resolve().parent.parent


def template_copy(destination: Path) -> Path:
    """copier.yml and template/ as a plain folder, so copier renders the working tree as is."""
    shutil.copy2(REPO / "copier.yml", destination / "copier.yml")
    shutil.copytree(REPO / "template", destination / "template")
    return destination


def render(template: Path, destination: Path, answers: Mapping[str, str], *, plain: bool = False) -> Path:
    """Render `answers` (choices and free text; project_name "my-server" unless given) with --defaults
    for the rest, no --trust. `plain`: copier's `run_copy` alone, whatever copier version is installed."""
    copy_template(template, destination, {"project_name": "my-server", **answers}, plain=plain)
    return destination


def process_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes from a fork server, never forked from this one: fixtures work in threads
    meanwhile (the Jaeger stack renders and serves), and a fork copies any lock one of them holds
    (a copier render deadlocked on functools.cached_property's lock)."""
    context = multiprocessing.get_context("forkserver")
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


def render_chunk(template: str, first: str, second: str, combos: list[tuple[Answers, bool]]) -> list[str]:
    """Render each combination into `first`/<name>, and again into `second`/<name> when marked (a pool job)."""
    names = []
    for answers, twice in combos:
        name = name_of(answers)
        for root in (first, second) if twice else (first,):
            render(Path(template), Path(root) / name, answers)
        names.append(name)
    return names


class BackgroundMatrix:
    """The render matrix, started early in worker processes; `result()` waits for it.

    Every combination renders into `first`; those in `twins` render a second time into `second`
    (the determinism check). The renders run beside the generated projects at the same priority:
    niced, they waited for the projects' idle moments and ended with them, and the checks of
    every render then ran alone on one core (a minute); now those checks run while the projects do.
    """

    def __init__(
        self, template: Path, first: Path, second: Path, combos: list[Answers], twins: list[Answers], workers: int
    ) -> None:
        self.first, self.second, self.workers = first, second, workers
        self.combos = combos
        self.renders = len(combos) + len(twins)
        self.started = time.perf_counter()
        self._done: list[float] = []
        self._pool = process_pool(workers)
        marked = [(answers, answers in twins) for answers in combos]
        chunks = [marked[start : start + 8] for start in range(0, len(marked), 8)]
        self._futures = [
            self._pool.submit(render_chunk, str(template), str(first), str(second), chunk) for chunk in chunks
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
