"""The repro driver end to end on tiny models and real zoo data (a few steps; checks files, not numbers)."""

import json

import pytest

from tailor.methods.selfdistill import repro
from tailor.zoo.data import list_datasets


@pytest.mark.integration
@pytest.mark.slow
def test_repro_writes_results_table_and_plots(tmp_path, monkeypatch):
    if not any(d.name == "tweets2016" and d.available() for d in list_datasets()):
        pytest.skip("tweets2016 is not installed")
    ft = {"steps": 2, "batch_size": 8, "log_every": 1, "eval_batch_size": 32}
    pt = {"steps": 2, "batch_size": 8, "head_warmup_steps": 1, "log_every": 1}
    task = repro.Task(
        "tweets2016",
        "tiny-bert",
        {"name": "tweets2016", "train_size": 16, "test_size": 16, "max_length": 16},
        "macro_f1",
        ft,
        pt,
    )
    monkeypatch.setattr(
        repro, "profiles", lambda: {"quick": repro.Profile(tasks=(task,), methods=repro.CORE, sweep=(8, 16))}
    )
    results = repro.run("quick", tmp_path, seeds=[0, 1])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["tasks"]["tweets2016"]["methods"]) == set(repro.CORE)
    assert len(saved["tasks"]["tweets2016"]["methods"]["self_distill"]["per_seed"]) == 2
    assert set(results["sweep"]["by_size"]) == {"8", "16"}
    assert (tmp_path / "methods.png").stat().st_size > 0 and (tmp_path / "sweep.png").stat().st_size > 0
    assert "self_distill" in (tmp_path / "table.md").read_text()
    # the teacher's further_pretrain stage ran once per seed and was shared with self_distill
    sd_run = saved["tasks"]["tweets2016"]["methods"]["self_distill"]["run"]
    fpt_run = saved["tasks"]["tweets2016"]["methods"]["further_pretrain"]["run"]
    for seed in (0, 1):
        a = tmp_path / "runs" / sd_run.split("/runs/")[-1] / f"seed-{seed}" / "01-further_pretrain" / "done.json"
        b = tmp_path / "runs" / fpt_run.split("/runs/")[-1] / f"seed-{seed}" / "01-further_pretrain" / "done.json"
        assert a.stat().st_ino == b.stat().st_ino
