"""One short recipe per stage family, on tiny models and real zoo data, for the precision tests.

Run as a script (`python precision_recipes.py RUNS_DIR`) it runs them all in fp32 and prints a JSON
digest of every stage's final weights: the precision test runs it with the code before the
`precision` setting existed and compares with the current code.
"""

import hashlib
import json
import sys
from pathlib import Path

FAST = {"steps": 4, "batch_size": 8, "lr": 1e-3, "log_every": 1, "save_every": 1000}
TWEETS = {"name": "tweets2016", "max_length": 16, "train_size": 32, "validation_size": 16, "test_size": 16}
DIGITS = {"name": "digits", "train_size": 32, "test_size": 16, "image_size": 16, "classes": [0, 1, 2, 3, 4]}
ATTACK = {"eps": "4/255", "steps": 2}
# the settings of the code before `precision` existed, where a default has since moved to the paper's
SD = {**FAST, "head_warmup_steps": 1, "adam_betas": [0.9, 0.999], "max_grad_norm": 1.0}
FT = {**FAST, "head_lr": None, "warmup_ratio": 0.0}  # finetune's defaults before docs/defaults moved them
# settings the old code has no key for, pinned to its behaviour in the current code's runs only
NEW_KEYS = {"finetune": {"pooler": "keep"}}
RECIPES = {
    "kdqat": {
        "model": "tiny-bert",
        "data": TWEETS,
        "stages": [{"finetune": FT}, {"qat_distill": {**FAST, "distill": {"preset": "sm1", "beta": 0.5}}}],
    },
    "selfdistill": {"model": "tiny-bert", "data": TWEETS, "stages": [{"further_pretrain": SD}, {"self_distill": SD}]},
    "vera": {
        "model": "tiny-bert",
        "data": TWEETS,
        "stages": [{"vera": {**FAST, "r": 16, "lr": 1e-2, "head_lr": None}}],
    },
    "tickets": {
        "model": "tiny-resnet",
        "data": DIGITS,
        "stages": [{"robust_pretrain": {**FAST, "attack": ATTACK, "eval_attack": None}}],
    },
}


def recipe(family: str, precision: str | None) -> dict:
    """The family's recipe; `precision=None` leaves the setting and NEW_KEYS out (the old code has no such keys)."""
    raw = json.loads(json.dumps(RECIPES[family]))
    if precision is not None:
        for stage in raw["stages"]:
            (kind, settings), *_ = stage.items()
            settings.update(precision=precision, **NEW_KEYS.get(kind, {}))
    return {"name": f"{family}-{precision or 'default'}", "seeds": [0], **raw}


def weights_digest(model_dir: Path) -> str:
    """sha256 over every tensor of every safetensors file in an artifact folder, in name order."""
    import torch
    from safetensors.torch import load_file

    h = hashlib.sha256()
    for file in sorted(Path(model_dir).glob("*.safetensors")):
        for name, tensor in sorted(load_file(str(file)).items()):
            h.update(name.encode() + tensor.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def run_family(family: str, precision: str | None, runs: Path):
    from tailor.pipeline import run_recipe
    from tailor.recipe import parse_recipe

    return run_recipe(parse_recipe(recipe(family, precision)), runs)


def digests(run) -> dict[str, str]:
    return {d.parent.name: weights_digest(d) for d in sorted(Path(run.path).glob("seed-0/*/model"))}


if __name__ == "__main__":
    runs = Path(sys.argv[1])
    print(json.dumps({f: digests(run_family(f, None, runs)) for f in RECIPES}))
