"""The KD-QAT comparison is fair: every KD preset distils the same teacher into the same initial
student, on the same data, with the same QAT recipe and selection rule; only the loss differs."""

import dataclasses

import pytest

from tailor.methods.kdqat import repro
from tailor.methods.kdqat import stages as kdqat_stages
from tests.methods.fairness import assert_same_tensors, record_initial_states, text_csv


def _profile(tmp_path):
    quick = repro.PROFILES["quick"]
    return dataclasses.replace(
        quick,
        seeds=(0,),
        model="tiny-bert",
        tasks=("texts",),
        task_data={"texts": {"name": str(text_csv(tmp_path / "texts.csv"))}},
        data={"max_length": 12, "train_size": 24, "test_size": 12},
        finetune={"steps": 2, "batch_size": 8, "log_every": 1},
        qat={**quick.qat, "epochs": 1, "batch_size": 8, "eval_every": 1},
    )


def test_student_recipes_differ_only_in_the_kd_loss(tmp_path):
    p = _profile(tmp_path)
    teacher = tmp_path / "teacher"
    resolved = [repro._student_recipe("texts", teacher, d, p).resolved() for _, d in p.methods]
    for cfg in resolved:
        stage = dict(cfg["stages"][0]["qat_distill"])
        first = dict(resolved[0]["stages"][0]["qat_distill"])
        stage.pop("distill"), first.pop("distill")
        assert stage == first and stage["select"] == "best" and stage["eval_every"]
        assert cfg["model"] == str(teacher) and cfg["data"] == resolved[0]["data"]


@pytest.mark.slow
def test_every_preset_starts_from_the_same_student(tmp_path, monkeypatch):
    monkeypatch.setitem(repro.PROFILES, "quick", _profile(tmp_path))
    states = record_initial_states(monkeypatch, kdqat_stages)
    repro.run("quick", tmp_path / "out")
    students = {name: s for (name, _, _), s in states.items()}
    assert len(students) == len(repro.BASE_METHODS)
    first = next(iter(students.values()))
    for name, state in students.items():
        assert_same_tensors(state, first, name)  # every tensor, head included: the teacher's checkpoint
