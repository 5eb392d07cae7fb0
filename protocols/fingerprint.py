"""Content fingerprints of the files a dataset's records are read from.

Why: the preprocessing cache and a run's identity must change when a recording or its label is
edited, and must *not* change when nothing was (a copy, a ``touch``, a ``chmod``). So a file's
fingerprint is a hash of its **content** (BLAKE2b-128, streamed with :func:`hashlib.file_digest`),
and a per-dataset manifest in the cache remembers each file's hash under its ``stat`` key
``(size, mtime_ns, ctime_ns, inode)``: a file whose stat key is unchanged is not read again.

Cost, for a 100-GB dataset: the first use reads every input file once (about the speed of the disk;
BLAKE2b hashes ~1 GB/s per core and up to 4 files are hashed in parallel threads — far less than
decoding the same videos for preprocessing); every later use is one ``stat`` per file (PURE, ~120 k
PNG frames: well under a second) plus reading the manifest (~100 bytes per file). Only files whose
stat key changed are read again. ``ctime`` is part of the key because it cannot be set from user
space: an edit that keeps the size and restores the mtime (``os.utime``) is still seen.

Racy entries (as git's index, ``Documentation/technical/racy-git.txt``): a file modified within the
timestamp granularity of its previous hash could keep the same stat key, so an entry whose mtime or
ctime is less than :data:`RACY_S` seconds older than the moment it was hashed is re-hashed next time.

A record's fingerprint hashes the (path relative to the dataset root, content hash) pairs of its
files (:meth:`Loader.source_files <protocols.base.Loader.source_files>`); generated data (the
synthetic loaders) has no files and is identified by its loader key — its parameters and
``GENERATOR_VERSION`` — which is already part of the preprocessing key and of a run's identity.

The manifest lives at ``<cache>/<loader key>/.fingerprints.json``; concurrent writers merge their
entries under a file lock (``filelock``) and replace the file atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from protocols.base import DatasetFormatError, Loader

MANIFEST = ".fingerprints.json"
#: Entries hashed less than this long after the file's last change are re-hashed next time.
RACY_S = 2.0
#: Hashing more than this many bytes at once prints a notice (the first use of a large dataset).
NOTICE_BYTES = 1 << 30
_VERSION = 1


def file_digest(path: str | Path) -> str:
    """BLAKE2b-128 hex digest of a file's content, read in chunks (constant memory).

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile(delete=False) as f:
    ...     _ = f.write(b"abc")
    >>> file_digest(f.name) == hashlib.blake2b(b"abc", digest_size=16).hexdigest()
    True
    """
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, lambda: hashlib.blake2b(digest_size=16)).hexdigest()
    except FileNotFoundError:
        raise DatasetFormatError(path, "file missing") from None
    except OSError as e:
        raise DatasetFormatError(path, f"cannot read file: {e}") from None


def _stat_key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


class Manifest:
    """Content hashes of one dataset's files, cached by stat key (see the module docstring).

    ``root`` is the dataset root (manifest keys are paths relative to it); ``path`` the manifest file,
    or None to keep nothing between processes.
    """

    def __init__(self, root: str | Path, path: str | Path | None):
        self.root = Path(root)
        self.path = Path(path) if path is not None else None
        self.entries: dict[str, list[Any]] = {}
        self._new: dict[str, list[Any]] = {}
        if self.path is not None and self.path.is_file():
            try:
                data = json.loads(self.path.read_text())
                if data.get("version") == _VERSION:
                    self.entries = dict(data.get("files") or {})
            except (OSError, ValueError):  # a damaged manifest only costs re-hashing
                self.entries = {}

    def _rel(self, p: str) -> str:
        prefix = str(self.root).rstrip(os.sep) + os.sep
        rel = p[len(prefix):] if p.startswith(prefix) else os.path.abspath(p)
        return rel.replace(os.sep, "/")

    def digests(self, paths: Iterable[str | Path]) -> dict[str, str]:
        """Relative path → content hash for each file (hashing only the files whose stat key changed)."""
        out: dict[str, str] = {}
        todo: list[tuple[str, Path, list[int]]] = []
        for p in map(os.fspath, paths):  # plain strings: pathlib costs more than the stat itself here
            rel = self._rel(p)
            try:
                key = _stat_key(os.stat(p))
            except FileNotFoundError:  # the loader reports it with what the file is for
                out[rel] = "missing"
                continue
            e = self.entries.get(rel)
            if e is not None and e[0] == key and e[2]:
                out[rel] = e[1]
            else:
                todo.append((rel, p, key))
        if todo:
            total = sum(k[0] for _, _, k in todo)
            if total > NOTICE_BYTES:
                print(f"[fingerprint] hashing {len(todo)} new or changed file(s), {total / 1e9:.1f} GB, under {self.root} "
                      "(once; later runs only stat them)", file=sys.stderr)
            now_ns = time.time_ns()
            # hashlib releases the GIL on large buffers: threads hash several files at once
            with ThreadPoolExecutor(max_workers=min(4, len(todo), os.cpu_count() or 1)) as ex:
                digests = list(ex.map(lambda t: file_digest(t[1]), todo))
            for (rel, _p, key), d in zip(todo, digests, strict=True):
                trusted = now_ns - max(key[1], key[2]) > RACY_S * 1e9
                self.entries[rel] = self._new[rel] = [key, d, trusted]
                out[rel] = d
        return out

    def save(self) -> None:
        """Merge this process's new entries into the manifest file (locked, atomic replace)."""
        if self.path is None or not self._new:
            return
        try:
            self._merge_and_write()
        except OSError as e:  # a read-only shared cache: the hashes are simply recomputed next time
            print(f"[fingerprint] could not update {self.path}: {e}", file=sys.stderr)
        self._new.clear()

    def _merge_and_write(self) -> None:
        from filelock import FileLock

        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path) + ".lock"):
            merged: dict[str, Any] = {}
            if self.path.is_file():
                try:
                    data = json.loads(self.path.read_text())
                    if data.get("version") == _VERSION:
                        merged = dict(data.get("files") or {})
                except (OSError, ValueError):
                    merged = {}
            merged.update(self._new)
            tmp = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}")
            try:
                tmp.write_text(json.dumps({"version": _VERSION, "files": merged}, separators=(",", ":")))
                os.replace(tmp, self.path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise


class RecordFingerprints:
    """Fingerprints of one loader's records, sharing one manifest; call :meth:`save` when done.

    >>> from protocols.base import Loader
    >>> RecordFingerprints(Loader(), None).get("a") is None   # generated data: no files
    True
    """

    def __init__(self, loader: Loader, cache_root: str | Path | None):
        self.loader = loader
        root = getattr(loader, "root", None)
        path = Path(cache_root) / loader.key() / MANIFEST if (root is not None and cache_root is not None) else None
        self.manifest = Manifest(root if root is not None else Path("/"), path)

    def get(self, rid: str) -> str | None:
        """Fingerprint of record ``rid`` (None for generated data); a missing file counts as
        ``"missing"`` (loading the record then fails with the loader's own message)."""
        paths = self.loader.source_files(rid)
        if paths is None:
            return None
        digests = self.manifest.digests(paths)
        blob = json.dumps(sorted(digests.items()), separators=(",", ":"))
        return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()

    def save(self) -> None:
        self.manifest.save()


def data_fingerprint(loader: Loader, record_ids: Sequence[str], cache_root: str | Path | None) -> str | None:
    """One fingerprint of the given records' files, or None for generated data (see the module docstring).

    Part of a run's identity: editing any file a run reads changes it; touching a file does not.

    >>> from protocols.base import Loader
    >>> data_fingerprint(Loader(), ["a", "b"], None) is None
    True
    """
    fpr = RecordFingerprints(loader, cache_root)
    fps = {rid: fpr.get(rid) for rid in sorted(set(record_ids))}
    fpr.save()
    if all(v is None for v in fps.values()):
        return None
    blob = json.dumps(sorted(fps.items()), separators=(",", ":"))
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()
