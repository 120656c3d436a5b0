"""Artifacts: typed fields round-trip through artifact.json; a folder written by another version, or
settings that do not fit the format's declared model, are refused with what to do; the pipeline runs
such a stage again instead of handing it on."""

import json

import pytest

from tailor.artifacts import ARTIFACT_VERSION, Artifact, ArtifactVersionError
from tailor.methods.kdqat.config import QuantConfig


def test_typed_fields_round_trip(tmp_path):
    art = Artifact(
        tmp_path / "m",
        "tiny-bert",
        "kdqat_student",
        "classifier",
        ["neg", "pos"],
        meta=QuantConfig(weight_bits=2).model_dump(),
    ).save()
    loaded = Artifact.load(art.path)
    assert (loaded.head, loaded.label_names, loaded.num_labels, loaded.base) == ("classifier", ["neg", "pos"], 2, None)
    assert loaded.settings() == QuantConfig(weight_bits=2)
    assert json.loads((art.path / "artifact.json").read_text())["version"] == ARTIFACT_VERSION


def test_a_record_of_another_version_is_refused_with_what_to_do(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "artifact.json").write_text(
        json.dumps(
            {"path": ".", "model_name": "tiny-bert", "format": "hf", "meta": {"head": "classifier"}, "files": {}}
        )
    )
    with pytest.raises(ArtifactVersionError, match="another version of tailor.*run the stage that made it again"):
        Artifact.load(folder)


def test_settings_that_do_not_fit_the_formats_model_are_refused(tmp_path):
    art = Artifact(
        tmp_path / "m", "tiny-bert", "kdqat", "classifier", ["a", "b"], meta={"weight_bits": 2, "no_such_key": 1}
    ).save()
    with pytest.raises(ArtifactVersionError, match="'kdqat' settings do not match.*no_such_key"):
        Artifact.load(art.path)


def test_the_pipeline_reruns_a_stage_finished_by_another_version(tiny_recipe, tmp_path, caplog):
    from tailor.pipeline import run_recipe
    from tailor.recipe import parse_recipe

    recipe = parse_recipe(tiny_recipe)
    first = run_recipe(recipe, tmp_path)
    record_file = first.path / "seed-0" / "01-finetune" / "model" / "artifact.json"
    record = json.loads(record_file.read_text())
    record["version"] = 1
    record_file.write_text(json.dumps(record))
    with caplog.at_level("WARNING"):
        again = run_recipe(recipe, tmp_path)
    assert "another version of tailor" in caplog.text
    assert json.loads(record_file.read_text())["version"] == ARTIFACT_VERSION
    assert (
        again.results["seeds"]["0"]["01-finetune"]["test"]["accuracy"]
        == first.results["seeds"]["0"]["01-finetune"]["test"]["accuracy"]
    )


def test_a_folder_without_an_artifact_is_refused_by_the_commands_that_read_one(tmp_path, capsys):
    from tailor.cli import main

    assert main(["export", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert main(["export-ticket", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.count("is not an artifact folder (no artifact.json)") == 2
    assert not (tmp_path / "out").exists()
