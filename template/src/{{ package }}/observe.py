"""Deprecated: tools import `record_arguments` from the toolkit module. Removed in 0.4.0.

Tools and a `tools/__init__.py` written before release 0.3.0 import from here; this module keeps
them importing after `copier update`, and says what to change.
"""

from __future__ import annotations

import warnings

from .audit import record_arguments, recorded_arguments

__all__ = ["record_arguments", "recorded_arguments"]

warnings.warn(
    f"{__name__} is deprecated and goes in 0.4.0: in your tools, import record_arguments (and caller, "
    f"rate_limit, tool, ...) from {__package__}.toolkit; a tools/__init__.py that lists TOOL_FUNCTIONS "
    "can be emptied, since tools register themselves (the template's UPGRADING.md, 0.3.0)",
    DeprecationWarning,
    stacklevel=2,
)
