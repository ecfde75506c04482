"""Find a model on disk: a local folder, or a Hugging Face id through the Hugging Face cache."""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from summarize_cli.errors import ModelLoadError, ModelUnavailable

HUB_FILES = ["*.json", "*.model", "*.txt", "*.safetensors", "*.tiktoken"]
T5_FAMILY = {"t5", "mt5", "umt5", "longt5", "switch_transformers"}


@dataclass(frozen=True)
class ModelSource:
    """A model folder on disk; `revision` changes whenever its files do. `local`: a folder the user named
    (`-m PATH`), not a Hub id's snapshot."""

    name: str
    path: Path
    revision: str
    local: bool = False

    @cached_property
    def config(self) -> dict:
        return read_json(self.path / "config.json")

    @cached_property
    def generation_config(self) -> dict:
        return read_json(self.path / "generation_config.json")

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type", ""))


def read_json(path: Path) -> dict:
    """A model folder's JSON file (config, generation or tokenizer config), or {} when absent or broken."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def offline_mode(flag: bool = False) -> bool:
    return flag or os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _how_to_get(name: str) -> str:
    return (
        f"download it once on a connected machine (`hf download {name}`, or any run of summarize there) "
        f"and copy the Hugging Face cache (~/.cache/huggingface) here, or pass a local model folder with -m PATH"
    )


def resolve_model(name: str, offline: bool = False, on_status=lambda message: None) -> ModelSource:
    """Return the folder holding `name`, downloading it into the cache unless offline."""
    found = model_at_hand(name)
    if found is not None:
        return found
    if name.startswith((".", "/", "~")) or name.endswith("/") or os.sep in name.strip("/").replace("/", "", 1):
        raise ModelLoadError(f"model folder '{name}' does not exist")
    return _from_hub(name, offline_mode(offline), on_status)


def model_at_hand(name: str) -> ModelSource | None:
    """`name` as a local folder, or as a Hub id whose snapshot the Hugging Face cache holds; None when
    only huggingface_hub could say more (to download it, or why it cannot be had)."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise ModelLoadError(f"model folder '{name}' holds no config.json: it is not a Hugging Face model folder")
        return ModelSource(name, folder.resolve(), fingerprint(folder), local=True)
    cached = cached_snapshot(name)  # never a path: a Hub id has no leading dot or slash, at most one slash
    return None if cached is None else ModelSource(name, cached, cached.name)


def hub_cache() -> Path:
    """The Hugging Face cache's folder, found as huggingface_hub finds it (HF_HUB_CACHE, then the legacy
    HUGGINGFACE_HUB_CACHE, then HF_HOME/hub, then XDG_CACHE_HOME/huggingface/hub)."""
    caches = os.getenv("XDG_CACHE_HOME", os.path.expanduser("~/.cache"))
    home = os.path.expandvars(os.path.expanduser(os.getenv("HF_HOME", os.path.join(caches, "huggingface"))))
    folder = os.getenv("HF_HUB_CACHE", os.getenv("HUGGINGFACE_HUB_CACHE", os.path.join(home, "hub")))
    return Path(os.path.expandvars(os.path.expanduser(folder)))


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def cached_snapshot(name: str) -> Path | None:
    """The cached snapshot of hub model `name` at its main branch, read off the cache's own layout
    (models--ORG--NAME/refs/main names the snapshot), when it holds a config and weights; else None.

    Importing huggingface_hub to ask it costs 230 ms at every run's start (its HTTP stack comes along),
    more than loading the model; it is imported only when the cache does not answer (to download, or to
    say why not)."""
    if not _HUB_ID.fullmatch(name) or "--" in name or ".." in name:
        return None
    repo = hub_cache() / f"models--{name.replace('/', '--')}"
    try:
        commit = (repo / "refs" / "main").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not commit or "/" in commit or commit.startswith("."):
        return None
    snapshot = repo / "snapshots" / commit
    if not (snapshot / "config.json").is_file() or not _has_weights(snapshot):
        return None
    return snapshot


