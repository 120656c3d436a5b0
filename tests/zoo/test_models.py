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
