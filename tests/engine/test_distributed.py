import os
import subprocess
import sys
from pathlib import Path

import pytest

from tailor.artifacts import Artifact, load_model
from tailor.zoo import models
from tests.conftest import needs


def _torchrun(worker: str, out: Path, *model_names: str) -> None:
    """Run a worker script in this folder on two CPU processes (gloo), as `torchrun` would."""
    for name in model_names:  # build tiny models once, before two ranks race for the cache
        models.resolve(name)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(Path(__file__).with_name(worker)), str(out)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
def test_two_cpu_processes_end_with_identical_weights(tmp_path):
    _torchrun("ddp_worker.py", tmp_path, "tiny-vit")
    ranks = [(tmp_path / f"rank{r}.txt").read_text().split() for r in (0, 1)]
    assert ranks[0][0] == ranks[1][0] == "2"  # really two processes in one process group
    assert ranks[0][1] == ranks[1][1]  # gradients were all-reduced: identical weights


@pytest.mark.slow
@pytest.mark.integration
@needs("orangecontrib.text")  # tweets2016
def test_method_stages_write_once_under_two_processes(tmp_path):
    _torchrun("ddp_stages_worker.py", tmp_path, "tiny-bert", "tiny-resnet")
    assert (tmp_path / "rank0.done").is_file() and (tmp_path / "rank1.done").is_file()
    stage_dirs = sorted(tmp_path.glob("*/seed-0/*"))
    assert len(stage_dirs) == 7 and all((d / "done.json").is_file() for d in stage_dirs)
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]  # no write left half-done
    for d in stage_dirs:  # every artifact the ranks wrote loads back
        num_labels = 5 if d.parts[-3].startswith("tickets") else 2  # digits 0-4 / 5-9, or tweets2016
        load_model(Artifact.load(d / "model"), "classifier", num_labels)
