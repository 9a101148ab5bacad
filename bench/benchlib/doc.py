"""docs/benchmarks.md: the bench rewrites only the block between its markers; the prose around it stays."""

from __future__ import annotations

from pathlib import Path

BEGIN = "<!-- bench:begin: written by ./bench/run, replaced on every run -->"
END = "<!-- bench:end -->"

SKELETON = f"""# Benchmarks: what the production stack costs over bare FastMCP

The prose around the block below is written by hand; `./bench/run` rewrites only the block.

## Latest run

{BEGIN}
{END}
"""


def write(path: Path, lines: list[str]) -> None:
    """Put `lines` between the markers of `path` (created from the skeleton if missing)."""
    text = path.read_text() if path.exists() else SKELETON
    if BEGIN not in text or END not in text:
        raise ValueError(f"{path} has lost its bench markers; restore them ({BEGIN!r} ... {END!r})")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + BEGIN + "\n" + "\n".join(lines) + "\n" + END + tail)
