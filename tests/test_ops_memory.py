"""Memory freed by one phase of a fit goes back to the OS before the next."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Allocates 600 MB in 4 MB blocks under the command line's malloc settings, frees it, and prints
# the resident MB after the free and after return_freed_memory().
PROBE = """
import torch
from rbfield.ops import keep_freed_memory_mapped, return_freed_memory

def resident_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024

assert keep_freed_memory_mapped()
blocks = [torch.ones(2**20) for _ in range(150)]
del blocks
kept = resident_mb()
return_freed_memory()
print(kept, resident_mb())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings are Linux-only")
def test_freed_blocks_leave_the_process_once_returned():
    completed = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    kept, returned = (int(word) for word in completed.stdout.split())
    assert kept - returned > 400, f"resident {kept} MB after freeing 600 MB, {returned} MB after returning it"
