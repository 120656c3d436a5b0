import numpy as np
import pytest

from tailor.config import ConfigError
from tailor.zoo.data import DataConfig, _stratified, list_datasets, load_task
from tests.conftest import needs


def test_stratified_keeps_class_proportions_exactly():
    labels = np.array([0] * 60 + [1] * 30 + [2] * 10)
    picked, rest = _stratified(labels, 10, np.random.default_rng(0))
    assert np.bincount(labels[picked]).tolist() == [6, 3, 1]
    assert len(rest) == 90 and not set(picked) & set(rest)


@needs("orangecontrib.text")
def test_splits_are_fixed_across_seeds_and_subsets_vary():
    cfg = DataConfig(name="tweets2016", train_size=50, test_size=100)
    a, b, a2 = load_task(cfg, seed=0), load_task(cfg, seed=1), load_task(cfg, seed=0)
    assert a.test["text"] == b.test["text"]  # every seed is scored on the same test set
    assert a.train["text"] == a2.train["text"]  # deterministic
    assert a.train["text"] != b.train["text"]  # low-resource subsets differ by seed
    assert len(a.train) == 50 and len(a.test) == 100
    assert not set(a.train["text"]) & set(a.test["text"]) - {""}


def test_class_filter_relabels_and_per_class_counts():
    d = load_task(DataConfig(name="digits", classes=[7, "9"], per_class=5), seed=3)
    assert d.label_names == ["7", "9"]
    assert sorted(d.train["label"]) == [0] * 5 + [1] * 5
    assert set(d.test["label"]) == {0, 1}
    with pytest.raises(ConfigError, match="unknown class 'ten'"):
        load_task(DataConfig(name="digits", classes=["ten"]))


def test_user_csv_with_custom_columns(tmp_path):
    rows = [("great movie", "pos"), ("awful film", "neg")] * 20
    (tmp_path / "d.csv").write_text("review,sentiment\n" + "\n".join(f"{t},{y}" for t, y in rows))
    d = load_task(DataConfig(name=str(tmp_path / "d.csv"), text_column="review", label_column="sentiment"))
    assert d.label_names == ["neg", "pos"] and d.modality == "text"
    assert len(d.train) + len(d.validation) + len(d.test) == 40
    with pytest.raises(ConfigError, match="no column 'text'"):
        load_task(DataConfig(name=str(tmp_path / "d.csv"), label_column="sentiment"))


@pytest.mark.integration
@pytest.mark.parametrize("info", list_datasets(), ids=lambda i: i.name)
def test_every_zoo_dataset_loads(info):
    if not info.available():
        pytest.skip(f"{info.name} needs {info.package}")
    d = load_task(DataConfig(name=info.name, test_size=200), seed=0)
    column = "text" if info.modality == "text" else "image"
    assert len(d.train) > 1000 and len(d.test) == 200 and d.num_labels >= 2
    assert set(d.train["label"]) == set(range(d.num_labels))
    assert column in d.train.column_names
