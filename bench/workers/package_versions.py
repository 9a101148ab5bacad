"""Print the Python version and the versions of the packages the bench report names, as JSON.

Run by the bench with the rendered project's Python: `python package_versions.py`.
"""

from __future__ import annotations

import json
import platform
from importlib.metadata import version

PACKAGES = ("fastmcp", "mcp", "uvicorn", "starlette", "opentelemetry-sdk", "limits", "redis", "joserfc", "pydantic")


def main() -> None:
    print(json.dumps({"python": platform.python_version(), **{name: version(name) for name in PACKAGES}}))


if __name__ == "__main__":
    main()
