"""The journal of one process: an envelope reaches the disk in one ``write`` on the caller's thread.

With ``cache_dir``, ``capture_feedback`` does not return before the envelope would survive the
process being killed. A cache file of its own (open, write, close, rename) costs hundreds of
microseconds; appending one record to a file the process keeps open costs a few. The
background thread then writes the envelope's cache file as before, durably, and marks the
record done.

Files in ``cache_dir`` (the cache ignores them: they end neither in ``.envelope`` nor in
``.sending`` and do not start with ``.``):

- ``<pid>-<8 hex>.journal``: the journal of process ``pid``, written by it alone;
- ``<pid>-<8 hex>.journal.recovering.<p1>[.<p2>...]``: a journal whose writer is gone,
  claimed (atomic rename) by the process named last, which recovers it; those named before it
  claimed it earlier and died.

A record is a header (magic, kind *put* or *done*, key and data lengths, CRC32 of header, key
and data), the key (UTF-8), then the data. A *put* holds an envelope; a *done* says that the
put of its key is no longer needed. When every put has its done the journal is truncated to
empty, so it never grows without bound. :meth:`Journal.append` does not fsync: the bytes are
in the page cache, which survives the process being killed (SIGKILL) but not a power loss;
:meth:`Journal.sync`, called by the background thread in batches, makes them durable.

The protocol, for one envelope whose cache file name derives from its key ``K``:

1. the caller's thread: ``journal.append(K, data)``; when it raises, the caller writes the
   cache file the old way;
2. the background thread writes ``K``'s cache file durably, claimed by this process;
3. then ``journal.done(K)`` (and ``journal.sync()`` if a power loss must not make it send twice);
   while ``done`` raises, ``K`` is not sent: the caller calls ``done(K)`` again later;
4. only then it sends ``K``, and removes the cache file once the server has answered.

Each drain calls :func:`recover` *before* it frees the cache files claimed by dead processes,
and does not free those of the processes :func:`journal_pids` names. ``exists(K)`` looks for
``K``'s cache file free or claimed (not for a half-written temporary file); ``store(K, data)``
writes it durably, is idempotent per key, and should leave it claimed by the recovering
process, which frees it once :func:`recover` has returned.

Never lost:

- the put is in the file before ``capture_feedback`` returns, and stays there until its done,
  which comes only once ``K``'s cache file exists durably (step 3): from then on the cache
  holds the envelope;
- a journal loses a put without done only in :func:`recover`, which removes the file after it
  has stored every such put or seen its cache file exist;
- if the writer dies between steps 1 and 3, the first process to find it dead claims its
  journal and stores ``K`` (unless step 2 had written it already); if that process dies while
  recovering, the next one claims the ``.recovering`` file in its turn.

Never twice (beyond the cache's own window between a send and the removal of its file): a
cache file is sent only by the process whose rename claimed it, then removed; a second send
needs a second cache file for ``K``, i.e. :func:`recover` storing ``K`` after the first was
sent. Recovery stores ``K`` only for a put without done while ``exists(K)`` is false:

- if the writer reached step 3, its done is in the journal before the send: no recovery
  stores ``K`` (page cache: enough for SIGKILL; for a power loss, ``sync()`` before sending);
- if it did not, it never sent ``K``. ``K``'s cache file, if step 2 wrote it, is claimed by
  the dead writer, and claims of a dead process are freed (so that another process may send
  and remove the file) only after its journals are gone: recovery comes first in a drain, and
  the pids of :func:`journal_pids` keep their claims while another process recovers. So
  ``exists(K)`` is true while recovery looks;
- only the winner of the rename reads a journal. It appends a done to the ``.recovering``
  file after each store, so that a successor taking over a half-done recovery skips what was
  stored; between a store and that done, ``exists`` answers, since the file stays claimed by
  the recoverer, whose pid :func:`journal_pids` names while the file exists;
- the journal of a live process, ours included, is never read: its writer may be between
  steps.

Liveness is :func:`pid_alive`, the test the cache uses for its claims too:
a journal whose writer's pid now belongs to another live process waits until that one exits
(later, not lost). A journal left by an earlier process that had *our* pid (in a container
every run may be pid 1) is recovered: this process knows the names of its own journals.
"""

from __future__ import annotations

import errno
import os
import struct
import threading
import weakref
import zlib

from ._log import logger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__: list[str] = []


SUFFIX = ".journal"
RECOVERING = ".recovering."
#: Record kinds.
PUT = 1
DONE = 2

_MAGIC = b"SFJ1"
_PREFIX = struct.Struct("<4sBxHI")  # magic, kind, (pad), key length, data length
_HEADER = struct.Struct("<4sBxHII")  # the same, then the CRC32 of prefix, key and data
_MAX_KEY = 0xFFFF
_OPEN_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)

