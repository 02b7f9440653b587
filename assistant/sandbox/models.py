"""What a sandbox run is allowed to use, what comes back, and the error when no sandbox can be built."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from index.errors import UserFacingError


class SandboxUnavailable(UserFacingError):
    """No isolation is possible on this machine; code is never run unsandboxed instead."""


class SandboxLimits(BaseModel):
    """Per-run caps. `memory_mb` is all the memory a run may hold: its /tmp tmpfs (`tmp_mb`) and its
    address space (RLIMIT_AS = memory_mb - tmp_mb, mapped libraries included, not just heap), so filling
    /tmp cannot add to the limit (issue 25: a 1 GB run held 1.16 GB of host memory)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout_s: float = Field(10.0, gt=0, description="wall clock; the whole process tree is killed after it")
    memory_mb: int = Field(1024, gt=0, description="all the run may hold: address space plus its /tmp")
    cpu_s: int = Field(10, gt=0)
    max_procs: int = Field(64, gt=0, description="processes and threads of this run")
    max_file_mb: int = Field(16, gt=0, description="largest file the code may write")
    max_open_files: int = Field(
        256, gt=0, description="open files; bounds socket and pipe buffers, memory RLIMIT_AS misses"
    )
    max_output_bytes: int = Field(64_000, gt=0, description="kept per stream; the rest is dropped")
    tmp_mb: int = Field(128, gt=0, description="size of the writable /tmp tmpfs, part of memory_mb")
    max_images: int = Field(16, ge=0, description="PNGs returned from the figures directory")
    max_image_mb: int = Field(8, gt=0, description="largest PNG returned; bigger ones are skipped")
    max_images_total_mb: int = Field(24, gt=0, description="all returned PNGs together")

    @model_validator(mode="after")
    def _tmp_within_memory(self) -> SandboxLimits:
        if self.address_space_mb < 128:
            raise ValueError(
                f"sandbox.memory_mb ({self.memory_mb}) must exceed sandbox.tmp_mb ({self.tmp_mb}) by at least "
                "128: /tmp is part of the run's memory"
            )
        return self

    @property
    def address_space_mb(self) -> int:
        """RLIMIT_AS: the memory budget less what /tmp may hold."""
        return self.memory_mb - self.tmp_mb


@dataclass
class SandboxResult:
    """How a snippet ended. `exit_code` is negative (-N) when a signal killed it, as in `subprocess`."""

    stdout: str
    stderr: str
    exit_code: int
    timed_out: bool
    killed_reason: str | None  # None | "timeout" | "output" | "memory" | "cpu" | "signal N"
    duration_s: float
    truncated: bool  # stdout or stderr went past max_output_bytes
    images: list[bytes] = field(default_factory=list)  # PNG bytes, in file-name order
    images_skipped: list[str] = field(default_factory=list)  # "name: why" for each PNG not returned

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.killed_reason is None

    def to_json(self, include_images: bool = False) -> dict[str, Any]:
        """The run as plain JSON; images (base64) only when asked, since they can be large."""
        payload: dict[str, Any] = {
            "stdout": self.stdout,
            "stderr": self.stderr,
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "killed_reason": self.killed_reason,
            "duration_s": round(self.duration_s, 3),
            "truncated": self.truncated,
            "images_skipped": self.images_skipped,
        }
        if include_images:
            payload["images"] = [base64.b64encode(image).decode("ascii") for image in self.images]
        return payload
