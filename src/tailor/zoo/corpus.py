"""Unlabeled corpora for further pre-training: a file, a folder of files or a hub dataset, streamed.

The self-distillation stages read D_u from the task's training split by default (the paper's
setting). A user adapting to a domain brings a larger unlabeled corpus instead; it is read through
`datasets` streaming (`load_dataset(..., streaming=True)`, an `IterableDataset`), so nothing is
held but the reader's current chunk, the shuffle buffer and one batch: memory stays flat in the
corpus size. Under torchrun each rank reads its own part (`datasets.distributed.split_dataset_by_node`:
whole files per rank when their number divides by the world size, else every world-size-th example).
Written here: only naming the files, the checks a user can act on and the column handling.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, model_validator

from ..config import ConfigError, StrictModel
from .text_corpora import ZOO_CORPORA, is_zoo_corpus, zoo_corpus_file

TEXT_FORMATS = {".txt": "text", ".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
READ_CHUNK = 1 << 20  # bytes the text and JSON readers take per read (datasets' default: 10 MiB)
_KINDS = ".txt (one example per line), .csv, .tsv, .json, .jsonl, .parquet or image files"


class CorpusConfig(StrictModel):
    """An unlabeled corpus streamed by `further_pretrain` / `self_distill` (`unlabeled:`); a bare string is `name`."""

    name: str = Field(
        description="a .txt/.csv/.tsv/.json/.jsonl/.parquet or image file, a folder of such files, a zoo corpus "
        f"({', '.join(ZOO_CORPORA)}) or a hub dataset id"
    )
    config: str | None = Field(None, description="hub dataset: its configuration (subset) name")
    split: str = Field("train", description="hub dataset: the split to stream")
    column: str | None = Field(
        None,
        description="the text or image column; default 'text' or 'image' by the model's "
        "modality (.txt files and image folders need none)",
    )
    shuffle_buffer: int = Field(1000, ge=0, description="examples held for a buffered shuffle (0: stream order)")

    @model_validator(mode="before")
    @classmethod
    def _bare_name(cls, value):
        return {"name": value} if isinstance(value, str) else value


def _kind(f: Path) -> str | None:
    suffix = f.suffix.lower()
    return "imagefolder" if suffix in IMAGE_SUFFIXES else TEXT_FORMATS.get(suffix)


def corpus_files(cfg: CorpusConfig, where: str = "unlabeled") -> tuple[str, list[Path]] | None:
    """(the `datasets` builder, the files) of a local or zoo corpus; None for a hub dataset."""
    if is_zoo_corpus(cfg.name):
        return "text", [zoo_corpus_file(cfg.name)]
    path = Path(cfg.name).expanduser()
    if path.is_file():
        kind = _kind(path)
        if kind is None:
            raise ConfigError(f"{where}: file '{path}' has an unsupported suffix {path.suffix!r}; use {_KINDS}")
        return kind, [path]
    if path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.is_file() and not f.name.startswith(".") and _kind(f))
        if not files:
            raise ConfigError(f"{where}: folder '{path}' holds no corpus files; put {_KINDS} in it")
        kinds = sorted({_kind(f) for f in files})
        if len(kinds) > 1:
            raise ConfigError(
                f"{where}: folder '{path}' mixes {' and '.join(kinds)} files; keep one kind of file "
                "in a corpus folder (or point unlabeled at a sub-folder)"
            )
        return kinds[0], files
    if cfg.name.startswith((".", "/", "~")) or _kind(path) is not None:
        raise ConfigError(
            f"{where}: file or folder '{cfg.name}' does not exist; check the path (relative paths "
            "start where tailor runs)"
        )
    return None


def _open(cfg: CorpusConfig, where: str):
    """The corpus as `datasets` streams it, every column kept, and the builder (None: a hub dataset)."""
    import datasets

    found = corpus_files(cfg, where)
    if found is None:
        return datasets.load_dataset(cfg.name, cfg.config, split=cfg.split, streaming=True), None
    kind, files = found
    extra = {
        "text": {"chunksize": READ_CHUNK},
        "json": {"chunksize": READ_CHUNK},
        "parquet": {},
        "csv": {"delimiter": "\t"} if files[0].suffix.lower() == ".tsv" else {},
        "imagefolder": {"drop_labels": True},
    }[kind]
    return datasets.load_dataset(kind, data_files=[str(f) for f in files], split="train", streaming=True, **extra), kind


def stream(cfg: CorpusConfig, modality: str, *, seed: int = 0, where: str = "unlabeled"):
    """The corpus as a `datasets.IterableDataset` with one column, `text` or `image`, shuffled in a buffer
    and, under torchrun, split across ranks. Nothing is read until it is iterated."""
    import datasets
    from datasets.distributed import split_dataset_by_node

    ds, kind = _open(cfg, where)
    column = source_column(cfg, modality, kind)
    if ds.features is not None and column not in ds.features:
        raise ConfigError(_missing_column(cfg, column, list(ds.features), where))
    ds = ds.select_columns([column])
    if column != modality:
        ds = ds.rename_column(column, modality)
    if modality == "image" and ds.features is not None and not isinstance(ds.features["image"], datasets.Image):
        ds = ds.cast_column("image", datasets.Image())  # e.g. a parquet column of encoded image bytes
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:  # before the shuffle, which interleaves files into one stream that could only be split by example
        ds = split_dataset_by_node(ds, rank=int(os.environ.get("RANK", "0")), world_size=world)
    if cfg.shuffle_buffer:  # file order shuffled each epoch, one file read at a time, examples through the buffer
        ds = ds.shuffle(seed=seed, buffer_size=cfg.shuffle_buffer, max_buffer_input_shards=1)
    return ds


def source_column(cfg: CorpusConfig, modality: str, kind: str | None) -> str:
    if kind in ("text", "imagefolder"):
        return {"text": "text", "imagefolder": "image"}[kind]
    return cfg.column or modality


def _missing_column(cfg: CorpusConfig, column: str, columns: list[str], where: str) -> str:
    return (
        f"{where}: corpus '{cfg.name}' has no column '{column}' (columns: {', '.join(columns) or 'none'}); "
        f"set {where}.column to the one holding the text or images"
    )


def check(cfg: CorpusConfig, modality: str | None, where: str = "unlabeled") -> list[str]:
    """The dry pass over a corpus: it exists, holds a readable first example in the right column, and its
    modality is the model's. Reads one example (one chunk of the first file), never the whole corpus."""
    from ..errors import describe

    try:
        found = corpus_files(cfg, where)
    except ConfigError as e:
        return [str(e)]
    kind = found[0] if found else None
    corpus_modality = "image" if kind == "imagefolder" else "text" if kind == "text" else None
    if modality and corpus_modality and corpus_modality != modality:
        return [
            f"{where}: corpus '{cfg.name}' is {corpus_modality} but the model takes {modality} input; "
            f"point unlabeled at {modality} data"
        ]
    wanted = modality or corpus_modality or "text"
    try:
        ds, _ = _open(cfg, where)
        first = next(iter(ds), None)
    except Exception as e:  # noqa: BLE001  (datasets/pyarrow/PIL raise many types for a bad file or an offline hub)
        detail = describe(e) or f"{type(e).__name__}: {e}".splitlines()[0][:300]
        fix = "check the file's format" if kind else "check the dataset name, config and split"
        return [f"{where}: corpus '{cfg.name}' could not be read ({detail}); {fix}"]
    if first is None:
        return [
            f"{where}: corpus '{cfg.name}' has no examples; add some, or remove unlabeled to use the task's "
            "training inputs"
        ]
    column = source_column(cfg, wanted, kind)
    if column not in first:
        return [_missing_column(cfg, column, list(first), where)]
    value = first[column]
    if wanted == "text" and not isinstance(value, str):
        return [
            f"{where}: column '{column}' of corpus '{cfg.name}' holds "
            f"{type(value).__name__}, not text; set {where}.column to a text column"
        ]
    return []