# Names of the journals this process writes and of those it is recovering: the files of a
# live process that :func:`recover` leaves alone even though they carry our pid.
_active: set[str] = set()
_active_lock = threading.Lock()


def encode_record(kind: int, key: str, data: bytes = b"") -> bytes:
    """One record: header (magic, ``kind``, lengths, CRC32), then ``key`` (UTF-8) and ``data``."""
    raw_key = key.encode()
    if len(raw_key) > _MAX_KEY:
        raise ValueError(f"journal key too long ({len(raw_key)} bytes)")
    prefix = _PREFIX.pack(_MAGIC, kind, len(raw_key), len(data))
    crc = zlib.crc32(data, zlib.crc32(raw_key, zlib.crc32(prefix)))
    return b"".join((prefix, crc.to_bytes(4, "little"), raw_key, data))


def parse_records(buf: bytes) -> tuple[list[tuple[int, str, bytes]], int]:
    """The records of a journal's content, and the length of the valid part.

    A torn or corrupt record (too short, bad magic, kind or CRC, key not UTF-8) ends the
    parse: what follows it is not read.
    """
    records: list[tuple[int, str, bytes]] = []
    view = memoryview(buf)
    size = len(buf)
    offset = 0
    while size - offset >= _HEADER.size:
        magic, kind, key_len, data_len, crc = _HEADER.unpack_from(buf, offset)
        start = offset + _HEADER.size
        end = start + key_len + data_len
        if magic != _MAGIC or kind not in (PUT, DONE) or end > size:
            break
        if zlib.crc32(view[start:end], zlib.crc32(view[offset : offset + _PREFIX.size])) != crc:
            break
        try:
            key = bytes(view[start : start + key_len]).decode()
        except UnicodeDecodeError:
            break
        records.append((kind, key, bytes(view[start + key_len : end])))
        offset = end
    return records, offset


def _write_all(fd: int, record: bytes) -> int:
    """Write ``record`` to ``fd``: one ``write``, more only if it comes back short; return its length."""
    total = len(record)
    written = os.write(fd, record)
    if written < total:
        view = memoryview(record)
        while written < total:
            n = os.write(fd, view[written:])
            if n <= 0:
                raise OSError(errno.EIO, "journal write made no progress")
            written += n
    return total


