"""Run under torchrun: one recipe per method whose stages write their own files (packed export and
keep-best weights, VeRA adapter, ticket masks), so rank 0 writes them and the other ranks wait."""

import os
import sys
from pathlib import Path

from tailor.pipeline import run_recipe
from tailor.recipe import parse_recipe

FAST = {"steps": 2, "batch_size": 8, "lr": 1e-3, "save_every": 1000}
TWEETS = {"name": "tweets2016", "max_length": 16, "train_size": 32, "validation_size": 16, "test_size": 16}
DIGITS = {"name": "digits", "train_size": 32, "test_size": 16, "image_size": 16, "classes": [0, 1, 2, 3, 4]}
ATTACK = {"eps": "4/255", "steps": 1}
RECIPES = [
    {
        "name": "kdqat",
        "model": "tiny-bert",
        "data": TWEETS,
        "stages": [{"finetune": FAST}, {"qat_distill": {**FAST, "eval_every": 1}}, {"export": {}}],
    },
    {"name": "vera", "model": "tiny-bert", "data": TWEETS, "stages": [{"vera": {**FAST, "r": 16}}]},
    {
        "name": "tickets",
        "model": "tiny-resnet",
        "data": DIGITS,
        "stages": [
            {"robust_pretrain": {**FAST, "attack": ATTACK, "eval_attack": ATTACK, "robust_eval_size": 8}},
            {"draw_ticket": {"scheme": "omp", "sparsity": 0.5}},
            {"transfer": {**FAST, "data": {**DIGITS, "classes": [5, 6, 7, 8, 9]}}},
        ],
    },
]

runs = Path(sys.argv[1])
for recipe in RECIPES:
    run_recipe(parse_recipe({**recipe, "seeds": [0]}), runs)
(runs / f"rank{os.environ['RANK']}.done").write_text("ok")
