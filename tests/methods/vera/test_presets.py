"""Target presets and the paper's parameter accounting (Sec. 3.2: |Theta| = L_tuned (d_model + r))."""

import pytest

from tailor.methods.vera.adapters import build_lora, build_vera, count_parameters
from tailor.methods.vera.config import LoraFields, VeraFields
from tailor.methods.vera.presets import head_modules_for, target_modules_for

from .conftest import tiny_bert, tiny_dinov2, tiny_gpt2, tiny_llama


def test_presets_per_family():
    assert target_modules_for(tiny_bert()) == ["query", "value"]
    assert target_modules_for(tiny_dinov2()) == ["q_proj", "v_proj"]
    assert target_modules_for(tiny_gpt2()) == ["c_attn", "c_proj", "c_fc"]
    assert set(target_modules_for(tiny_llama())) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    assert target_modules_for(tiny_bert(), ["key"]) == ["key"]
    assert head_modules_for(tiny_bert()) == ["pooler.dense", "classifier"] and head_modules_for(tiny_llama()) == []


def test_unknown_family_lists_valid_choices():
    class Cfg:
        model_type = "mamba"

    class M:
        config = Cfg()

    with pytest.raises(ValueError, match="'bert'"):
        target_modules_for(M())


def test_vera_counts_match_paper_formula_on_bert_qv():
    # 2 layers x {query, value} = L_tuned 4, d_model 32, r 64 -> 4 * (32 + 64) = 384; head excluded.
    counts = count_parameters(build_vera(tiny_bert(num_labels=3), VeraFields(r=64)))
    assert counts["adapter_params"] == 4 * (32 + 64)
    assert counts["head_params"] == (32 * 32 + 32) + (32 * 3 + 3)  # pooler + classifier


def test_vera_and_lora_counts_on_llama_mixed_shapes():
    # Per block: q (32->32), k (32->16), v (32->16), o (32->32), gate/up (32->48), down (48->32).
    outs_ins = [(32, 32), (16, 32), (16, 32), (32, 32), (48, 32), (48, 32), (32, 48)]
    r = 16
    vera = count_parameters(build_vera(tiny_llama(), VeraFields(r=r, task="causal_lm")))
    assert vera == {
        "adapter_params": 2 * sum(m + r for m, _ in outs_ins),
        "head_params": 0,
        "trainable_params": 2 * sum(m + r for m, _ in outs_ins),
    }
    lora = count_parameters(build_lora(tiny_llama(), LoraFields(r=4, task="causal_lm")))
    assert lora["adapter_params"] == 2 * sum(4 * (m + n) for m, n in outs_ins)


def test_rank_may_exceed_layer_width():
    counts = count_parameters(build_vera(tiny_bert(), VeraFields(r=1024)))
    assert counts["adapter_params"] == 4 * (32 + 1024)


def test_save_projection_false_rejects_unregenerable_projections():
    with pytest.raises(ValueError, match="projection_init"):
        VeraFields(save_projection=False, projection_init="uniform")
    with pytest.raises(ValueError, match="extra|forbid|not permitted"):
        VeraFields(rank=4)