def _from_hub(name: str, offline: bool, on_status) -> ModelSource:
    from summarize_cli.quiet import quiet_environment

    quiet_environment()  # before huggingface_hub reads its settings: no tqdm bars on the terminal
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    try:
        path = Path(snapshot_download(name, allow_patterns=HUB_FILES, local_files_only=True))
        if not _has_weights(path) and not offline:
            raise LocalEntryNotFoundError("weights missing from the cached snapshot")
    except LocalEntryNotFoundError:
        if offline:
            raise ModelUnavailable(
                f"model '{name}' is not in the Hugging Face cache and offline mode is on", _how_to_get(name)
            ) from None
        on_status(f"Downloading {name} from the Hugging Face Hub into its cache (once) ...")
        try:
            path = Path(snapshot_download(name, allow_patterns=HUB_FILES))
            if not _has_weights(path):
                path = Path(snapshot_download(name, allow_patterns=HUB_FILES + ["pytorch_model.bin"]))
        except GatedRepoError:
            raise ModelLoadError(
                f"model '{name}' is gated on the Hugging Face Hub: accept its terms there and run `hf auth login`"
            ) from None
        except RepositoryNotFoundError:
            raise ModelLoadError(
                f"model '{name}' is neither a local folder nor a model on the Hugging Face Hub"
            ) from None
        except LocalEntryNotFoundError:
            raise ModelUnavailable(
                f"model '{name}' is not in the Hugging Face cache and the Hub cannot be reached", _how_to_get(name)
            ) from None
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot download model '{name}': {exc}. {_how_to_get(name)}") from None
    except HFValidationError:
        raise ModelLoadError(f"model '{name}' is neither a local folder nor a valid Hugging Face id") from None
    if not _has_weights(path):
        raise ModelLoadError(f"model '{name}' has no PyTorch or safetensors weights in {path}")
    return ModelSource(name, path, path.name)


def check_weights(folder: Path) -> None:
    """Refuse a truncated or corrupt safetensors file (an interrupted copy or download) in one line naming
    it, before a backend reads it: the converter would take it for a model CTranslate2 cannot handle, and the
    torch loader fails with an unexplained error. Only the header is read: a few kilobytes per file."""
    for path in sorted(folder.glob("*.safetensors")):
        try:
            problem = _safetensors_problem(path)
        except OSError as exc:  # a link into the cache's blobs whose blob is gone, a file made unreadable
            problem = f"it cannot be read: {exc.strerror or exc}"
        if problem is not None:
            raise ModelLoadError(f"{path} is corrupt or incomplete ({problem}); copy or download the model again")


def _safetensors_problem(path: Path) -> str | None:
    """What is wrong with a safetensors file's framing (8-byte header length, JSON header, data the offsets
    cover), or None."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            return f"{size} bytes, too short for a header"
        length = int.from_bytes(head, "little")
        if length > size - 8:
            return f"{size} bytes where its header alone claims {length + 8}"
        try:
            header = json.loads(handle.read(length))
            ends = [t["data_offsets"][1] for name, t in header.items() if name != "__metadata__"]
        except (ValueError, UnicodeDecodeError, TypeError, KeyError, IndexError, AttributeError):
            return "its header is not a valid safetensors header"
    needed = 8 + length + max(ends, default=0)
    return f"{size} bytes where its header needs {needed}" if size < needed else None


def _has_weights(folder: Path) -> bool:
    return any(folder.glob("*.safetensors")) or (folder / "pytorch_model.bin").exists()


def fingerprint(folder: Path) -> str:
    """A cheap content key for a local folder: its config plus each file's name, size and mtime."""
    digest = hashlib.sha256()
    digest.update(str(folder.resolve()).encode())
    for path in sorted(folder.iterdir()):
        if path.is_file():
            info = path.stat()
            digest.update(f"{path.name}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    config = folder / "config.json"
    digest.update(config.read_bytes())
    return digest.hexdigest()[:16]
