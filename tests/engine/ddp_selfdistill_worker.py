"""Run under torchrun (or alone): further_pretrain -> self_distill on tiny-bert, then per rank a hash of
every stage's final weights and the logged loss curves. argv: out folder, per-process batch size."""

import hashlib
import json
import os
import sys
from pathlib import Path

from tailor.pipeline import run_recipe
from tailor.recipe import parse_recipe

out, batch = Path(sys.argv[1]), int(sys.argv[2])
SD = {"steps": 4, "batch_size": batch, "lr": 1e-3, "log_every": 1, "save_every": 1000, "head_warmup_steps": 2}
TWEETS = {"name": "tweets2016", "max_length": 16, "train_size": 64, "validation_size": 16, "test_size": 16}
run = run_recipe(
    parse_recipe(
        {
            "name": "sd-ddp",
            "model": "tiny-bert",
            "data": TWEETS,
            "seeds": [0],
            "stages": [{"further_pretrain": SD}, {"self_distill": SD}],
        }
    ),
    out / "runs",
)
rank = os.environ.get("RANK", "0")
report = {"world": int(os.environ.get("WORLD_SIZE", "1")), "weights": {}, "losses": {}}
for stage in sorted(Path(run.path).glob("seed-0/*")):
    tensors = b"".join(f.read_bytes() for f in sorted((stage / "model").glob("*.safetensors")))
    report["weights"][stage.name] = hashlib.sha256(tensors).hexdigest()
    for log in sorted(stage.rglob("metrics.jsonl")):
        rows = [json.loads(line) for line in log.read_text().splitlines()]
        report["losses"][str(log.parent.relative_to(stage.parent))] = [r["loss"] for r in rows if "loss" in r]
(out / f"rank{rank}.json").write_text(json.dumps(report))
