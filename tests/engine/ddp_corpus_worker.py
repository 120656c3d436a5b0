"""Run under torchrun (or alone): further_pretrain -> self_distill on tiny-bert streaming an unlabeled corpus
folder, recording the token ids of every example each stage's collator was handed on this rank.
argv: out folder, corpus folder, labeled CSV. Writes rank<R>.json: {"world", "rows": {stage dir: [ids, ...]}}."""

import json
import os
import sys
from pathlib import Path

from tailor.methods.selfdistill import stages
from tailor.pipeline import run_recipe
from tailor.recipe import parse_recipe

SD = {"steps": 3, "batch_size": 4, "lr": 1e-3, "log_every": 1, "save_every": 1000, "head_warmup_steps": 0}


def run(out: Path, corpus: Path, data: Path) -> dict:
    """Both stages on `corpus`; {"world": N, "rows": {"<stage folder>": [input_ids of each example consumed]}}."""
    rows: dict[str, list] = {}
    real_train = stages.train

    def recording_train(model, dataset, *, collator, out_dir, **kw):
        seen = rows.setdefault(Path(out_dir).name, [])

        def collate(batch):
            seen.extend(list(r["input_ids"]) for r in batch)
            return collator(batch)

        return real_train(model, dataset, collator=collate, out_dir=out_dir, **kw)

    stages.train = recording_train
    try:
        settings = {**SD, "unlabeled": {"name": str(corpus), "shuffle_buffer": 8}}
        run_recipe(
            parse_recipe(
                {
                    "name": "corpus",
                    "model": "tiny-bert",
                    "data": {"name": str(data), "max_length": 16},
                    "stages": [{"further_pretrain": settings}, {"self_distill": settings}],
                }
            ),
            out / "runs",
        )
    finally:
        stages.train = real_train
    return {"world": int(os.environ.get("WORLD_SIZE", "1")), "rows": rows}


if __name__ == "__main__":
    out = Path(sys.argv[1])
    report = run(out, Path(sys.argv[2]), Path(sys.argv[3]))
    (out / f"rank{os.environ.get('RANK', '0')}.json").write_text(json.dumps(report))
