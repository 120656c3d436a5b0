"""Atomic writes: the target is replaced only by a complete write, and a failure leaves no trace."""

import pytest
import torch
from safetensors.torch import load_file

from tailor.files import atomic_folder, atomic_path, atomic_save_safetensors, atomic_write_text


def test_text_and_safetensors_replace_the_target(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "one")
    atomic_write_text(tmp_path / "a.txt", "two")
    atomic_save_safetensors({"w": torch.arange(6).reshape(2, 3).t()}, tmp_path / "w.safetensors", {"k": "v"})
    assert (tmp_path / "a.txt").read_text() == "two"
    assert torch.equal(load_file(tmp_path / "w.safetensors")["w"], torch.arange(6).reshape(2, 3).t())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "w.safetensors"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "a.txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert (tmp_path / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path):
    out = tmp_path / "adapter"
    with atomic_folder(out) as tmp:
        (tmp / "x").write_text("1")
    with pytest.raises(RuntimeError), atomic_folder(out) as tmp:
        (tmp / "y").write_text("2")
        raise RuntimeError("killed")
    assert [p.name for p in out.iterdir()] == ["x"]
    with atomic_folder(out) as tmp:
        (tmp / "z").write_text("3")
    assert [p.name for p in out.iterdir()] == ["z"]
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]
