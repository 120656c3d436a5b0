"""What a run's identity covers beyond its settings: the content of its data and of its model.

The run folder is named by a hash of the resolved recipe, so these fingerprints go into it: edit
the CSV a recipe points at (or replace the weights in a local model folder) and the next run gets a
new folder instead of the old results. Local files and folders are hashed by content; zoo entries
by the version of the registry package that ships them; hub datasets and models by the revision
the local Hugging Face cache resolved (or "unresolved" when it has none). An unlabeled corpus is
hashed over the files it streams (every file of a corpus folder that tailor reads).
"""

from __future__ import annotations

import hashlib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .integrity import folder_hashes, sha256_file


def _combined(hashes: dict[str, str]) -> str:
    return hashlib.sha256("\n".join(f"{k} {v}" for k, v in sorted(hashes.items())).encode()).hexdigest()


def local_fingerprint(path: Path) -> str:
    """sha256 of a file, or of a folder's (relative path, content hash) list."""
    path = Path(path).expanduser()
    return "sha256:" + (sha256_file(path) if path.is_file() else _combined(folder_hashes(path)))


def _package_version(package: str | None) -> str:
    if not package:
        return "built-in"
    try:
        return f"{package}=={version(package)}"
    except PackageNotFoundError:
        return f"{package} (not installed)"


def _hub_revision(repo_id: str, kind: str) -> str:
    """The commit the local hub cache has for `repo_id` (refs/main), without going online."""
    from huggingface_hub.constants import HF_HUB_CACHE

    ref = Path(HF_HUB_CACHE) / f"{kind}s--{repo_id.replace('/', '--')}" / "refs" / "main"
    return f"hub:{repo_id}@{ref.read_text().strip()}" if ref.is_file() else f"hub:{repo_id}@unresolved"


def data_fingerprint(name: str) -> str:
    from .zoo.data import _DATASETS

    if name in _DATASETS:
        return f"zoo:{name}:{_package_version(_DATASETS[name].package if name != 'fashion-mnist' else None)}"
    path = Path(name).expanduser()
    if path.exists():
        return local_fingerprint(path)
    return _hub_revision(name, "dataset")


def data_config_fingerprint(cfg) -> str | dict[str, str]:
    """The fingerprint of a `DataConfig`: of its dataset, or of each file it lists in `files`."""
    if cfg.files is not None:
        return {split: data_fingerprint(str(path)) for split, path in cfg.files.items()}
    return data_fingerprint(cfg.name)


def corpus_fingerprint(cfg) -> str:
    """The fingerprint of an unlabeled corpus (`CorpusConfig`): its files' content, or the hub revision
    with the configuration and split streamed."""
    from .zoo.corpus import corpus_files
    from .zoo.text_corpora import is_zoo_corpus, zoo_corpus_key

    if is_zoo_corpus(cfg.name):  # the package's version and the chunking's revision
        return f"zoo:{zoo_corpus_key(cfg.name)}"
    path = Path(cfg.name).expanduser()
    if path.exists():
        found = corpus_files(cfg)
        return "sha256:" + _combined(
            {f.relative_to(path).as_posix() if path.is_dir() else f.name: sha256_file(f) for f in found[1]}
        )
    return f"{_hub_revision(cfg.name, 'dataset')}:{cfg.config or 'default'}:{cfg.split}"


def model_fingerprint(name: str) -> str:
    from .zoo.models import get_info

    info = get_info(name)
    if info is not None:
        return f"zoo:{name}:" + ",".join(_package_version(p) for p in info.packages or (None,))
    path = Path(name).expanduser()
    if path.is_dir():
        return local_fingerprint(path)
    return _hub_revision(name, "model")