class Journal:
    """The append-only journal of this process in ``directory`` (see the module documentation).

    Thread-safe: one lock, held only around the file operations. After a fork the child
    writes a journal of its own, never its parent's.
    """

    def __init__(self, directory: str, *, truncate_above: int = 0) -> None:
        #: When every put is done, the file is truncated to empty only once it is larger than
        #: this; below it a done record is cheaper (a truncation is a file-system transaction,
        #: which appends on the caller's thread then wait for).
        self.truncate_above = truncate_above
        self.directory = os.path.abspath(directory)
        self._lock = threading.Lock()
        self._reset()
        _journals.add(self)

    def _reset(self) -> None:
        self._fd = -1
        self._pid = 0
        self._path: str | None = None
        self._size = 0
        self._dir_synced = False
        #: Keys put and not done yet.
        self._outstanding: set[str] = set()
        #: Set once the file has a torn record that could not be cut off: keys whose done was
        #: asked for, which a done record after the tear could not mark (see :meth:`done`).
        self._requested: set[str] | None = None

    @property
    def path(self) -> str | None:
        """The file of this journal, ``None`` until the first :meth:`append`."""
        return self._path if self._pid == os.getpid() else None

    def outstanding(self) -> int:
        """How many puts have no done yet."""
        with self._lock:
            return len(self._outstanding) if self._pid == os.getpid() else 0

    # -- writing (lock held) ------------------------------------------------------------------

    def _ensure_open(self) -> int:
        pid = os.getpid()
        if self._fd >= 0:
            if self._pid == pid:
                return self._fd
            self._forget()  # inherited over a fork the hook did not see: the parent's file
        while True:
            name = f"{pid}-{os.urandom(4).hex()}{SUFFIX}"
            path = os.path.join(self.directory, name)
            _active.add(name)  # before the file exists: recover() in this process never takes it
            try:
                fd = os.open(path, _OPEN_FLAGS, 0o600)
            except FileExistsError:
                _active.discard(name)
                continue
            except OSError:
                _active.discard(name)
                raise
            self._fd, self._pid, self._path = fd, pid, path
            return fd

    def _forget(self) -> None:
        """Drop the state of a file that is not ours (a parent's), without touching the file."""
        if self._fd >= 0:
            _close(self._fd)
        self._reset()

    def _write(self, record: bytes) -> None:
        """Append ``record`` whole or not at all, as far as a reader can tell."""
        fd = self._fd
        start = self._size
        try:
            self._size = start + _write_all(fd, record)
        except OSError as exc:
            try:  # cut off a torn record, or the records after it would be unreadable
                if os.fstat(fd).st_size != start:
                    os.ftruncate(fd, start)
            except OSError:
                if self._requested is None:
                    self._requested = set()
                logger.error(
                    "journal %s may have a torn record that cannot be removed (%s)",
                    self._path,
                    exc,
                )
            raise

    def _discard_file(self) -> None:
        """Remove and close the file: no put in it is needed any more."""
        if self._path is not None:
            _unlink(self._path)
        self._release()

    def _release(self) -> None:
        """Close the file (removed already) and start afresh."""
        _close(self._fd)
        if self._path is not None:
            _active.discard(os.path.basename(self._path))
        self._reset()

    # -- API --------------------------------------------------------------------------------

    def append(self, key: str, data: bytes) -> None:
        """Append a put of ``data`` for ``key`` in one ``write`` (no fsync); ``OSError`` if it fails.

        When it raises, the journal holds nothing for ``key`` and the caller stores the
        envelope another way.
        """
        record = encode_record(PUT, key, data)
        with self._lock:
            if self._requested is not None and self._pid == os.getpid():
                raise OSError(errno.EIO, "the journal has a torn record; it takes no more puts")
            self._ensure_open()
            self._write(record)
            self._outstanding.add(key)

    def done(self, key: str) -> None:
        """Mark ``key``'s put as no longer needed: its cache file exists durably, or it was dropped.

        A key this journal has no put for (a parent's, before a fork) is ignored. Truncates the
        file to empty when no put is left. Raises ``OSError`` when the mark could not be
        written: then the put is still in the journal, and ``key`` must not be sent before a
        later ``done(key)`` has returned.
        """
        with self._lock:
            if self._pid != os.getpid():
                return
            if self._requested is not None:
                self._done_sealed(key, self._requested)
                return
            if key not in self._outstanding:
                return
            last = len(self._outstanding) == 1
            if last and self._size > self.truncate_above and self._truncate():
                return
            try:
                self._write(encode_record(DONE, key))
            except OSError:
                if not (last and self._truncate()):  # a full disk: emptying the file still works
                    raise
                return
            self._outstanding.discard(key)

    def _truncate(self) -> bool:
        """Empty the file, every put being done (lock held); whether it worked."""
        try:
            os.ftruncate(self._fd, 0)
        except OSError:
            return False
        self._size = 0
        self._outstanding.clear()
        return True

    def _done_sealed(self, key: str, requested: set[str]) -> None:
        """:meth:`done` once the file has a torn record: a done record after it would be unreadable.

        The file goes once every put in it is done; until then, none of them may be sent.
        """
        if key in self._outstanding:
            self._outstanding.discard(key)
            requested.add(key)
        elif key not in requested:
            return
        if self._outstanding:
            raise OSError(errno.EIO, f"the journal still holds the put of {key}")
        if self._path is not None:
            os.unlink(self._path)  # when it fails, the next done(key) tries again
        self._release()

    def compact(self) -> bool:
        """Truncate the file to empty if no put is outstanding; whether it is empty now."""
        with self._lock:
            if self._fd < 0 or self._pid != os.getpid():
                return True
            if self._outstanding or self._requested is not None:
                return False
            if self._size:
                os.ftruncate(self._fd, 0)
                self._size = 0
            return True

    def sync(self) -> None:
        """Flush the journal to the disk (fsync; the directory too the first time): it survives a power loss."""
        with self._lock:
            if self._fd < 0 or self._pid != os.getpid():
                return
            fd = os.dup(self._fd)  # fsync without the lock: appends do not wait for the disk
            sync_dir = not self._dir_synced
            self._dir_synced = True
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if sync_dir:
            fsync_dir(self.directory)

    def close(self) -> None:
        """Close the file, and remove it if no put is outstanding.

        A file with outstanding puts stays, for :func:`recover` once this process has exited;
        its puts are forgotten here (a later :meth:`append` starts a new file).
        """
        with self._lock:
            if self._fd < 0:
                return
            if self._pid != os.getpid():
                self._forget()
            elif not self._outstanding and self._requested is None:
                self._discard_file()
            else:
                _close(self._fd)
                self._reset()  # the name stays in _active: never recovered by this process

    def _reinit_in_child(self) -> None:
        # The parent's lock may be held by a thread that does not exist in the child, and the
        # parent's file and puts are not the child's.
        self._lock = threading.Lock()
        self._forget()


# One at-fork hook for all journals (hooks cannot be unregistered), holding them weakly.
_journals: weakref.WeakSet[Journal] = weakref.WeakSet()


