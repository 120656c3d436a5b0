"""Every user data layout loads through `datasets`, and each bad input fails with a message that
names the file and the fix, before any model or run folder exists."""

import json

import numpy as np
import pytest

from tailor.cli import main
from tailor.config import ConfigError
from tailor.zoo.data import DataConfig, load_task

WORDS = {"pos": ["great", "lovely", "superb"], "neg": ["awful", "dull", "poor"], "mid": ["fine", "okay", "so-so"]}


def rows(n: int, classes=("pos", "neg"), start: int = 0) -> list[tuple[str, str]]:
    return [(f"a {WORDS[c][i % 3]} film number {start + i}", c) for i in range(n) for c in classes]


def write_csv(path, data, sep=",", header=("text", "label")):
    path.write_text(sep.join(header) + "\n" + "\n".join(sep.join(r) for r in data) + "\n")
    return path


def test_folder_of_split_files_keeps_its_test_split(tmp_path):
    write_csv(tmp_path / "train.csv", rows(30))
    write_csv(tmp_path / "test.csv", rows(7, start=100))
    d = load_task(DataConfig(name=str(tmp_path)))
    assert sorted(d.test["text"]) == sorted(t for t, _ in rows(7, start=100))  # scored on the file, not a carve
    assert len(d.train) + len(d.validation) == 60 and len(d.validation) == 6  # validation carved from train only
    assert d.label_names == ["neg", "pos"] and d.modality == "text"


@pytest.mark.parametrize("dev_name", ["dev.tsv", "val.tsv", "validation.tsv"])
def test_tsv_folder_with_a_dev_split(tmp_path, dev_name):
    write_csv(tmp_path / "train.tsv", rows(20), sep="\t")
    write_csv(tmp_path / dev_name, rows(4, start=50), sep="\t")
    d = load_task(DataConfig(name=str(tmp_path)))
    assert sorted(d.validation["text"]) == sorted(t for t, _ in rows(4, start=50))
    assert len(d.test) == 8 and len(d.train) == 32  # only the missing test split is carved (20%)


def test_jsonl_and_parquet_splits_and_explicit_files(tmp_path):
    import pandas as pd

    train, test = rows(20), rows(5, start=70)
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps({"review": t, "y": y}) for t, y in train))
    pd.DataFrame(test, columns=["review", "y"]).to_parquet(tmp_path / "b.parquet")
    d = load_task(
        DataConfig(
            files={"train": str(tmp_path / "a.jsonl"), "test": str(tmp_path / "b.parquet")},
            text_column="review",
            label_column="y",
        )
    )
    assert sorted(d.test["text"]) == sorted(t for t, _ in test)
    assert len(d.train) + len(d.validation) == 40


def test_image_folders_with_split_subfolders(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 3)):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(
                    tmp_path / split / cls / f"{i}.png"
                )
    d = load_task(DataConfig(name=str(tmp_path)))
    assert d.modality == "image" and d.label_names == ["cat", "dog"]
    assert len(d.test) == 6 and len(d.train) + len(d.validation) == 12
    assert np.asarray(d.test["image"][0]).shape == (8, 8, 3)


def bad(tmp_path, kind):
    """A folder with one defect; returns (DataConfig kwargs, the message expected)."""
    write_csv(tmp_path / "train.csv", rows(10))
    if kind == "unseen label":
        write_csv(tmp_path / "test.csv", rows(3, classes=("pos", "mid")))
        return {}, r"test\.csv': 3 rows have labels that the training data never shows \('mid'\); add training examples"
    if kind == "missing column":
        write_csv(tmp_path / "test.csv", rows(3), header=("sentence", "label"))
        return {}, r"test\.csv' has no column 'text' \(columns: sentence, label\); set data.text_column"
    if kind == "empty split":
        (tmp_path / "validation.csv").write_text("text,label\n")
        return {}, r"validation\.csv' has no rows: add examples, or drop it"
    if kind == "single class":
        write_csv(tmp_path / "train.csv", rows(10, classes=("pos",)))
        return {}, r"the training data has a single class \('pos'\); a classifier needs at least two"
    if kind == "unreadable":
        (tmp_path / "test.parquet").write_bytes(b"this is not parquet")
        return {}, r"test\.parquet' could not be read as parquet \(.*\): check the file's format"
    if kind == "not utf-8":
        (tmp_path / "test.csv").write_bytes("text,label\nun film génial,pos\nnul,neg\n".encode("cp1252"))
        return {}, (
            r"test\.csv' is not valid utf-8 text \(byte 0xe9 on line 2\): re-save it as UTF-8 "
            r"\(e\.g\. `iconv -f cp1252 -t utf-8 'test\.csv' > utf8\.csv`\) or set data\.encoding"
        )
    if kind == "no train file":
        (tmp_path / "train.csv").rename(tmp_path / "mine.csv")
        write_csv(tmp_path / "other.csv", rows(3))
        return {}, r"has mine\.csv, other\.csv but no train file: name the files train/validation"
    raise AssertionError(kind)


KINDS = ["unseen label", "missing column", "empty split", "single class", "unreadable", "not utf-8", "no train file"]


@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_names_the_file_and_the_fix(tmp_path, kind):
    kwargs, message = bad(tmp_path, kind)
    with pytest.raises(ConfigError, match=message):
        load_task(DataConfig(name=str(tmp_path), **kwargs))


def test_encoding_option_reads_cp1252(tmp_path):
    write_csv(tmp_path / "train.csv", rows(10))
    (tmp_path / "test.csv").write_bytes("text,label\nun film génial,pos\nnul,neg\n".encode("cp1252"))
    d = load_task(DataConfig(name=str(tmp_path), encoding="cp1252"))
    assert "un film génial" in d.test["text"]


@pytest.mark.parametrize("kind", ["unseen label", "not utf-8"])
def test_bad_data_fails_in_the_cli_before_any_model_or_run_folder(tmp_path, kind, capsys, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    bad(data, kind)
    import tailor.zoo.models as models

    monkeypatch.setattr(models, "resolve", lambda *a, **k: pytest.fail("a model was resolved before the data check"))
    runs = tmp_path / "runs"
    assert main(["finetune", "--model", "tiny-bert", "--data", str(data), "--runs", str(runs)]) == 2
    err = capsys.readouterr().err
    assert "tailor: error: data file" in err and str(data) in err
    assert not runs.exists()  # nothing partial written


def test_data_needs_a_name_or_files():
    with pytest.raises(ValueError, match="exactly one of data.name"):
        DataConfig()
    with pytest.raises(ValueError, match="needs a 'train' file"):
        DataConfig(files={"test": "t.csv"})
