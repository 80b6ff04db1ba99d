"""The render cache: rendered frames and thumbnails on disk under ``<data_dir>/renders/``.

Derived data (DESIGN.md, "Data that lives on disk"): anything here can be thrown
away and is rebuilt on the next request. Files are named by the source object's
sha256 and the render parameters, written to ``tmp/`` and renamed into place (a
reader never sees half a file; two processes writing the same key both write
the same bytes). The total size is capped: when a process has written about a
sixteenth of the cap since its last sweep, it sums the directory and removes the
least recently used files (modification time, refreshed on a hit at most hourly)
until the cache is under 90 % of the cap. Several processes may share the
directory; the sweep tolerates files vanishing under it.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from pathlib import Path

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_KEY = re.compile(r"^[A-Za-z0-9._-]{1,160}$")
#: A hit refreshes the file's mtime (its LRU age) when it is older than this.
TOUCH_AFTER_SECONDS = 3600.0
#: A sweep evicts down to this fraction of the cap, so writes do not sweep each time.
LOW_WATER = 0.9
#: Staging files older than this are a crashed writer's leftovers.
STALE_TMP_SECONDS = 600.0


class RenderCache:
    """Files ``<root>/renders/ab/<sha256>/<key>`` with a size cap and LRU eviction."""

    def __init__(self, data_dir: Path | str, cap_bytes: int) -> None:
        self.root = Path(data_dir) / "renders"
        self.tmp = Path(data_dir) / "tmp"
        self.cap_bytes = max(int(cap_bytes), 0)
        self._lock = threading.Lock()
        self._written_since_sweep = 0
        self._swept_once = False

    def path(self, sha256: str, key: str) -> Path:
        """The file for (object, key); refuses anything that could leave the directory."""
        if not _SHA256.match(sha256) or not _KEY.match(key) or key.startswith("."):
            raise ValueError("bad render cache key")
        return self.root / sha256[:2] / sha256 / key

    def get(self, sha256: str, key: str) -> bytes | None:
        """The cached bytes, or None on a miss."""
        path = self.path(sha256, key)
        try:
            with path.open("rb") as fh:
                data = fh.read()
                mtime = os.fstat(fh.fileno()).st_mtime
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError:
            return None  # an unreadable cache file is a miss; the render rewrites it
        now = time.time()
        if now - mtime > TOUCH_AFTER_SECONDS:
            with contextlib.suppress(OSError):
                os.utime(path, (now, now))
        return data

    def put(self, sha256: str, key: str, data: bytes) -> None:
        """Store ``data`` atomically; a failure (disk full) only means no caching."""
        if self.cap_bytes <= 0 or len(data) > self.cap_bytes:
            return
        final = self.path(sha256, key)
        tmp_path = self.tmp / f"render.{os.getpid()}.{threading.get_ident()}.{time.monotonic_ns()}"
        try:
            self.tmp.mkdir(parents=True, exist_ok=True)
            final.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            # No fsync: a render lost in a crash is rendered again (rebuildable data).
            os.replace(tmp_path, final)
        except OSError:
            tmp_path.unlink(missing_ok=True)
            return
        with self._lock:
            self._written_since_sweep += len(data)
            due = not self._swept_once or self._written_since_sweep > self.cap_bytes // 16
            if due:
                self._written_since_sweep = 0
                self._swept_once = True
        if due:
            self.sweep()

    def size(self) -> int:
        """Bytes currently in the cache."""
        return sum(size for _, size, _ in self._files())

    def sweep(self) -> int:
        """Evict least recently used files until under the low-water mark; returns bytes freed."""
        files = list(self._files())
        total = sum(size for _, size, _ in files)
        freed = 0
        if total > self.cap_bytes:
            target = int(self.cap_bytes * LOW_WATER)
            for path, size, _ in sorted(files, key=lambda item: item[2]):
                if total - freed <= target:
                    break
                try:
                    path.unlink()
                except OSError:
                    continue
                freed += size
        self._sweep_tmp()
        return freed

    def clear(self) -> None:
        """Remove every cached render (``teachfile render --clear``, tests)."""
        for path, _, _ in list(self._files()):
            path.unlink(missing_ok=True)

    def _files(self) -> list[tuple[Path, int, float]]:
        found: list[tuple[Path, int, float]] = []
        if not self.root.is_dir():
            return found
        for dirpath, _dirs, names in os.walk(self.root):
            for name in names:
                path = Path(dirpath) / name
                try:
                    st = path.stat()
                except OSError:
                    continue
                found.append((path, st.st_size, st.st_mtime))
        return found

    def _sweep_tmp(self) -> None:
        if not self.tmp.is_dir():
            return
        cutoff = time.time() - STALE_TMP_SECONDS
        for path in self.tmp.glob("render.*"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                continue
