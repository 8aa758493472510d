"""utils/memory.py: freed memory kept for reuse, so that large arrays cost no page faults."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# 10 rounds of four 4 MB arrays alive at once, then freed: under glibc's defaults the heap's free
# top exceeds its trim threshold and goes back to the system, so every round faults afresh.
PROGRAM = """
import resource
import numpy as np
from utils.memory import keep_freed_memory

def faults():
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        arrays = [np.ones(1_000_000, dtype=np.float32) for _ in range(4)]
        del arrays
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start

faults()
before = faults()
kept = keep_freed_memory()
assert keep_freed_memory() == kept  # idempotent
faults()
print(kept, before, faults())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_keep_freed_memory_removes_the_page_faults_of_large_arrays():
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, env=environment, capture_output=True, text=True,
                         check=True).stdout.split()
    kept, before, after = out[0] == "True", int(out[1]), int(out[2])
    assert kept
    assert before > 10_000  # 10 x 16 MB of fresh pages: glibc's defaults give the memory back
    assert after < before / 100
