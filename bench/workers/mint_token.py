"""Print one dev access token for the generated server (settings from the environment).

Run by the bench with the rendered project's Python: `python mint_token.py PACKAGE TENANT SCOPE...`.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any


def main() -> None:
    package, tenant, *scopes = sys.argv[1:]
    settings_module: Any = importlib.import_module(f"{package}.settings")
    dev: Any = importlib.import_module(f"{package}.auth.dev")
    settings = settings_module.Settings(transport="http")
    print(dev.mint_token(settings, subject="bench-user", tenant=tenant, scopes=scopes, expires_in=7200))


if __name__ == "__main__":
    main()
