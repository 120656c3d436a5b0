"""ViT-MAE artifacts: keep the MAE decoder for the teacher, hand a ViT classifier to ``finetune``.

transformers has no image-classification head for ``vit_mae``. As in the authors' code (a
``ViTForImageClassification`` built from the MAE encoder's weights), the ``classifier`` head is a
ViT with the same encoder weights and a fresh linear head on the [CLS] token.
"""

from __future__ import annotations

import logging

from torch import nn

log = logging.getLogger(__name__)

FORMAT = "selfdistill_vitmae"
_SHARED_FIELDS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
                  "hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range", "layer_norm_eps",
                  "image_size", "patch_size", "num_channels", "qkv_bias")


def vit_classifier_from_mae(folder, num_labels: int) -> nn.Module:
    """A ``ViTForImageClassification`` carrying the ``vit.*`` encoder weights of a saved ViTMAE model."""
    from transformers import ViTConfig, ViTForImageClassification, ViTMAEModel

    encoder = ViTMAEModel.from_pretrained(folder)
    model = ViTForImageClassification(ViTConfig(num_labels=num_labels,
                                                **{k: getattr(encoder.config, k) for k in _SHARED_FIELDS}))
    missing, unexpected = model.vit.load_state_dict(encoder.state_dict(), strict=False)
    if missing or unexpected:
        raise ValueError(f"{folder}: ViTMAE encoder weights do not match the ViT encoder "
                         f"(missing {missing[:4]}, unexpected {unexpected[:4]})")
    log.info("%s: ViT classifier built from the MAE encoder; the classifier head is new", folder.name)
    return model


def load_vitmae(artifact, head: str, num_labels: int | None) -> nn.Module:
    from transformers import ViTMAEForPreTraining, ViTMAEModel

    if head == "classifier":
        if num_labels is None:
            raise ValueError("head='classifier' needs num_labels")
        return vit_classifier_from_mae(artifact.path, num_labels)
    if head == "base":
        return ViTMAEModel.from_pretrained(artifact.path)
    if head == "mlm":
        return ViTMAEForPreTraining.from_pretrained(artifact.path)
    raise ValueError(f"{artifact.path}: a ViTMAE artifact has heads base, mlm (the MAE decoder), classifier; got '{head}'")
