"""The offline cache: envelopes on disk until the server has given a final answer.

Files in ``cache_dir``:

- ``<time>-<id>.envelope``: waiting to be sent, free for any process to claim;
- ``<time>-<id>.envelope.<pid>.sending``: claimed by process ``pid`` (atomic rename), which is
  sending it; a claim by a process that no longer runs is taken back by the next drain;
- ``.<name>.<pid>.tmp``: being written by ``pid``; never read, and removed once ``pid`` is gone;
- ``corrupt/``: files that could not be read as envelopes, kept for inspection.

Every file is written whole (temporary file, fsync, rename, fsync of the directory), so a
crash leaves either the complete envelope or nothing. Several processes may share one
directory: a file is sent only by the process whose rename claimed it.
"""

from __future__ import annotations

import contextlib
import os
import time

from . import _journal, _random
from ._client_reports import ClientReportRecorder, DiscardReason
from ._envelope import Envelope
from ._log import logger
from ._record import Frozen

__all__: list[str] = []


SUFFIX = ".envelope"
#: The journal is emptied once every record in it is done and it holds more than this.
JOURNAL_TRUNCATE_ABOVE = 1024 * 1024
SENDING = ".sending"
TMP = ".tmp"  # ``.<name>.<pid>.tmp``: being written; never read, removed when its writer is gone


class CachedEnvelope(Frozen):
    """A cache file this process has claimed (``path``) and its free name (``free_path``)."""

    __slots__ = _fields = ("path", "free_path")

    path: str
    free_path: str

    def __init__(self, path: str, free_path: str) -> None:
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "free_path", free_path)


#: Whether a process runs (ours does): the journal's test, one for both.
_pid_alive = _journal.pid_alive