def _reinit_in_child() -> None:
    global _active_lock
    _active_lock = threading.Lock()
    _active.clear()
    for journal in list(_journals):
        journal._reinit_in_child()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_reinit_in_child)


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError as exc:
        logger.debug("could not close a journal (%s)", exc)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError as exc:
        logger.debug("could not remove journal %s (%s)", path, exc)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (ours does); the offline cache uses the same test."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but not ours to signal
        return True
    return True


def fsync_dir(directory: str) -> None:
    """fsync ``directory`` (a renamed or created file's name reaches the disk); failures are ignored."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- recovery -------------------------------------------------------------------------------


def _parse_name(name: str) -> tuple[int, list[int]] | None:
    """``(writer pid, recovering pids)`` of a journal file name, ``None`` if it is not one."""
    base, sep, chain = name.partition(SUFFIX + RECOVERING)
    if not sep:
        if not name.endswith(SUFFIX):
            return None
        base = name[: -len(SUFFIX)]
    pid_text, dash, token = base.partition("-")
    if not (dash and pid_text.isdigit() and token) or name.startswith("."):
        return None
    if not sep:
        return int(pid_text), []
    pids = chain.split(".")
    if not all(p.isdigit() for p in pids):
        return None
    return int(pid_text), [int(p) for p in pids]


def journal_pids(directory: str) -> set[int]:
    """The pids whose claimed cache files must stay claimed for now.

    Writers of journals not recovered yet, and every process named in a ``.recovering`` file:
    freeing their claims before recovery has read the journal could let another process send
    an envelope that recovery then stores again.
    """
    pids: set[int] = set()
    try:
        names = os.listdir(directory)
    except OSError:
        return pids
    for name in names:
        parsed = _parse_name(name)
        if parsed is not None:
            pids.add(parsed[0])
            pids.update(parsed[1])
    return pids


def _claim(directory: str, name: str) -> str | None:
    """Claim the journal ``name`` for recovery by this process: its new path, or ``None``."""
    parsed = _parse_name(name)
    if parsed is None:
        return None
    writer, chain = parsed
    holder = chain[-1] if chain else writer
    mine = os.getpid()
    with _active_lock:
        if holder == mine:
            if name in _active:
                return None  # our own journal, or a recovery under way in this process
            if chain:  # left by an earlier process that had our pid
                _active.add(name)
                return os.path.join(directory, name)
        elif pid_alive(holder):
            return None
        new_name = f"{name}.{mine}" if chain else f"{name}{RECOVERING}{mine}"
        _active.add(new_name)
    try:
        os.rename(os.path.join(directory, name), os.path.join(directory, new_name))
    except OSError:  # another process was first, or the file is gone
        _active.discard(new_name)
        return None
    return os.path.join(directory, new_name)


def _recover_file(path: str, store: Callable[[str, bytes], None], exists: Callable[[str], bool]) -> int:
    with open(path, "rb") as fh:
        buf = fh.read()
    records, valid = parse_records(buf)
    if valid < len(buf):
        logger.warning(
            "journal %s: ignored %d bytes of a torn or corrupt tail after %d records",
            os.path.basename(path),
            len(buf) - valid,
            len(records),
        )
    pending: dict[str, bytes] = {}
    for kind, key, data in records:
        pending.pop(key, None)
        if kind == PUT:
            pending[key] = data
    stored = 0
    if pending:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0))
        try:
            writable = True
            if valid < len(buf):
                try:  # done records after the bad tail would not be read
                    os.ftruncate(fd, valid)
                except OSError:
                    writable = False
            for key, data in pending.items():
                if not exists(key):
                    store(key, data)
                    stored += 1
                if writable:
                    try:  # so that a successor taking over does not store it again
                        _write_all(fd, encode_record(DONE, key))
                    except OSError:
                        writable = False
        finally:
            os.close(fd)
    os.unlink(path)
    return stored


def recover(directory: str, store: Callable[[str, bytes], None], exists: Callable[[str], bool]) -> int:
    """Store the puts without done of the journals whose writer (or recoverer) is dead; return how many.

    Each journal is claimed by an atomic rename, so that only one process reads it; for each
    of its puts without done, ``store(key, data)`` is called unless ``exists(key)``, then the
    file is removed. ``store`` must be idempotent per key and durable when it returns. A
    journal whose ``store`` raised stays, for a later call. Journals of live processes, this
    one included, are left alone.
    """
    directory = os.path.abspath(directory)
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return 0
    stored = 0
    for name in names:
        path = _claim(directory, name)
        if path is None:
            continue
        try:
            stored += _recover_file(path, store, exists)
        except Exception as exc:
            logger.warning(
                "could not recover journal %s (%s); left for later",
                name,
                exc,
                exc_info=True,
            )
        finally:
            _active.discard(os.path.basename(path))
    return stored
