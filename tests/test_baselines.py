import json

import numpy as np
import pytest

import tailor.baselines as baselines
from tailor.baselines import baselines_for
from tailor.cli import main
from tailor.zoo.data import DataConfig, load_task
from tests.zoo.test_user_data import rows, write_csv


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TAILOR_CACHE", str(tmp_path / "cache"))


def text_task(tmp_path, train, test):
    write_csv(tmp_path / "train.csv", train)
    write_csv(tmp_path / "test.csv", test)
    return load_task(DataConfig(name=str(tmp_path), validation_size=2))


def test_majority_and_tfidf_baselines_by_hand(tmp_path):
    # train: 3 x pos per neg -> majority predicts pos; test: 6 pos, 6 neg -> accuracy 0.5, MCC 0
    train = rows(12, ("pos",)) + rows(4, ("neg",), start=50)
    task = text_task(tmp_path, train, rows(6, start=100))
    out = baselines_for(task)
    assert out["majority"]["accuracy"] == pytest.approx(0.5) and out["majority"]["mcc"] == 0.0
    prior = np.array([3, 11]) / 14  # after 2 validation examples leave: 3 neg, 11 pos in train
    assert sorted(np.bincount(task.train["label"])) == [3, 11]
    assert out["majority"]["loss"] == pytest.approx(-np.log(prior).mean(), abs=1e-3)  # half the test is each class
    assert out["linear"]["accuracy"] >= 0.8 and out["linear_features"] == "tfidf"  # the words tell the classes apart
    assert "loss" not in out["linear"]  # an SVM's margins are not probabilities
    assert out["linear"]["n"] == len(task.test) == 12


def test_pixel_baseline_on_digits():
    task = load_task(DataConfig(name="digits", train_size=300, test_size=200))
    out = baselines_for(task)
    assert out["linear_features"] == "pixels" and out["linear"]["accuracy"] > 0.85
    assert out["majority"]["accuracy"] < 0.15  # ten balanced classes


def test_baselines_are_cached_per_data_split(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    task = text_task(tmp_path / "a", rows(10), rows(3, start=40))
    first = baselines_for(task)
    monkeypatch.setattr(baselines, "_linear_scores", lambda t: pytest.fail("recomputed a cached baseline"))
    assert baselines_for(task) == first
    (tmp_path / "b").mkdir()
    other = text_task(tmp_path / "b", rows(10), rows(4, start=40))  # another test split: another key
    with pytest.raises(pytest.fail.Exception):
        baselines_for(other)


def test_finetune_on_a_csv_folder_scores_its_test_file_beside_the_baselines(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    write_csv(data / "train.csv", rows(24, ("pos", "neg", "mid")))
    write_csv(data / "test.csv", rows(5, ("pos", "neg", "mid"), start=200))
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
    out = capsys.readouterr().out
    assert "| majority acc % | linear acc % | linear MCC ×100 |" in out
    (results,) = (tmp_path / "runs").glob("*/results.json")
    stage = json.loads(results.read_text())["seeds"]["0"]["01-finetune"]
    assert stage["test"]["n"] == 15  # its own test file, not a carve
    assert stage["baselines"]["majority"]["n"] == 15 and 0 <= stage["baselines"]["linear"]["accuracy"] <= 1
    summary = json.loads(results.read_text())["summary"]["01-finetune"]
    row = next(line for line in out.splitlines() if "01-finetune" in line)
    assert f"{summary['baselines/linear/accuracy']['mean'] * 100:.2f}" in row
