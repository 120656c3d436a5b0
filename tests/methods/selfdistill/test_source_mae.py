"""The image reproduction's ViT-MAE stand-in: tailor pre-trains a ViT-MAE (with its decoder) on one image
domain, and FT / FPT / SD on another start from it, its own decoder and MAE loss throughout."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import ViTMAEForPreTraining

from tailor.methods.finetune import stages as finetune_stages
from tailor.methods.selfdistill import repro
from tailor.methods.selfdistill import stages as sd_stages
from tailor.methods.selfdistill.source_mae import SourceMAE, build_init
from tests.methods.fairness import assert_same_tensors, non_encoder, record_initial_states

SOURCE = SourceMAE(
    "tiny-mae",
    data={"name": "digits", "train_size": 64, "test_size": 32},
    pretrain={"steps": 3, "batch_size": 16, "lr": 1e-3, "log_every": 1},
    image_size=16,
    hidden_size=16,
    layers=2,
    heads=2,
    decoder_hidden_size=16,
    decoder_layers=1,
)


def _image_task() -> repro.Task:
    return repro.Task(
        "digits",
        f"<out>/{SOURCE.name}",
        {"name": "digits", "train_size": 32, "test_size": 16, "image_size": SOURCE.image_size},
        "accuracy",
        {"steps": 2, "batch_size": 8, "log_every": 1, "eval_batch_size": 16},
        {"steps": 2, "batch_size": 8, "log_every": 1, "mask_ratio": 0.75},
        source=SOURCE,
    )


def _record_masked_starts(monkeypatch) -> dict:
    """{the training folder: state dict when it began} for every masked auto-encoding run (FPT, SD rounds)."""
    states, real = {}, sd_stages.train

    def recording(model, *args, out_dir, **kwargs):
        states[str(out_dir)] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return real(model, *args, out_dir=out_dir, **kwargs)

    monkeypatch.setattr(sd_stages, "train", recording)
    return states


def test_the_source_data_is_read_at_the_model_image_size():
    assert SOURCE.recipe("init")["data"] == {"name": "digits", "train_size": 64, "test_size": 32, "image_size": 16}


def test_the_init_is_a_seeded_vit_mae_with_its_decoder_and_processor(tmp_path):
    a, b = build_init(SOURCE, tmp_path / "a"), build_init(SOURCE, tmp_path / "b")
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert any(k.startswith("decoder.") for k in wa) and any(k.startswith("vit.") for k in wa)
    assert_same_tensors(wa, wb, "two builds of the init")
    assert (a / "preprocessor_config.json").is_file()


def test_a_vit_mae_source_has_nothing_to_carry_though_transformers_renames_its_weights(tmp_path):
    """transformers 5 loads ViT-MAE's `vit.encoder.layer.N.attention.attention.query` as
    `vit.layers.N.attention.q_proj` and saves the old names: compared with the in-memory names alone,
    every renamed tensor of the checkpoint looked missing and was carried (stale) over the trained one."""
    from tailor.artifacts import Artifact
    from tailor.methods.selfdistill.stages import carried_tensors

    folder = build_init(SOURCE, tmp_path / "init")
    model = ViTMAEForPreTraining.from_pretrained(folder)
    assert carried_tensors(Artifact(folder, str(folder), "hf"), model) == {}


def test_a_task_whose_zoo_data_is_missing_is_skipped_before_any_pre_training(monkeypatch):
    from types import SimpleNamespace

    gone = SimpleNamespace(name="digits", package="scikit-learn", available=lambda: False)
    monkeypatch.setattr(repro, "list_datasets", lambda: [gone])
    assert repro._available(_image_task()) == "dataset 'digits' needs scikit-learn"
    monkeypatch.setattr(repro, "list_datasets", lambda: [])
    assert repro._available(_image_task()) is None


def test_the_plan_lists_the_source_pre_training_before_the_arms_that_use_it():
    runs = repro.planned_runs("standard")
    names = [r.recipe["name"] for r in runs]
    assert names[0] == "sd-source-vit-mae-mnist" and runs[0].recipe["model"] == "<out>/vit-mae-mnist-init"
    image = [r for r in runs if r.recipe["data"]["name"] == "fashion-mnist"]
    assert {r.recipe["model"] for r in image} == {
        "<runs>/sd-source-vit-mae-mnist-<digest>/seed-0/01-further_pretrain/model"
    } and len(image) == 3


@pytest.mark.slow
def test_every_arm_adapts_the_pre_trained_mae_and_fine_tunes_from_the_same_head(tmp_path, monkeypatch):
    monkeypatch.setattr(repro, "profiles", lambda: {"quick": repro.Profile(tasks=(_image_task(),), methods=repro.CORE)})
    ft_states = record_initial_states(monkeypatch, finetune_stages)
    pt_states = _record_masked_starts(monkeypatch)
    out = tmp_path / "out"
    results = repro.run("quick", out, seeds=[0])
    assert set(results["tasks"]["digits"]["methods"]) == set(repro.CORE)

    init = load_file(str(out / f"{SOURCE.name}-init" / "model.safetensors"))
    folder = Path(results["tasks"]["digits"]["model"])  # the source pre-training's artifact
    assert folder.parts[-2:] == ("01-further_pretrain", "model") and "sd-source-tiny-mae" in str(folder)
    source = ViTMAEForPreTraining.from_pretrained(folder).state_dict()  # in-memory names, as training sees them
    start = ViTMAEForPreTraining.from_pretrained(out / f"{SOURCE.name}-init").state_dict()
    # pre-trained: every encoder matrix moved (a stale init tensor carried into the artifact would not have)
    matrices = [k for k in source if k.startswith("vit.") and k.endswith("weight") and source[k].dim() == 2]
    assert len(matrices) >= SOURCE.layers * 6  # q, k, v, o and the two MLP matrices of every layer
    assert not [k for k in matrices if torch.equal(source[k], start[k])]
    assert sorted(init) == sorted(load_file(str(folder / "model.safetensors")))  # no stale tensor carried beside
    # further pre-training and the SD student start from the source's encoder AND its pre-trained decoder
    masked = {where: s for where, s in pt_states.items() if "sd-source" not in where}
    assert {"01-further_pretrain", "round-1"} <= {where.rsplit("/", 1)[-1] for where in masked}
    for where, state in masked.items():
        assert_same_tensors(state, source, f"{where} start")
    # every arm's fine-tune draws the same classifier on top of its encoder
    starts = {name: s for (name, _, stage), s in ft_states.items() if stage.endswith("finetune")}
    assert len(starts) == 3
    heads = [non_encoder(s, r"^vit\.") for s in starts.values()]
    for head in heads[1:]:
        assert_same_tensors(head, heads[0], "classifier at the start of fine-tuning")