class EnvelopeCache:
    """A directory of envelopes, shared safely between processes."""

    def __init__(self, directory: str, max_items: int, recorder: ClientReportRecorder) -> None:
        self.directory = os.path.abspath(directory)
        self.max_items = max_items
        self._recorder = recorder
        self._counter = 0
        os.makedirs(self.directory, exist_ok=True)
        self._journal = _journal.Journal(self.directory, truncate_above=JOURNAL_TRUNCATE_ABOVE)

    # -- writing --------------------------------------------------------------------------------

    def new_key(self) -> str:
        """A new cache file name (without its suffix): oldest first when sorted, unique across processes."""
        self._counter += 1
        # The SDK's generator, not os.urandom: it keeps the interpreter lock (capture path).
        return f"{time.time_ns():020d}-{os.getpid()}-{self._counter}-{_random.span_id()[:8]}"

    def journal_put(self, data: bytes) -> str:
        """Append the envelope ``data`` to this process's journal (one ``write``); its key. ``OSError`` if it fails.

        The envelope is then safe against the process being killed; the background thread
        writes its cache file under the key (:meth:`store` with ``key``) and then calls
        :meth:`journal_done`.
        """
        key = self.new_key()
        self._journal.append(key, data)
        return key

    def journal_done(self, key: str) -> None:
        """The journal's put of ``key`` is no longer needed (its cache file is durable, or it was dropped)."""
        self._journal.done(key)

    def exists(self, key: str) -> bool:
        """Whether the cache file of ``key`` exists, free or claimed by any process."""
        name = key + SUFFIX
        if os.path.exists(os.path.join(self.directory, name)):
            return True
        try:
            return any(n.startswith(name + ".") and n.endswith(SENDING) for n in os.listdir(self.directory))
        except OSError:
            return False

    def recover_journals(self) -> int:
        """Store the envelopes the journals of dead processes hold without a cache file; how many.

        Runs before claims of dead processes are freed (see :mod:`._journal`). Each
        recovered file is written claimed by this process and freed once all are stored.
        """
        recovered: list[CachedEnvelope] = []

        def store(key: str, data: bytes) -> None:
            if not self.exists(key):
                recovered.append(self.store(data, key=key, make_room=False))

        try:
            count = _journal.recover(self.directory, store, self.exists)
        finally:
            for cached in recovered:
                self.release(cached)
        if count:
            logger.info(
                "recovered %d envelope(s) from the journal of a process that ended",
                count,
            )
        return count

    def close(self) -> None:
        """Close this process's journal (removed when nothing in it is outstanding)."""
        self._journal.close()

    def store(
        self,
        data: bytes | Envelope,
        *,
        make_room: bool = True,
        sync: bool = True,
        key: str | None = None,
    ) -> CachedEnvelope:
        """Write ``data`` (an envelope is written block by block) as a new file claimed by this process.

        Raises ``OSError`` when it cannot, and ``PayloadReadError`` when an attachment of the
        envelope cannot be read (nothing is left behind then).

        ``key`` names the file (see :meth:`journal_put`); a new one by default.
        With ``make_room`` the oldest files are evicted first while the cache is full.
        Without ``sync`` the file survives the process being killed but not a power loss
        until :meth:`sync` is called (it costs milliseconds; the caller's thread skips it).
        """
        if make_room:
            self.make_room()
        name = (key or self.new_key()) + SUFFIX
        free_path = os.path.join(self.directory, name)
        claimed = self._claimed_name(free_path)
        self._write(claimed, data, sync=sync)
        return CachedEnvelope(claimed, free_path)

    def rewrite(self, cached: CachedEnvelope, data: bytes | Envelope) -> CachedEnvelope:
        """Replace the content of a file this process has claimed, atomically (and synced)."""
        self._write(cached.path, data, sync=True)
        return cached

    def _write(self, path: str, data: bytes | Envelope, *, sync: bool) -> None:
        """Write ``path`` whole: a temporary file renamed over it, so a crash leaves the old or the new."""
        name = os.path.basename(path).split(SUFFIX)[0] + SUFFIX
        tmp = os.path.join(self.directory, f".{name}.{os.getpid()}{TMP}")
        try:
            with open(tmp, "wb") as fh:
                if isinstance(data, Envelope):
                    for chunk in data.chunks():
                        fh.write(chunk)
                else:
                    fh.write(data)
                fh.flush()
                if sync:
                    os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if sync:
            self._fsync_dir()

    def sync(self, cached: CachedEnvelope) -> None:
        """Flush a file written without ``sync`` to the disk, and make room if the cache is over its cap."""
        try:
            fd = os.open(cached.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            logger.debug("could not sync %s", cached.path, exc_info=True)
        self._fsync_dir()
        self.make_room(incoming=0)

    def _claimed_name(self, free_path: str) -> str:
        return f"{free_path}.{os.getpid()}{SENDING}"

    def _fsync_dir(self) -> None:
        _journal.fsync_dir(self.directory)

    def make_room(self, incoming: int = 1) -> None:
        """Evict the oldest free files so that ``incoming`` more fit, counting them as ``cache_overflow``."""
        names = self._names()
        excess = len(names) + incoming - self.max_items
        if excess <= 0:
            return
        for name in [n for n in names if n.endswith(SUFFIX)][:excess]:
            path = os.path.join(self.directory, name)
            try:
                envelope: Envelope | None = Envelope.parse_file(path)  # large payloads are not read
            except OSError:
                continue  # claimed meanwhile by another process
            except Exception:
                envelope = None
            try:
                os.unlink(path)
            except OSError:
                continue
            self._count(envelope, DiscardReason.CACHE_OVERFLOW)
            logger.warning(
                "offline cache is full (%d files); dropped the oldest envelope",
                self.max_items,
            )

    # -- claiming -------------------------------------------------------------------------------

    def _names(self) -> list[str]:
        try:
            return sorted(
                n for n in os.listdir(self.directory) if not n.startswith(".") and n.endswith((SUFFIX, SENDING))
            )
        except OSError:
            return []

    def free_count(self) -> int:
        """How many files wait to be sent."""
        return sum(1 for n in self._names() if n.endswith(SUFFIX))

    def recover_stale_claims(self) -> int:
        """Free the files claimed by processes that no longer run, drop their half-written ones; return how many."""
        recovered = 0
        try:
            partial = [n for n in os.listdir(self.directory) if n.startswith(".") and n.endswith(TMP)]
        except OSError:
            partial = []
        for name in partial:
            pid_text = name[: -len(TMP)].rpartition(".")[2]
            if pid_text.isdigit() and not _pid_alive(int(pid_text)):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.directory, name))
        # Not the claims of a process whose journal is still there or being recovered: its
        # recovery must see which of its envelopes have a cache file (see :mod:`._journal`).
        journaled = _journal.journal_pids(self.directory)
        for name in self._names():
            if not name.endswith(SENDING):
                continue
            base, _, pid_text = name[: -len(SENDING)].rpartition(".")
            if not pid_text.isdigit() or _pid_alive(int(pid_text)) or int(pid_text) in journaled:
                continue
            with contextlib.suppress(OSError):
                os.rename(
                    os.path.join(self.directory, name),
                    os.path.join(self.directory, base),
                )
                recovered += 1
        return recovered

    def claim_next(self) -> CachedEnvelope | None:
        """Claim the oldest free file, or ``None`` when there is none."""
        for name in self._names():
            if name.endswith(SUFFIX):
                claimed = self.claim(os.path.join(self.directory, name))
                if claimed is not None:
                    return claimed
        return None

    def claim(self, free_path: str) -> CachedEnvelope | None:
        """Claim ``free_path`` by renaming it; ``None`` if another process was first (or it is gone)."""
        claimed = self._claimed_name(free_path)
        try:
            os.rename(free_path, claimed)
        except OSError:
            return None
        return CachedEnvelope(claimed, free_path)

    def read(self, cached: CachedEnvelope) -> Envelope | None:
        """The claimed envelope; a file that is not one is moved to ``corrupt/`` and counted.

        Large payloads are not read now: they stay in the file, read while the envelope is
        sent (the file keeps its claimed name meanwhile).
        """
        try:
            return Envelope.parse_file(cached.path)
        except Exception as exc:
            logger.error(
                "cached envelope %s is unreadable (%s); moved aside",
                os.path.basename(cached.path),
                exc,
            )
            self._recorder.record(DiscardReason.INTERNAL_SDK_ERROR, "default")
            corrupt = os.path.join(self.directory, "corrupt")
            try:
                os.makedirs(corrupt, exist_ok=True)
                os.replace(
                    cached.path,
                    os.path.join(corrupt, os.path.basename(cached.free_path)),
                )
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(cached.path)
            return None

    def release(self, cached: CachedEnvelope) -> None:
        """Give the file back (for a later retry, by this or another process)."""
        try:
            os.rename(cached.path, cached.free_path)
        except OSError:
            logger.debug("could not release %s", cached.path, exc_info=True)

    def remove(self, cached: CachedEnvelope) -> None:
        """Delete the file: the server has given its final answer."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(cached.path)

    def _count(self, envelope: Envelope | None, reason: str) -> None:
        if envelope is None:
            self._recorder.record(reason, "default")
            return
        for item in envelope.items:
            if item.type != "client_report":
                self._recorder.record(reason, item.data_category, item.quantity())
