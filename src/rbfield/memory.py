"""Memory the system can hand out, for refusing early what will not fit (no heavy imports)."""

from __future__ import annotations

import contextlib
import os


def available_memory() -> int:
    """Bytes of memory the system can hand out now: MemAvailable from /proc/meminfo where there is
    one, else free pages x page size."""
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo") as file:
        for line in file:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def amount(size: float) -> str:
    """Bytes as '3.00 GB' or '12.5 MB'."""
    return f"{size / 1e9:.2f} GB" if size >= 1e8 else f"{size / 1e6:.1f} MB"
