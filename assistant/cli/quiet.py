"""Keep third-party progress bars and warnings off the terminal unless `ra --verbose`.

Why: `ra ask` streams its answer on stdout and our own progress on stderr; transformers' "Loading weights"
bars, onnxruntime's root-logger warning during quantisation and HF hub / tokenizers notices interleave with
both and tell a user nothing they can act on. Our own loggers (assistant, index, eval, ui) still print
warnings; other libraries only errors. Environment variables carry the setting into subprocesses (the vLLM
worker, `ra serve`) and into libraries imported later (every model import here is lazy).
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

OWN_PACKAGES = ("assistant", "index", "eval", "ui", "__main__")

QUIET_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_VERBOSITY": "error",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "TQDM_DISABLE": "1",
    "PYTHONWARNINGS": "ignore",
}


class _OwnWarningsOrErrors(logging.Filter):
    """Pass our packages' records at WARNING and up, everybody else's at ERROR and up."""

    def filter(self, record: logging.LogRecord) -> bool:
        own = record.name.split(".", 1)[0] in OWN_PACKAGES
        return record.levelno >= (logging.WARNING if own else logging.ERROR)


def configure_output(verbose: bool) -> None:
    """Called once per `ra` invocation, before any model library is imported; `verbose` changes nothing."""
    if verbose:
        return
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    warnings.filterwarnings("ignore")
    warnings.filterwarnings("default", module=r"(assistant|index|eval|ui)(\.|$)")
    root = logging.getLogger()
    # A root handler also stops `logging.warning()` (onnxruntime's) from installing basicConfig's own.
    if not any(isinstance(f, _OwnWarningsOrErrors) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.addFilter(_OwnWarningsOrErrors())
        root.addHandler(handler)
