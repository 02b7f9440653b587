"""Sandbox for untrusted Python snippets (written by a model that may have read hostile documents)."""

from assistant.sandbox.command import FIGURES_DIR, check_sandbox
from assistant.sandbox.models import SandboxLimits, SandboxResult, SandboxUnavailable
from assistant.sandbox.runner import run_python

__all__ = [
    "FIGURES_DIR",
    "SandboxLimits",
    "SandboxResult",
    "SandboxUnavailable",
    "check_sandbox",
    "run_python",
]
