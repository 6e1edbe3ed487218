"""The per-invoke REPORT figures, their log line, and parsing of that line.

The line follows Lambda's (`REPORT RequestId: ...\tDuration: ... ms\t...`) and adds
`Post Runtime Extensions Duration`, which Lambda only publishes as a CloudWatch metric, and
`CPU Limit`, the memory-proportional CPU share the sandbox enforces (cpu.py), or "off".
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Optional

__all__ = ["Report", "billed_ms"]


def billed_ms(duration_ms: float) -> int:
    """Lambda bills in 1 ms increments, rounding up."""
    return max(1, math.ceil(duration_ms))


@dataclass(frozen=True)
class Report:
    """One invoke's figures; `status` is success, error, timeout or failure."""

    request_id: str
    duration_ms: float
    billed_ms: int
    memory_mb: int
    max_memory_mb: int
    post_runtime_extensions_ms: float
    init_ms: Optional[float] = None
    status: str = "success"
    error_type: Optional[str] = None
    #: the sandbox's own field: the memory-proportional CPU share in force ("0.289 vCPU"), or "off"
    cpu_limit: str = ""

    def line(self) -> str:
        parts = [
            f"REPORT RequestId: {self.request_id}",
            f"Duration: {self.duration_ms:.2f} ms",
            f"Billed Duration: {self.billed_ms} ms",
            f"Memory Size: {self.memory_mb} MB",
            f"Max Memory Used: {self.max_memory_mb} MB",
        ]
        if self.init_ms is not None:
            parts.append(f"Init Duration: {self.init_ms:.2f} ms")
        parts.append(f"Post Runtime Extensions Duration: {self.post_runtime_extensions_ms:.2f} ms")
        if self.cpu_limit:
            parts.append(f"CPU Limit: {self.cpu_limit}")
        if self.status != "success":
            parts.append(f"Status: {self.status}")
        if self.error_type:
            parts.append(f"Error Type: {self.error_type}")
        return "\t".join(parts)

    @classmethod
    def parse(cls, line: str) -> "Report":
        """Inverse of `line()`; raises ValueError on a line that is not a REPORT."""
        if not line.startswith("REPORT "):
            raise ValueError(f"not a REPORT line: {line!r}")
        fields = dict(_FIELD.findall(line[len("REPORT "):]))

        def num(key: str) -> float:
            return float(fields[key].split()[0])

        return cls(
            request_id=fields["RequestId"],
            duration_ms=num("Duration"),
            billed_ms=int(num("Billed Duration")),
            memory_mb=int(num("Memory Size")),
            max_memory_mb=int(num("Max Memory Used")),
            post_runtime_extensions_ms=num("Post Runtime Extensions Duration"),
            init_ms=num("Init Duration") if "Init Duration" in fields else None,
            status=fields.get("Status", "success"),
            error_type=fields.get("Error Type"),
            cpu_limit=fields.get("CPU Limit", ""),
        )


_FIELD = re.compile(r"([A-Za-z ]+): ([^\t]+)")
