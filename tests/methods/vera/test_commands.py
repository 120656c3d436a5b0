"""`tailor predict` over several adapters, the repro's experiment plan and the bench's measurements."""

import json

import pytest
import torch

from tailor.artifacts import Artifact, save_hf
from tailor.methods.vera import bench, repro
from tailor.methods.vera.adapters import build_vera, save_adapter
from tailor.methods.vera.commands import predict
from tailor.methods.vera.config import VeraFields
from tailor.methods.vera.stages import base_record
from tailor.zoo import models as zoo

from .conftest import randomize_adapter


def _adapters(tmp_path, n=3):
    base_art = save_hf(zoo.load("tiny-bert", "classifier", num_labels=3), tmp_path / "base", "tiny-bert")
    dirs, models = [], []
    for i in range(n):
        model = build_vera(zoo.load("tiny-bert", "classifier", num_labels=3), VeraFields(r=16))
        randomize_adapter(model, "default", seed=i)
        path = save_adapter(model, tmp_path / f"user{i}")
        Artifact(
            path, "tiny-bert", "peft", "classifier", ["x", "y", "z"], base=base_record(base_art, path, original=False)
        ).save()
        dirs.append(str(path))
        models.append(model.eval())
    return dirs, models


def test_predict_serves_each_row_with_its_adapter(tmp_path):
    dirs, models = _adapters(tmp_path)
    rows = [
        {"adapter": "user2", "text": "vote early"},
        {"adapter": "0", "text": "make it great"},
        {"adapter": dirs[1], "text": "stronger together, always"},
        {"adapter": "user0", "text": "hi"},
    ]
    out = predict(dirs, rows, batch_size=3, precision="fp32")  # compared with each model alone in fp32
    tok = zoo.tokenizer("tiny-bert")
    for row, pred, idx in zip(rows, out, (2, 0, 1, 0)):
        with torch.no_grad():
            alone = torch.softmax(models[idx](**tok([row["text"]], return_tensors="pt")).logits, -1)[0]
        assert pred["probs"] == pytest.approx(alone.tolist(), abs=1e-5)
        assert pred["label"] == ["x", "y", "z"][pred["label_id"]] and pred["text"] == row["text"]
    with pytest.raises(ValueError, match="unknown adapter 'nobody'"):
        predict(dirs, [{"adapter": "nobody", "text": "x"}])


def test_repro_plan_covers_the_issue():
    quick = repro.experiments(repro.PROFILES["quick"])
    assert {(e.setting.split("/")[1], e.method) for e in quick} >= {
        (t, m) for t in repro.TEXT_TASKS for m in ("full", "lora-r8", "vera-r256", "vera-r1024")
    }
    assert any(e.model == "dinov2-s" and e.data["per_class"] == 10 for e in quick)
    full = repro.experiments(repro.PROFILES["full"])
    methods = {e.method for e in full}
    assert {
        "vera-r1024 only_b",
        "vera-r1024 only_d",
        "vera-r1024 d_init=1e-7",
        "vera-r1024 unique A,B",
        "vera-r1024 uniform[0,0.1]",
        "vera-r1",
    } <= methods
    assert any(e.metric == "perplexity" and e.model == "smollm2-135m" for e in full)
    for e in full:  # every planned recipe validates (stage configs, data keys)
        cfg = e.recipe()
        assert cfg["stages"][0][e.stage]


def test_repro_table_formats_rows():
    rows = [
        {
            "setting": "s",
            "method": "vera-r256",
            "metric": "accuracy",
            "test": {"accuracy": {"mean": 0.8, "std": 0.01, "n": 3}, "macro_f1": {"mean": 0.7, "std": 0.02, "n": 3}},
            "params": {"adapter_params": 4608},
            "bytes": {"vector_bytes": 18432, "adapter_file_bytes": 30000, "head_bytes": 10240, "projection_bytes": 0},
            "seconds": 12.0,
            "n_seeds": 3,
        }
    ]
    text = repro.table({"rows": rows, "skipped": [{"setting": "d", "method": "full", "reason": "no model"}]})
    assert (
        "| s | vera-r256 | 4,608 | 18.0 KiB | 29.3 KiB (head 10.0 KiB) | acc 80.00 ± 1.00 | 70.00 ± 2.00 | 3 | 12 |"
        in text
    )
    assert "skipped: no model" in text


def test_bench_measures_all_figures_on_a_tiny_model():
    device = bench.engine_device()
    serving = bench.serving_times("tiny-bert", device, rounds=1)
    assert set(serving["seconds"]) == {"mixed_64_adapters", "single_adapter", "switching_loop"}
    assert serving["max_abs_diff_mixed_vs_loop"] < 1e-4
    steps = bench.train_step_times("tiny-bert", device, rounds=1)
    assert set(steps) == {"full", "lora_r8", "vera_r256", "vera_r1024"} and steps["full"]["vs_full"] == 1.0


def test_predict_command_line_writes_jsonl(tmp_path):
    import argparse

    from tailor.methods.vera import commands

    dirs, _ = _adapters(tmp_path, n=2)
    (tmp_path / "in.jsonl").write_text('{"adapter": "user1", "text": "a"}\n{"adapter": "user0", "text": "b"}\n')
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "predict",
            "--adapters",
            *dirs,
            "--input",
            str(tmp_path / "in.jsonl"),
            "--output",
            str(tmp_path / "out.jsonl"),
            "--batch-size",
            "2",
        ]
    )
    args.func(args)
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [x["adapter"] for x in lines] == ["user1", "user0"] and all(len(x["probs"]) == 3 for x in lines)


def test_repro_pairs_each_method_with_lora_by_seed():
    def row(method, metric, per_seed):
        return {"setting": "s", "method": method, "metric": metric, "per_seed": per_seed}

    rows = [
        row("lora-r8", "accuracy", {"0": 0.80, "1": 0.70, "2": 0.75}),
        row("vera-r256", "accuracy", {"0": 0.82, "1": 0.74, "2": 0.81}),
    ]
    (claim,) = repro.paired_claims(rows)
    # d = (0.02, 0.04, 0.06): mean 0.04, t_{0.975,2} 4.302653 · 0.02/√3 = 0.049683
    assert claim["claim"] == "vera-r256 vs lora-r8" and claim["mean"] == pytest.approx(0.04)
    assert claim["low"] == pytest.approx(-0.009683, abs=1e-6) and claim["verdict"] == "inconclusive"
    ppl = repro.paired_claims([{**r, "setting": "lm", "metric": "perplexity"} for r in rows])[0]
    assert ppl["mean"] == pytest.approx(-0.04)  # higher perplexity is worse
    text = repro.table({"rows": [], "skipped": [], "paired": [claim]})
    assert "| s | vera-r256 vs lora-r8 | +4.00 | [-0.97, +8.97] | inconclusive (n=3) |" in text
