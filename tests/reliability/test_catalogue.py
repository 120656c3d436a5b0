"""A catalogue of bad inputs, run through the CLI in-process as a new user would type them.

Each must end with exit code 2, a message that names the problem, no traceback, and nothing left
behind (no run folder). Most fail in the dry pass, before any model loads.
"""

import json

import pytest

from tailor.cli import main

pytestmark = pytest.mark.filterwarnings("ignore")

TINY = {"steps": 2, "batch_size": 8, "lr": 1.0e-3}


def _recipe(model="tiny-bert", data=None, stages=None, **extra) -> dict:
    return {
        "name": "bad",
        "model": model,
        "data": data or {"name": "DATA", "max_length": 16},
        "stages": stages or [{"finetune": TINY}],
        **extra,
    }


def _csv(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return str(path)


GOOD_ROWS = "text,label\n" + "".join(f"row number {i} says {'yes' if i % 2 else 'no'},{i % 2}\n" for i in range(40))

# id -> (recipe text or dict (DATA/ROOT substituted), extra CLI args, phrase the message must contain)
CASES = {
    "missing-recipe-file": (None, [], "not found"),
    "yaml-syntax": ("name: x\nmodel: tiny-bert\ndata: {name: a\nstages: [", [], "line"),
    "yaml-alias-bomb": (
        "a: &a [x,x,x,x,x,x,x,x,x]\n"
        + "".join(f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
        + "name: *i\n",
        [],
        "aliases",
    ),
    "recipe-latin1": ("LATIN1", [], "UTF-8"),
    "recipe-empty": ("", [], "mapping"),
    "recipe-is-a-list": ("- a\n- b\n", [], "mapping"),
    "unknown-key": (_recipe(stages=[{"finetune": {"learning_rate": 1}}]), [], "learning_rate"),
    "wrong-type": (_recipe(stages=[{"finetune": {"lr": "fast"}}]), [], "lr"),
    "unknown-stage": (_recipe(stages=[{"finetuned": {}}]), [], "unknown stage 'finetuned'"),
    "unknown-model": (_recipe(model="no-such-model"), [], "unknown model 'no-such-model'"),
    "unknown-dataset": (_recipe(data={"name": "no-such-data"}), [], "unknown dataset 'no-such-data'"),
    "override-without-equals": (_recipe(), ["stages.0.finetune.lr"], "key.path=value"),
    "override-bad-yaml": (_recipe(), ["stages.0.finetune.lr=[1,"], "not valid YAML"),
    "override-unknown-index": (_recipe(), ["stages.5.lr=1"], "no unique list item"),
    "export-without-qat": (_recipe(stages=[{"finetune": TINY}, {"export": {}}]), [], "right after 'qat_distill'"),
    "transfer-unknown-source": (
        _recipe(model="tiny-vit", data={"name": "digits"}, stages=[{"transfer": {**TINY, "source": "07-draw_ticket"}}]),
        [],
        "'07-draw_ticket' is not an earlier stage",
    ),
    "transfer-without-ticket": (
        _recipe(model="tiny-vit", data={"name": "digits"}, stages=[{"finetune": TINY}, {"transfer": TINY}]),
        [],
        "dense: true",
    ),
    "missing-data-file": (_recipe(data={"name": "ROOT/nope.csv"}), [], "'ROOT/nope.csv' does not exist"),
    "missing-model-folder": (_recipe(model="ROOT/no-model"), [], "'ROOT/no-model' does not exist"),
    "empty-csv": (_recipe(data={"name": "ROOT/empty.csv"}), [], "ROOT/empty.csv"),
    "header-only-csv": (_recipe(data={"name": "ROOT/header.csv"}), [], "ROOT/header.csv"),
    "latin1-csv": (_recipe(data={"name": "ROOT/latin1.csv"}), [], "UTF-8"),
    "csv-without-label-column": (_recipe(data={"name": "ROOT/nolabel.csv"}), [], "no column 'label'"),
    "csv-one-class": (_recipe(data={"name": "ROOT/oneclass.csv"}), [], "single class"),
    "csv-unknown-class": (_recipe(data={"name": "ROOT/good.csv", "classes": ["maybe"]}), [], "unknown class 'maybe'"),
    "unsupported-data-suffix": (_recipe(data={"name": "ROOT/data.txt"}), [], "unsupported suffix"),
    "text-data-image-model": (
        _recipe(model="tiny-vit", data={"name": "ROOT/good.csv"}),
        [],
        "is text but model 'tiny-vit' takes image",
    ),
    "image-data-text-model": (_recipe(data={"name": "digits"}), [], "is image but model 'tiny-bert' takes text"),
    "max-length-over-positions": (_recipe(data={"name": "ROOT/good.csv", "max_length": 100000}), [], "positions"),
    "truncated-image": (_recipe(model="tiny-vit", data={"name": "ROOT/images"}), [], "cat.png"),
    "hub-model-offline": (_recipe(model="nobody-xyz/no-model"), [], "nobody-xyz/no-model"),
    "hub-dataset-offline": (_recipe(data={"name": "nobody-xyz/no-data"}), [], "nobody-xyz/no-data"),
    "seeds-not-integers": (_recipe(), ["--seeds", "a,b"], "comma-separated integers"),
    "seeds-negative": (_recipe(), ["--seeds", "0,-1"], "non-negative"),
}


@pytest.fixture
def root(tmp_path):
    _csv(tmp_path / "empty.csv", "")
    _csv(tmp_path / "header.csv", "text,label\n")
    _csv(
        tmp_path / "latin1.csv",
        "text,label\n" + "".join(f"caf\u00e9 cr\u00e8me {i},{i % 2}\n" for i in range(40)),
        "latin-1",
    )
    _csv(tmp_path / "nolabel.csv", "text,category\n" + "".join(f"t {i},{i % 2}\n" for i in range(40)))
    _csv(tmp_path / "oneclass.csv", "text,label\n" + "".join(f"t {i},same\n" for i in range(40)))
    _csv(tmp_path / "good.csv", GOOD_ROWS)
    _csv(tmp_path / "data.txt", GOOD_ROWS)
    from PIL import Image

    for label in ("a", "b"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for i in range(6):
            Image.new("RGB", (16, 16), (40 * i, 0, 0)).save(tmp_path / "images" / label / f"{i}.png")
    good = (tmp_path / "images" / "a" / "0.png").read_bytes()
    (tmp_path / "images" / "b" / "cat.png").write_bytes(good[: len(good) // 2])  # truncated
    return tmp_path


def _write_recipe(root, spec) -> str:
    path = root / "recipe.yaml"
    if spec is None:
        return str(root / "missing.yaml")
    if spec == "LATIN1":
        path.write_bytes("name: caf\u00e9\n".encode("latin-1"))
        return str(path)
    text = spec if isinstance(spec, str) else json.dumps(spec)
    path.write_text(text.replace("DATA", str(root / "good.csv")).replace("ROOT", str(root)))
    return str(path)


def run_cli(argv, capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse rejects bad CLI values itself, with usage and code 2
        code = e.code
    captured = capsys.readouterr()
    return code, captured.err + captured.out


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_readable_error_and_leaves_nothing(case, root, capsys):
    spec, extra, phrase = CASES[case]
    runs = root / "runs"
    code, out = run_cli(["run", _write_recipe(root, spec), *extra, "--runs", str(runs)], capsys)
    assert code == 2, out
    assert phrase.replace("ROOT", str(root)) in out, out
    assert "Traceback" not in out and "sentencepiece" not in out
    assert len(out) < 4000  # echoed input is capped
    assert not runs.exists() or not any(runs.iterdir()), list(runs.rglob("*"))


def test_catalogue_is_at_least_thirty_inputs():
    assert len(CASES) + len(PREDICT_CASES) >= 30


PREDICT_CASES = {
    "predict-bad-jsonl": ("{not json", "line 1 is not JSON"),
    "predict-row-without-text": ('{"adapter": 0}', 'string "text"'),
    "predict-empty-input": ("", "holds no requests"),
}


@pytest.mark.parametrize("case", list(PREDICT_CASES))
def test_predict_input_errors_are_readable(case, root, capsys):
    text, phrase = PREDICT_CASES[case]
    adapter = root / "adapter"
    adapter.mkdir()
    (adapter / "artifact.json").write_text("{}")
    (root / "in.jsonl").write_text(text)
    code, out = run_cli(["predict", "--adapters", str(adapter), "--input", str(root / "in.jsonl")], capsys)
    assert code == 2 and phrase in out and "Traceback" not in out, out


def test_predict_without_an_adapter_folder(root, capsys):
    (root / "in.jsonl").write_text('{"adapter": 0, "text": "hi"}')
    code, out = run_cli(["predict", "--adapters", str(root / "nowhere"), "--input", str(root / "in.jsonl")], capsys)
    assert code == 2 and "not an adapter folder" in out and "Traceback" not in out


def test_debug_shows_the_traceback(root):
    with pytest.raises(Exception, match="unknown model"):
        main(["run", _write_recipe(root, _recipe(model="no-such-model")), "--debug"])


def test_disk_full_is_one_paragraph_and_leaves_no_stub_folder(root, capsys, monkeypatch):
    import errno

    import tailor.pipeline

    def full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(tailor.pipeline, "atomic_write_text", full)
    runs = root / "runs"
    code, out = run_cli(["run", _write_recipe(root, _recipe()), "--runs", str(runs)], capsys)
    assert code == 2 and "disk is full" in out and "config.yaml" in out and "Traceback" not in out, out
    assert not runs.exists() or not any(runs.iterdir())


def test_check_runs_every_check_and_makes_nothing(root, capsys):
    runs = root / "runs"
    recipe = _recipe(stages=[{"finetune": TINY}, {"vera": TINY}])
    code, out = run_cli(["run", _write_recipe(root, recipe), "--runs", str(runs), "--check"], capsys)
    assert code == 0 and "passes every check" in out and "02-vera: reads 01-finetune" in out
    assert not runs.exists()
