"""Converters from registry-shipped assets (ONNX, GGUF, foreign state dicts) to Hugging Face folders.

One module per source; each exposes ``PACKAGE`` (the asset's distribution name) and
``build(dest)``, which writes a ``save_pretrained`` folder (safetensors) plus tokenizer or
preprocessing files into ``dest``. ``tailor.zoo.cache.cached_folder`` runs a build once per
installed package version.
"""
