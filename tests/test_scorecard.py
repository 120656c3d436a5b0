import json

import numpy as np

from tailor.cli import main
from tailor.engine.metrics import classification_metrics
from tailor.scorecard import learning_problems, loss_trend, warnings
from tests.zoo.test_user_data import rows, write_csv

LABELS = np.array([0] * 50 + [1] * 30 + [2] * 20)
BASE = {"majority": classification_metrics(np.tile([1.0, 0.0, 0.0], (100, 1)), LABELS), "linear": {"accuracy": 0.8}}


def logits_for(pred: np.ndarray) -> np.ndarray:
    return np.eye(3)[pred] * 5.0


def test_fires_on_a_collapsed_model_not_on_a_good_one():
    collapsed = classification_metrics(logits_for(np.zeros(100, int)), LABELS)  # one class for every input
    problems = learning_problems(collapsed, BASE, None)
    assert len(problems) == 2
    assert problems[0].startswith("test MCC is 0.000 (<= 0.05)")
    assert problems[1] == "test accuracy 50.0% does not beat always answering the most frequent class (50.0%)"
    good = LABELS.copy()
    good[::10] = (good[::10] + 1) % 3  # 90% right
    assert learning_problems(classification_metrics(logits_for(good), LABELS), BASE, (1.1, 0.3)) == []


def test_loss_that_did_not_fall(tmp_path):
    log = tmp_path / "metrics.jsonl"
    log.write_text(
        "\n".join(json.dumps({"step": 10 * i, "loss": v}) for i, v in enumerate([1.10, 1.09, 1.12, 1.08, 1.11]))
        + "\n"
        + json.dumps({"step": 50, "train_loss": 1.1})
    )
    assert loss_trend(log) == (1.10, 1.11)
    good = classification_metrics(logits_for(LABELS), LABELS)
    (problem,) = learning_problems(good, BASE, loss_trend(log))
    assert problem == "the training loss did not fall (1.100 over the first logged steps, 1.110 over the last)"
    log.write_text("\n".join(json.dumps({"loss": v}) for v in [1.1, 0.7, 0.4, 0.2, 0.1]))
    assert learning_problems(good, BASE, loss_trend(log)) == []


def test_collapsed_run_is_flagged_in_results_and_warned_about(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TAILOR_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    data.mkdir()
    write_csv(data / "train.csv", rows(24, ("pos", "neg", "mid")))
    write_csv(data / "test.csv", [("the same line", c) for c in ("pos", "neg", "mid") * 4])  # one input: one answer
    assert (
        main(
            [
                "finetune",
                "--model",
                "tiny-bert",
                "--data",
                str(data),
                "--steps",
                "3",
                "--max-length",
                "16",
                "--runs",
                str(tmp_path / "runs"),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    (path,) = (tmp_path / "runs").glob("*/results.json")
    results = json.loads(path.read_text())
    learning = results["seeds"]["0"]["01-finetune"]["learning"]
    assert learning["ok"] is False and learning["problems"][0].startswith("test MCC is 0.000")
    assert "stage 01-finetune learned nothing useful: test MCC is 0.000" in err
    assert (
        "Likely causes: a learning rate" in err
        and "65 training examples over 3 classes, the smallest class has 21" in err
    )
    assert warnings(results) and all(w in err for w in warnings(results))
