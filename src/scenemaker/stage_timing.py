"""Seconds and peak resident memory of each pipeline stage (report.json)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StageTimer:
    seconds: dict = field(default_factory=dict)
    peak_rss_mb: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def reset_peak_rss() -> None:
    """Linux: reset the process's peak resident memory (VmHWM) so each stage gets its own."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_mb() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None
