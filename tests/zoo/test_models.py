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
