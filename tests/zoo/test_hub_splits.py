"""A hub dataset's configuration (`data.subset`) and `data.test_split` (GLUE: score on the dev set)."""

import datasets
import pytest

from tailor.config import ConfigError
from tailor.zoo.data import DataConfig, load_task


def _glue_like(name, subset=None, **kwargs):
    assert (name, subset) == ("org/glue", "cola")
    rows = lambda n, label: {"sentence": [f"text {i}" for i in range(n)], "label": [label(i) for i in range(n)]}  # noqa: E731
    return datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(rows(40, lambda i: i % 2)),
            "validation": datasets.Dataset.from_dict(rows(10, lambda i: i % 2)),
            "test": datasets.Dataset.from_dict(rows(10, lambda i: -1)),
        }
    )  # hidden labels


def test_test_split_scores_on_the_dev_set_and_carves_validation(monkeypatch):
    monkeypatch.setattr(datasets, "load_dataset", _glue_like)
    task = load_task(
        DataConfig(
            name="org/glue", subset="cola", text_column="sentence", test_split="validation", validation_size=0.25
        ),
        seed=0,
    )
    assert len(task.test) == 10 and set(task.test["label"]) == {0, 1}
    assert len(task.train) + len(task.validation) == 40


def test_unknown_test_split_names_the_splits(monkeypatch):
    monkeypatch.setattr(datasets, "load_dataset", _glue_like)
    with pytest.raises(ConfigError, match="no split 'dev'.*train, validation, test"):
        load_task(DataConfig(name="org/glue", subset="cola", text_column="sentence", test_split="dev"), seed=0)
