import os
import subprocess
import sys
from pathlib import Path

import pytest

from tailor.zoo import models


@pytest.mark.slow
def test_two_cpu_processes_end_with_identical_weights(tmp_path):
    models.resolve("tiny-vit")  # build the tiny model once, before two ranks race for the cache
    worker = Path(__file__).with_name("ddp_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(worker), str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [(tmp_path / f"rank{r}.txt").read_text().split() for r in (0, 1)]
    assert ranks[0][0] == ranks[1][0] == "2"  # really two processes in one process group
    assert ranks[0][1] == ranks[1][1]  # gradients were all-reduced: identical weights
