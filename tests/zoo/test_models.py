import pytest

from tailor.config import ConfigError
from tailor.zoo import models


def test_zoo_model_rejects_a_head_it_does_not_have():
    with pytest.raises(ConfigError, match=r"model 'tiny-vit' has no head 'mlm' \(heads: base, classifier\)"):
        models.load("tiny-vit", "mlm")


def test_unknown_names_fail_fast_with_the_zoo_listed():
    with pytest.raises(ConfigError, match="unknown model 'minilm-l7'.*minilm-l6"):
        models.check_name("minilm-l7")
    models.check_name("some-org/some-model")  # a hub id passes the offline check; loading decides later


def test_tiny_models_build_once_and_load_every_declared_head():
    for name in ("tiny-bert", "tiny-vit", "tiny-gpt2"):
        info = models.get_info(name)
        for head in info.heads:
            model = models.load(name, head, num_labels=3 if head == "classifier" else None)
            assert sum(p.numel() for p in model.parameters()) > 0


def test_a_stage_output_folder_takes_the_tokenizer_of_the_model_it_names(tmp_path):
    """save_hf writes no tokenizer files; transformers would build an empty-vocabulary tokenizer from
    config.json that maps every word to [UNK] (a recipe starting from a run's folder then trained on
    nothing but [UNK])."""
    from tailor.artifacts import save_hf

    art = save_hf(models.load("tiny-bert", "base"), tmp_path / "stage", "tiny-bert", head="base")
    source = models.tokenizer("tiny-bert")
    ids = models.tokenizer(str(art.path))("a great film")["input_ids"]
    assert ids == source("a great film")["input_ids"] and source.unk_token_id not in ids
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "config.json").write_text((art.path / "config.json").read_text())
    with pytest.raises(ConfigError, match="no tokenizer files"):
        models.tokenizer(str(tmp_path / "bare"))


def test_a_stage_output_folder_takes_the_image_processor_of_the_model_it_names(tmp_path):
    """An image stage's output holds no preprocessor_config.json; a recipe starting from it (the
    selfdistill repro's pre-trained ViT-MAE) must still resize and normalise as its source model did."""
    from transformers import ViTImageProcessor

    from tailor.artifacts import save_hf

    source = tmp_path / "source"
    models.load("tiny-vit", "base").save_pretrained(source)
    ViTImageProcessor(size={"height": 24, "width": 24}, image_mean=[0.1] * 3, image_std=[0.2] * 3).save_pretrained(
        source
    )
    art = save_hf(models.load(str(source), "base"), tmp_path / "stage", str(source), head="base")
    assert not (art.path / "preprocessor_config.json").exists()
    spec = models.image_spec(str(art.path))
    assert (spec.size, tuple(spec.mean), tuple(spec.std)) == (24, (0.1,) * 3, (0.2,) * 3)
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "config.json").write_text((art.path / "config.json").read_text())
    with pytest.raises(ConfigError, match="no preprocessor_config.json"):
        models.image_spec(str(tmp_path / "bare"))
