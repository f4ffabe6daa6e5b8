"""Model artifacts on disk: one folder per version, written atomically.

``<directory>/<version>/`` holds ``weights.pt`` (the state_dict), ``config.json`` (ModelConfig) and
``extra.json`` (whatever the caller records: processor state, data range, segments, history) and
``version.txt``. ``version`` is a short hash of the weights and the config, so identical models share a
version and every prediction row can name the exact weights that produced it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.config import ModelConfig, stored_dict
from models.networks import build_network
from models.training import resolve_device

WEIGHTS = "weights.pt"
CONFIG = "config.json"
EXTRA = "extra.json"
VERSION = "version.txt"
VERSION_CHARS = 12


@dataclass(frozen=True)
class ArtifactInfo:
    path: Path
    version: str


def _config_json(config: ModelConfig) -> str:
    return json.dumps(stored_dict(config), sort_keys=True)


def _jsonable(value: Any) -> Any:
    """NaN / inf become strings so the files stay strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def weights_version(state: dict[str, torch.Tensor], config: ModelConfig) -> str:
    """Content hash of the tensors (names, dtypes, shapes, bytes) and the config."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    h.update(_config_json(config).encode())
    return h.hexdigest()[:VERSION_CHARS]


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temp file in the same folder, then rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_artifact(
    directory: str | Path, model: nn.Module, config: ModelConfig, extra: dict[str, Any] | None = None
) -> ArtifactInfo:
    """Store ``model``'s weights with ``config`` and ``extra`` under ``directory/<version>``.

    The folder is assembled under a temporary name and renamed into place, so a killed run leaves no partial
    artifact. Saving the same weights and config again only refreshes ``extra.json`` (atomically).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    version = weights_version(state, config)
    extra_text = json.dumps(_jsonable(extra or {}), indent=1, sort_keys=True, default=str)
    target = directory / version
    if target.is_dir():
        _write_text(target / EXTRA, extra_text)
        return ArtifactInfo(target, version)
    tmp = Path(tempfile.mkdtemp(dir=directory, prefix=f".{version}.", suffix=".tmp"))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the published folder should read like any other
    try:
        torch.save(state, tmp / WEIGHTS)
        (tmp / CONFIG).write_text(_config_json(config))
        (tmp / EXTRA).write_text(extra_text)
        (tmp / VERSION).write_text(version)
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if target.is_dir():  # a concurrent writer stored the same version first
            _write_text(target / EXTRA, extra_text)
            return ArtifactInfo(target, version)
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ArtifactInfo(target, version)


def load_artifact(
    path: str | Path, device: str | torch.device = "cpu", verify: bool = True
) -> tuple[nn.Module, ModelConfig, dict[str, Any]]:
    """The network (eval mode, on ``device``), its config and the extra record of an artifact folder.

    With ``verify`` the weights are re-hashed and must match the recorded version.
    """
    path = Path(path)
    if not (path / WEIGHTS).is_file() or not (path / CONFIG).is_file():
        raise FileNotFoundError(f"{path} is not a model artifact (needs {WEIGHTS} and {CONFIG})")
    config = ModelConfig.from_dict(json.loads((path / CONFIG).read_text()))
    state = torch.load(path / WEIGHTS, map_location="cpu", weights_only=True)
    if verify:
        found = weights_version(state, config)
        recorded = (path / VERSION).read_text().strip() if (path / VERSION).is_file() else path.name
        if found != recorded:
            raise ValueError(f"artifact {path} is corrupt: its content hashes to {found}, recorded {recorded}")
    extra = json.loads((path / EXTRA).read_text()) if (path / EXTRA).is_file() else {}
    model = build_network(config)
    model.load_state_dict(state)
    model.to(torch.device(resolve_device(device))).eval()
    return model, config, extra
