"""Data files of a task: a local path from ``--metadata`` or the environment, else a pinned download.

Downloads go once into the project cache (atomic rename, never half-written); a pinned official file is
checked against its SHA-256, byte for byte, and the error names the local override to use instead.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from lr_eval.config import cache_dir


def download_cached(url: str, relpath: str, timeout: float = 120.0) -> Path:
    """A file from `url`, downloaded once into the project cache (atomic rename, so never half-written)."""
    target = cache_dir() / "data" / relpath
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=timeout) as resp:
            while chunk := resp.read(1 << 20):
                f.write(chunk)
        os.replace(tmp, target)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise RuntimeError(f"could not download {url} ({e}); download it yourself and pass its local path "
                           "(see the task's documentation for the override)") from e
    return target


def download_checked(url: str, relpath: str, sha256: str, override_hint: str | None = None) -> Path:
    """:func:`download_cached`, then its SHA-256 checked: a pinned official file, byte for byte.

    ``override_hint`` names the local override, for the error when the download fails or the bytes differ.
    """
    also = f", or set {override_hint}" if override_hint else ""
    try:
        path = download_cached(url, relpath)
    except RuntimeError as error:
        if not override_hint:
            raise
        raise RuntimeError(f"{error}; or set {override_hint}") from None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise RuntimeError(f"{path} (from {url}) has SHA-256 {digest}, expected {sha256}; delete it to download "
                           f"again{also}")
    return path


def resolve_file(metadata: dict[str, Any] | None, *, file_key: str, dir_key: str | None, env: str,
                 dir_env: str | None, filename: str, url: str, cache_name: str, sha256: str | None = None) -> Path:
    """A data file: --metadata path > --metadata folder > env path > env folder > cached download (checked
    against `sha256` when given)."""
    metadata = metadata or {}
    candidates: list[tuple[str, str | None]] = [(file_key, metadata.get(file_key))]
    if dir_key:
        candidates.append((dir_key, metadata.get(dir_key) and str(Path(metadata[dir_key]) / filename)))
    candidates.append((env, os.environ.get(env)))
    if dir_env:
        candidates.append((dir_env, os.environ.get(dir_env) and str(Path(os.environ[dir_env]) / filename)))
    for source, value in candidates:
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"{source}: {path} does not exist")
            return path
    return download_checked(url, cache_name, sha256) if sha256 else download_cached(url, cache_name)
