"""Unlabeled corpora (`unlabeled:` of further_pretrain / self_distill): every layout streams, memory stays
flat in the corpus size, bad input fails in the dry pass naming the path, and the corpus is in the run hash."""

import json
import tracemalloc
import types

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from tailor.checks import check_recipe
from tailor.config import ConfigError
from tailor.engine.inputs import stream_inputs
from tailor.recipe import parse_recipe
from tailor.zoo import corpus
from tailor.zoo import models as zoo
from tailor.zoo.corpus import CorpusConfig, stream

WORDS = ["river", "market", "storm", "vote", "data", "model", "city", "night"]


def write_text_corpus(folder, files: int, lines: int):
    """`files` .txt files of `lines` distinct lines ("doc<f>_<j> ..."); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        (folder / f"part{f:03d}.txt").write_text(
            "".join(f"doc{f}_{j} " + " ".join(WORDS[(f + j + k) % 8] for k in range(8)) + "\n" for j in range(lines))
        )
    return folder


def labeled_csv(path):
    path.write_text(
        "text,label\n"
        + "".join(f"a {'great' if i % 2 else 'dull'} film {i},{'pos' if i % 2 else 'neg'}\n" for i in range(40))
    )
    return path


def recipe(data, unlabeled, stage="further_pretrain", model="tiny-bert", **settings):
    return parse_recipe(
        {
            "name": "c",
            "model": model,
            "data": {"name": str(data), "max_length": 16},
            "stages": [{stage: {"steps": 2, "unlabeled": unlabeled, **settings}}],
        }
    )


@pytest.mark.parametrize("layout", ["txt", "csv", "tsv", "jsonl", "parquet"])
def test_each_file_format_streams_its_text_column(tmp_path, layout):
    texts = [f"line number {i}" for i in range(5)]
    f = tmp_path / f"c.{layout}"
    if layout == "txt":
        f.write_text("\n".join(texts) + "\n")
    elif layout in ("csv", "tsv"):
        sep = "," if layout == "csv" else "\t"
        f.write_text(f"id{sep}body\n" + "".join(f"{i}{sep}{t}\n" for i, t in enumerate(texts)))
    elif layout == "jsonl":
        f.write_text("".join(json.dumps({"id": i, "body": t}) + "\n" for i, t in enumerate(texts)))
    else:
        pa.parquet.write_table(pa.table({"id": list(range(5)), "body": texts}), f)
    cfg = CorpusConfig(name=str(f), column=None if layout == "txt" else "body", shuffle_buffer=0)
    assert corpus.check(cfg, "text") == []
    assert [r for r in stream(cfg, "text")] == [{"text": t} for t in texts]  # one column, named for the model


def test_a_bare_string_is_the_corpus_name():
    assert CorpusConfig.model_validate("data/corpus").name == "data/corpus"


def test_an_image_folder_streams_rgb_arrays_of_any_size(tmp_path):
    for i, size in enumerate([(12, 9), (20, 20), (7, 30)]):
        Image.fromarray(np.full((size[1], size[0]), 40 * i, dtype=np.uint8)).save(tmp_path / f"{i}.png")  # grey
    inputs = types.SimpleNamespace(modality="image")
    rows = list(stream_inputs(CorpusConfig(name=str(tmp_path), shuffle_buffer=0), inputs, max_length=16))
    assert [r["image"].shape for r in rows] == [(9, 12, 3), (20, 20, 3), (30, 7, 3)]
    assert set(rows[0]) == {"image"}  # no label column, although imagefolder would infer one


def _streaming_peak(ds, keep: bool = False) -> tuple[int, int]:
    """(peak bytes, rows) over one full pass: Python objects (tracemalloc) plus Arrow buffers (sampled)."""
    next(iter(ds))  # the first read imports modules and opens files: not part of what the stream holds
    kept = []
    tracemalloc.start()
    arrow_base, arrow_peak, rows = pa.total_allocated_bytes(), 0, 0
    try:
        for rows, row in enumerate(ds, 1):
            if keep:
                kept.append(row)
            if rows % 50 == 0:
                arrow_peak = max(arrow_peak, pa.total_allocated_bytes() - arrow_base)
        return tracemalloc.get_traced_memory()[1] + arrow_peak, rows
    finally:
        tracemalloc.stop()


def test_streamed_corpus_memory_is_flat_in_its_size(tmp_path, monkeypatch):
    """A 4x larger corpus streams with the same peak memory, far below what holding it would take.

    What the stream holds at once: the reader's chunk (READ_CHUNK, scaled down here with the corpus so
    that a file spans several reads), the shuffle buffer (100 raw lines) and one tokenized batch (64).
    Holding the tokenized rows instead (the contrast, `keep=True`) costs a measured amount per example;
    the large corpus would need `rows x that`, and the stream must stay under a fifth of it.
    """
    monkeypatch.setattr(corpus, "READ_CHUNK", 8 << 10)
    inputs = types.SimpleNamespace(modality="text", tokenizer=zoo.tokenizer("tiny-bert"))

    def tokenized(folder):
        return stream_inputs(CorpusConfig(name=str(folder), shuffle_buffer=100), inputs, max_length=32)

    small = write_text_corpus(tmp_path / "small", files=4, lines=250)
    large = write_text_corpus(tmp_path / "large", files=16, lines=250)
    peak_small, rows_small = _streaming_peak(tokenized(small))
    peak_large, rows_large = _streaming_peak(tokenized(large))
    held_small, _ = _streaming_peak(tokenized(small), keep=True)
    assert (rows_small, rows_large) == (1000, 4000)
    per_row = (held_small - peak_small) / rows_small  # what one tokenized example costs when kept
    assert per_row > 300  # >= 3 lists of ~16 token ids: the measurement sees the rows it is asked to hold
    assert peak_large < 1.25 * peak_small + (32 << 10)  # flat: 4x the corpus, the same peak
    assert peak_large < rows_large * per_row / 5  # the stream holds under a fifth of the corpus
    assert held_small > 2 * peak_large  # materialising even a quarter of the corpus would fail the bound above


def test_every_corpus_example_is_read_once_per_pass(tmp_path):
    folder = write_text_corpus(tmp_path / "c", files=3, lines=50)
    texts = [r["text"] for r in stream(CorpusConfig(name=str(folder), shuffle_buffer=20), "text", seed=1)]
    assert len(texts) == 150 and len(set(texts)) == 150
    ordered = [t for f in sorted(folder.glob("*.txt")) for t in f.read_text().splitlines()]
    assert sorted(texts) == sorted(ordered) and texts != ordered  # shuffled, nothing lost or repeated


def test_bad_corpora_fail_the_dry_pass_naming_the_path_and_the_fix(tmp_path):
    data = labeled_csv(tmp_path / "labeled.csv")
    (tmp_path / "empty").mkdir()
    (tmp_path / "body.jsonl").write_text('{"body": "some text"}\n')
    (tmp_path / "notes.doc").write_text("x")
    mixed = write_text_corpus(tmp_path / "mixed", files=1, lines=3)
    (mixed / "more.csv").write_text("text\nx\n")
    pics = tmp_path / "pics"
    pics.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(pics / "a.png")
    cases = {
        str(tmp_path / "missing.txt"): ["stages.0.further_pretrain.unlabeled", "missing.txt", "does not exist"],
        str(tmp_path / "empty"): ["empty", "holds no corpus files", ".txt (one example per line)"],
        str(tmp_path / "body.jsonl"): ["body.jsonl", "no column 'text'", "columns: body", "unlabeled.column"],
        str(tmp_path / "notes.doc"): ["notes.doc", "unsupported suffix '.doc'"],
        str(mixed): ["mixed", "mixes csv and text files"],
        str(pics): ["pics", "is image but the model takes text input"],
        "someorg/somecorpus": ["someorg/somecorpus", "hub is not reachable", "check the dataset name"],  # offline
    }
    for name, expected in cases.items():
        with pytest.raises(ConfigError) as err:
            check_recipe(recipe(data, name))
        assert all(part in str(err.value) for part in expected), (name, str(err.value))


def test_a_missing_head_warmup_corpus_fails_the_dry_pass_naming_its_key(tmp_path):
    raw = {
        "name": "c",
        "model": "tiny-bert",
        "data": {"name": str(labeled_csv(tmp_path / "labeled.csv"))},
        "stages": [{"further_pretrain": {"steps": 1, "head_warmup_corpus": str(tmp_path / "books.txt")}}],
    }
    with pytest.raises(
        ConfigError, match=r"stages\.0\.further_pretrain\.head_warmup_corpus.*books\.txt.*does not exist"
    ):
        check_recipe(parse_recipe(raw))


def test_the_head_warmup_corpus_content_is_part_of_the_run_hash(tmp_path):
    data = labeled_csv(tmp_path / "labeled.csv")
    books = write_text_corpus(tmp_path / "books", files=1, lines=5)

    def digest():
        stage = {"steps": 2, "head_warmup_corpus": str(books)}
        raw = {"name": "c", "model": "tiny-bert", "data": {"name": str(data)}, "stages": [{"further_pretrain": stage}]}
        return parse_recipe(raw).digest()

    first = digest()
    (books / "part000.txt").write_text("edited\n")
    assert digest() != first


def test_a_streamed_corpus_needs_steps_not_epochs(tmp_path):
    with pytest.raises(ConfigError, match=r"stages\.0\.self_distill.*bounded by steps, not epochs.*set steps: N"):
        parse_recipe(
            {
                "name": "c",
                "model": "tiny-bert",
                "data": {"name": "x.csv"},
                "stages": [{"self_distill": {"epochs": 2, "unlabeled": "corpus/"}}],
            }
        )
    with pytest.raises(ConfigError, match="milestones_in: steps"):
        recipe(tmp_path / "d.csv", "corpus/", scheduler="multistep", milestones=[1], warmup_ratio=0)


def test_the_corpus_content_is_part_of_the_run_hash(tmp_path):
    data = labeled_csv(tmp_path / "labeled.csv")
    folder = write_text_corpus(tmp_path / "c", files=2, lines=5)
    first = recipe(data, str(folder)).digest()
    assert recipe(data, str(folder)).digest() == first
    assert recipe(data, {"name": str(folder), "shuffle_buffer": 7}).digest() != first
    (folder / "part001.txt").write_text("edited\n")
    assert recipe(data, str(folder)).digest() != first
    assert (
        "unlabeled"
        not in parse_recipe(
            {
                "name": "c",
                "model": "tiny-bert",
                "data": {"name": str(data)},
                "stages": [{"further_pretrain": {"steps": 2}}],
            }
        ).fingerprints()
    )
