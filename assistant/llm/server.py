"""What every model server we start has in common: a child process, `running`, and `with` support."""

from __future__ import annotations

import subprocess
from types import TracebackType
from typing import Self


class ManagedServer:
    """Base of LlamaCppServer and VLLMServer; subclasses set `_proc` and implement start/stop."""

    _proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
