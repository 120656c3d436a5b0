"""further_pretrain and self_distill train on an `unlabeled:` corpus instead of the task's train split."""

import numpy as np
from PIL import Image

from tailor.engine.inputs import tokenize
from tailor.methods.selfdistill import stages
from tailor.pipeline import run_recipe
from tailor.recipe import parse_recipe
from tailor.zoo import models
from tests.engine.ddp_corpus_worker import run
from tests.zoo.test_corpus import labeled_csv, write_text_corpus


def record_image_batches(monkeypatch) -> list[list[list[tuple]]]:
    """Per `train` call of the stages, the image shapes of each batch it drew."""
    calls = []
    real_train = stages.train

    def recording_train(model, dataset, *, collator, **kw):
        batches = []
        calls.append(batches)

        def collate(rows):
            batches.append([r["image"].shape for r in rows])
            return collator(rows)

        return real_train(model, dataset, collator=collate, **kw)

    monkeypatch.setattr(stages, "train", recording_train)
    return calls


def test_text_stages_train_on_the_corpus_not_on_the_task(tmp_path):
    corpus = write_text_corpus(tmp_path / "corpus", files=3, lines=30)
    data = labeled_csv(tmp_path / "labeled.csv")
    report = run(tmp_path, corpus, data)
    tok = models.tokenizer("tiny-bert")
    lines = [t for f in sorted(corpus.glob("*.txt")) for t in f.read_text().splitlines()]
    corpus_ids = {tuple(ids) for ids in tokenize(tok, {"text": lines}, 16)["input_ids"]}
    assert set(report["rows"]) == {"01-further_pretrain", "round-1"}
    for stage, rows in report["rows"].items():
        assert len(rows) >= 12 and all(tuple(ids) in corpus_ids for ids in rows), stage  # no task example
    seed = next((tmp_path / "runs").glob("corpus-*")) / "seed-0"
    assert (seed / "02-self_distill" / "model" / "model.safetensors").is_file()


def test_image_stages_stream_an_image_folder_of_mixed_sizes(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):  # the labeled task: a class-folder image set
        (tmp_path / "pets" / label).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
                tmp_path / "pets" / label / f"{i}.png"
            )
    (tmp_path / "photos" / "batch1").mkdir(parents=True)  # the corpus: any nesting, any size, no labels
    for i, (h, w) in enumerate([(40, 30), (64, 64), (20, 50), (33, 33)] * 3):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(
            tmp_path / "photos" / "batch1" / f"{i}.jpg"
        )
    calls = record_image_batches(monkeypatch)
    settings = {
        "steps": 2,
        "batch_size": 4,
        "log_every": 1,
        "head_warmup_steps": 1,
        "unlabeled": {"name": str(tmp_path / "photos"), "shuffle_buffer": 0},
    }
    result = run_recipe(
        parse_recipe(
            {
                "name": "img",
                "model": "tiny-vit",
                "data": {"name": str(tmp_path / "pets")},
                "stages": [{"further_pretrain": settings}, {"self_distill": settings}],
            }
        ),
        tmp_path / "runs",
    )
    corpus_shapes = {(40, 30, 3), (64, 64, 3), (20, 50, 3), (33, 33, 3)}
    batches = [batch for call in calls for batch in call]
    assert batches and all(set(b) <= corpus_shapes for b in batches)  # every batch came from the corpus
    assert any(len(set(b)) > 1 for b in batches)  # with sizes mixed inside one batch
    metrics = result.results["seeds"]["0"]
    assert "head_warmup" in metrics["01-further_pretrain"]  # the pixel decoder warmed up on the corpus too
    assert metrics["02-self_distill"]["distance_to_init"] > 0


def test_the_new_decoder_warms_up_on_a_general_corpus_then_further_pretrains_on_the_task(tmp_path, monkeypatch):
    """`head_warmup_corpus` (issue 14's stand-in for a checkpoint that ships its pre-training head): the
    new head (tiny-vit's pixel decoder) warms up on the general corpus only, then further pre-training
    reads only the task."""
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):  # the task: 32 x 32 images
        (tmp_path / "pets" / label).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
                tmp_path / "pets" / label / f"{i}.png"
            )
    (tmp_path / "general").mkdir()  # the general corpus: other sizes, so each batch tells its source
    for i, (h, w) in enumerate([(40, 30), (20, 50)] * 4):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(tmp_path / "general" / f"{i}.jpg")
    calls = record_image_batches(monkeypatch)
    settings = {
        "steps": 2,
        "batch_size": 4,
        "log_every": 1,
        "head_warmup_steps": 2,
        "head_warmup_corpus": {"name": str(tmp_path / "general"), "shuffle_buffer": 0},
    }
    recipe = {"name": "warm", "model": "tiny-vit", "data": {"name": str(tmp_path / "pets")}}
    result = run_recipe(parse_recipe({**recipe, "stages": [{"further_pretrain": settings}]}), tmp_path / "runs")
    warmup, further = ([shape for batch in call for shape in batch] for call in calls)
    assert len(warmup) == 8 and set(warmup) <= {(40, 30, 3), (20, 50, 3)}  # the decoder saw the corpus only
    assert len(further) >= 4 and set(further) == {(32, 32, 3)}  # the encoder then saw the task only
    assert "head_warmup" in result.results["seeds"]["0"]["01-further_pretrain"]
