"""The per-process journal: one write per envelope on the caller's thread, recovered after a crash."""

from __future__ import annotations

import errno
import logging
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentry_feedback import _cache, _journal
from sentry_feedback._client_reports import ClientReportRecorder
from sentry_feedback._journal import DONE, PUT, Journal, encode_record, journal_pids, parse_records, recover

SRC = str(Path(__file__).resolve().parents[1] / "src")
#: Above the largest pid Linux can hand out (PID_MAX_LIMIT, 2**22): never a live process.
DEAD_PID = 2**22 + 1


class Store:
    """A ``store``/``exists`` pair that records every call."""

    def __init__(self, existing: set[str] | None = None) -> None:
        self.stored: dict[str, bytes] = {}
        self.calls: Counter[str] = Counter()
        self.existing = existing or set()
        self.asked: list[str] = []

    def store(self, key: str, data: bytes) -> None:
        self.calls[key] += 1
        self.stored[key] = data

    def exists(self, key: str) -> bool:
        self.asked.append(key)
        return key in self.existing or key in self.stored

    def recover(self, directory: Path) -> int:
        return recover(str(directory), self.store, self.exists)


def journal_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if ".journal" in p.name)


def write_journal(directory: Path, content: bytes, pid: int = DEAD_PID, token: str = "deadbeef") -> Path:
    """A journal file as a process ``pid`` would have left it."""
    path = directory / f"{pid}-{token}.journal"
    path.write_bytes(content)
    return path


def orphan(journal: Journal, pid: int = DEAD_PID) -> Path:
    """Close ``journal`` keeping its file, renamed as if a dead process had written it."""
    path = journal.path
    assert path is not None
    journal.close()
    target = Path(path).with_name(f"{pid}-{Path(path).name.split('-', 1)[1]}")
    os.rename(path, target)
    return target


def records(*ops: tuple[int, str, bytes]) -> bytes:
    return b"".join(encode_record(kind, key, data) for kind, key, data in ops)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(str(tmp_path))
    yield j
    j.close()


# -- the file -------------------------------------------------------------------------------------


def test_round_trip(tmp_path: Path, journal: Journal) -> None:
    envelopes = {f"key-{i}": os.urandom(i * 97) for i in range(20)}
    envelopes["clé-é"] = b"\x00\xff" * 10
    for key, data in envelopes.items():
        journal.append(key, data)
    assert journal.path is not None
    name = Path(journal.path).name
    assert name.startswith(f"{os.getpid()}-") and name.endswith(".journal")
    assert len(name.split("-", 1)[1]) == len("01234567.journal")
    content = Path(journal.path).read_bytes()
    parsed, valid = parse_records(content)
    assert valid == len(content)
    assert parsed == [(PUT, key, data) for key, data in envelopes.items()]
    assert journal.outstanding() == len(envelopes)

    orphan(journal)
    store = Store()
    assert store.recover(tmp_path) == len(envelopes)
    assert store.stored == envelopes
    assert set(store.calls.values()) == {1}
    assert journal_files(tmp_path) == []


def test_the_file_is_opened_at_the_first_append_with_private_mode(tmp_path: Path, journal: Journal) -> None:
    assert journal.path is None
    assert journal_files(tmp_path) == []
    journal.append("k", b"v")
    assert journal.path is not None
    assert os.stat(journal.path).st_mode & 0o777 == 0o600
    assert len(journal_files(tmp_path)) == 1


def test_the_cache_ignores_journal_files(tmp_path: Path, journal: Journal) -> None:
    journal.append("k", b"v")
    (tmp_path / f"{DEAD_PID}-0badf00d.journal.recovering.{DEAD_PID}").write_bytes(b"")
    cache = _cache.EnvelopeCache(str(tmp_path), 10, ClientReportRecorder())
    assert cache.free_count() == 0
    assert cache.claim_next() is None
    assert cache.recover_stale_claims() == 0
    assert len(journal_files(tmp_path)) == 2


def test_done_records_suppress_recovery(tmp_path: Path, journal: Journal) -> None:
    for i in range(6):
        journal.append(f"k{i}", f"data {i}".encode())
    for i in (0, 2, 5):
        journal.done(f"k{i}")
    assert journal.outstanding() == 3
    parsed, _ = parse_records(Path(journal.path or "").read_bytes())
    assert [(kind, key) for kind, key, _ in parsed][-3:] == [(DONE, "k0"), (DONE, "k2"), (DONE, "k5")]

    orphan(journal)
    store = Store()
    assert store.recover(tmp_path) == 3
    assert store.stored == {"k1": b"data 1", "k3": b"data 3", "k4": b"data 4"}


def test_exists_suppresses_recovery(tmp_path: Path) -> None:
    write_journal(tmp_path, records((PUT, "a", b"A"), (PUT, "b", b"B"), (PUT, "c", b"C"), (DONE, "c", b"")))
    store = Store(existing={"b"})
    assert store.recover(tmp_path) == 1
    assert store.stored == {"a": b"A"}
    assert sorted(store.asked) == ["a", "b"]  # never asked about what has its done
    assert journal_files(tmp_path) == []


def test_a_put_after_its_done_counts_again(tmp_path: Path) -> None:
    write_journal(tmp_path, records((PUT, "a", b"1"), (DONE, "a", b""), (PUT, "a", b"2"), (PUT, "b", b"3")))
    store = Store()
    assert store.recover(tmp_path) == 2
    assert store.stored == {"a": b"2", "b": b"3"}


def test_the_file_is_truncated_when_every_put_is_done(tmp_path: Path, journal: Journal) -> None:
    for round_ in range(3):
        for i in range(5):
            journal.append(f"{round_}-{i}", b"x" * 1000)
        path = journal.path
        assert path is not None
        assert os.path.getsize(path) > 5000
        for i in range(5):
            journal.done(f"{round_}-{i}")
        assert os.path.getsize(path) == 0
        assert journal.outstanding() == 0
        assert journal.compact()
    journal.append("last", b"y")
    assert not journal.compact()
    assert parse_records(Path(journal.path or "").read_bytes())[0] == [(PUT, "last", b"y")]


def test_done_of_an_unknown_key_writes_nothing(journal: Journal) -> None:
    journal.done("never-put")  # not even opened
    assert journal.path is None
    journal.append("a", b"A")
    size = os.path.getsize(journal.path or "")
    journal.done("never-put")
    assert os.path.getsize(journal.path or "") == size


def test_close_removes_an_empty_journal_and_keeps_one_with_puts(tmp_path: Path) -> None:
    first = Journal(str(tmp_path))
    first.append("a", b"A")
    first.done("a")
    first.close()
    assert journal_files(tmp_path) == []

    second = Journal(str(tmp_path))
    second.append("b", b"B")
    path = second.path
    second.close()
    assert journal_files(tmp_path) == [Path(path or "")]
    store = Store()
    assert store.recover(tmp_path) == 0  # this process's journal, even closed, while it runs
    second.append("c", b"C")  # a new file
    assert second.path != path
    second.close()


def test_sync(tmp_path: Path, journal: Journal) -> None:
    journal.sync()  # nothing open: nothing to do
    journal.append("a", b"A")
    journal.sync()
    journal.sync()
    assert parse_records(Path(journal.path or "").read_bytes())[0] == [(PUT, "a", b"A")]


def test_a_key_too_long_is_refused(journal: Journal) -> None:
    with pytest.raises(ValueError, match=r"^journal key too long \(70000 bytes\)$"):
        journal.append("k" * 70_000, b"")
    with pytest.raises(ValueError, match=r"^journal key too long \(65536 bytes\)$"):
        encode_record(PUT, "é" * 32768)
    longest = "k" * 0xFFFF
    assert parse_records(encode_record(PUT, longest, b"v"))[0] == [(PUT, longest, b"v")]
    assert journal.path is None  # nothing written for the refused key


def test_the_shortest_record_is_read(tmp_path: Path) -> None:
    """A done of the empty key is a header alone: the last record of a file may be exactly that long."""
    shortest = encode_record(DONE, "")
    assert parse_records(shortest) == ([(DONE, "", b"")], len(shortest))
    assert parse_records(shortest[:-1]) == ([], 0)
    write_journal(tmp_path, records((PUT, "", b"E"), (PUT, "a", b"A"), (DONE, "", b"")))
    store = Store()
    assert store.recover(tmp_path) == 1
    assert store.stored == {"a": b"A"}


def raw_record(magic: bytes, kind: int, raw_key: bytes, data: bytes) -> bytes:
    """A record with any magic, kind and key bytes, and a CRC that matches them."""
    prefix = struct.pack("<4sBxHI", magic, kind, len(raw_key), len(data))
    crc = zlib.crc32(data, zlib.crc32(raw_key, zlib.crc32(prefix)))
    return prefix + crc.to_bytes(4, "little") + raw_key + data


@pytest.mark.parametrize(
    "bad",
    [
        raw_record(b"SFJ2", PUT, b"x", b"X"),
        raw_record(b"SFJ1", 3, b"x", b"X"),
        raw_record(b"SFJ1", 0, b"x", b"X"),
        raw_record(b"SFJ1", PUT, b"\xff\xfe", b"X"),
    ],
    ids=["magic", "kind-3", "kind-0", "key-not-utf8"],
)
def test_a_record_with_a_good_crc_but_bad_fields_ends_the_parse(tmp_path: Path, bad: bytes) -> None:
    assert raw_record(b"SFJ1", PUT, b"a", b"A") == encode_record(PUT, "a", b"A")
    good = encode_record(PUT, "a", b"A")
    content = good + bad + encode_record(PUT, "c", b"C")
    assert parse_records(content) == ([(PUT, "a", b"A")], len(good))
    write_journal(tmp_path, content)
    store = Store()
    assert store.recover(tmp_path) == 1
    assert store.stored == {"a": b"A"}


def test_appends_from_many_threads(tmp_path: Path, journal: Journal) -> None:
    threads, per_thread = 8, 200
    start = threading.Barrier(threads)

    def run(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            journal.append(f"{t}-{i}", bytes([t]) * (i * 13 % 3000))
            if i % 3 == 0:
                journal.done(f"{t}-{i}")

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    content = Path(journal.path or "").read_bytes()
    parsed, valid = parse_records(content)
    assert valid == len(content)
    puts = [(key, data) for kind, key, data in parsed if kind == PUT]
    assert len(puts) == len(dict(puts))  # each record once, whole (the file restarts when all are done)
    assert all(data == bytes([int(key.split("-")[0])]) * (int(key.split("-")[1]) * 13 % 3000) for key, data in puts)
    expected = {f"{t}-{i}": bytes([t]) * (i * 13 % 3000) for t in range(threads) for i in range(per_thread) if i % 3}
    assert journal.outstanding() == len(expected)
    orphan(journal)
    store = Store()
    assert store.recover(tmp_path) == len(expected)
    assert store.stored == expected


# -- torn and corrupt files -------------------------------------------------------------------------


def test_a_torn_tail_recovers_the_complete_records_only(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    complete = records((PUT, "a", b"A" * 100), (PUT, "b", b"B" * 100), (DONE, "a", b""))
    last = encode_record(PUT, "c", b"C" * 100)
    write_journal(tmp_path, complete + last[: len(last) // 2])
    store = Store()
    with caplog.at_level(logging.WARNING, logger="sentry_feedback"):
        assert store.recover(tmp_path) == 1
    assert store.stored == {"b": b"B" * 100}
    assert caplog.messages == [
        f"journal {DEAD_PID}-deadbeef.journal.recovering.{os.getpid()}: "
        f"ignored {len(last) // 2} bytes of a torn or corrupt tail after 3 records"
    ]
    assert journal_files(tmp_path) == []


def test_a_whole_journal_is_recovered_without_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_journal(tmp_path, records((PUT, "a", b"A"), (PUT, "b", b"B"), (DONE, "a", b"")))
    with caplog.at_level(logging.DEBUG, logger="sentry_feedback"):
        assert Store().recover(tmp_path) == 1
    assert caplog.messages == []


@pytest.mark.parametrize(
    "garbage",
    [b"\x00" * 40, b"garbage that is not a record at all", b"SFJ1" + b"\xff" * 30, b"SFJ"],
    ids=["zeros", "text", "bad-header", "short"],
)
def test_garbage_after_the_records_is_ignored(tmp_path: Path, garbage: bytes) -> None:
    write_journal(tmp_path, records((PUT, "a", b"A"), (PUT, "b", b"B")) + garbage + encode_record(PUT, "c", b"C"))
    store = Store()
    assert store.recover(tmp_path) == 2
    assert store.stored == {"a": b"A", "b": b"B"}  # nothing after the garbage


def test_a_flipped_bit_ends_the_parse(tmp_path: Path) -> None:
    second = bytearray(encode_record(PUT, "b", b"payload"))
    second[-3] ^= 0x10
    write_journal(tmp_path, encode_record(PUT, "a", b"A") + bytes(second) + encode_record(PUT, "c", b"C"))
    store = Store()
    assert store.recover(tmp_path) == 1
    assert store.stored == {"a": b"A"}


def test_a_failed_write_leaves_no_torn_record(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, journal: Journal
) -> None:
    journal.append("a", b"A" * 500)
    fd = journal._fd
    size = os.path.getsize(journal.path or "")
    real_write = os.write
    calls: list[int] = []

    def half_then_full(target: int, data: bytes) -> int:
        if target != fd:
            return real_write(target, data)
        calls.append(len(data))
        if len(calls) == 1:  # the first write of the record: half of it goes in
            return real_write(target, bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError):
        journal.append("b", b"B" * 2000)
    monkeypatch.undo()
    assert os.path.getsize(journal.path or "") == size  # the half record is cut off
    assert journal.outstanding() == 1
    journal.append("c", b"C")  # still usable
    orphan(journal)
    store = Store()
    assert store.recover(tmp_path) == 2
    assert store.stored == {"a": b"A" * 500, "c": b"C"}


def test_a_torn_record_that_cannot_be_cut_off_seals_the_journal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    journal.append("a", b"A")
    journal.append("b", b"B")
    fd = journal._fd
    path = Path(journal.path or "")
    real_write = os.write
    calls: list[int] = []

    def half(target: int, data: bytes) -> int:
        if target == fd:
            calls.append(len(data))
            if len(calls) == 1:  # the record's first 50 bytes go in, then the disk fails
                return real_write(target, bytes(data)[:50])
            raise OSError(errno.EIO, "I/O error")
        return real_write(target, data)

    def no_truncate(target: int, length: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "write", half)
    monkeypatch.setattr(os, "ftruncate", no_truncate)
    with caplog.at_level(logging.ERROR, logger="sentry_feedback"), pytest.raises(OSError):
        journal.append("x", b"X" * 1000)
    monkeypatch.undo()
    assert caplog.messages == [f"journal {path} may have a torn record that cannot be removed ([Errno 5] I/O error)"]
    # Had the process died now, the puts before the tear would be recovered.
    assert parse_records(path.read_bytes())[0] == [(PUT, "a", b"A"), (PUT, "b", b"B")]
    with pytest.raises(OSError) as refused:
        journal.append("y", b"Y")  # the caller stores it the old way
    assert refused.value.errno == errno.EIO
    assert refused.value.strerror == "the journal has a torn record; it takes no more puts"
    # A done after the tear could not be read: no key is released until all of them are.
    with pytest.raises(OSError) as held:
        journal.done("a")
    assert held.value.errno == errno.EIO
    assert held.value.strerror == "the journal still holds the put of a"
    with pytest.raises(OSError):
        journal.done("a")
    real_unlink = os.unlink

    def no_unlink(target: str) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "unlink", no_unlink)
    with pytest.raises(OSError):
        journal.done("b")  # the last, but the file cannot go: still not to be sent
    monkeypatch.setattr(os, "unlink", real_unlink)
    assert path.exists()
    journal.done("b")  # the file goes
    assert not path.exists()
    journal.done("a")  # now fine to send
    journal.append("z", b"Z")  # a new file
    assert journal.path is not None and Path(journal.path) != path
    orphan(journal)
    store = Store()
    assert store.recover(tmp_path) == 1
    assert store.stored == {"z": b"Z"}


def test_done_retried_after_a_failure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, journal: Journal) -> None:
    journal.append("a", b"A")
    journal.append("b", b"B")
    fd = journal._fd
    real_write = os.write
    failing = True

    def full(target: int, data: bytes) -> int:
        if target == fd and failing:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(target, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError):
        journal.done("a")
    assert journal.outstanding() == 2
    failing = False
    journal.done("a")
    assert journal.outstanding() == 1
    orphan(journal)
    store = Store()
    assert store.recover(tmp_path) == 1
    assert store.stored == {"b": b"B"}


def test_the_last_done_truncates_even_on_a_full_disk(monkeypatch: pytest.MonkeyPatch, journal: Journal) -> None:
    journal.append("a", b"A")
    fd = journal._fd
    real_write = os.write

    def full(target: int, data: bytes) -> int:
        if target == fd:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(target, data)

    monkeypatch.setattr(os, "write", full)
    journal.done("a")
    assert os.path.getsize(journal.path or "") == 0


# -- liveness ---------------------------------------------------------------------------------------


def test_the_live_process_own_journal_is_never_recovered(tmp_path: Path, journal: Journal) -> None:
    journal.append("a", b"A")
    path = Path(journal.path or "")
    content = path.read_bytes()
    store = Store()
    assert store.recover(tmp_path) == 0
    assert store.calls == Counter()
    assert path.read_bytes() == content
    assert journal_files(tmp_path) == [path]
    journal.append("b", b"B")  # still ours, still the same file
    assert Path(journal.path or "") == path


def test_journals_of_a_live_process_wait_until_it_exits(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        write_journal(tmp_path, records((PUT, "a", b"A")), pid=sleeper.pid)
        (tmp_path / f"{DEAD_PID}-cafecafe.journal.recovering.{sleeper.pid}").write_bytes(records((PUT, "b", b"B")))
        store = Store()
        assert store.recover(tmp_path) == 0
        assert len(journal_files(tmp_path)) == 2
        assert journal_pids(str(tmp_path)) == {sleeper.pid, DEAD_PID}
    finally:
        assert sleeper.stdin is not None
        sleeper.stdin.close()
        sleeper.wait()
    assert store.recover(tmp_path) == 2
    assert store.stored == {"a": b"A", "b": b"B"}
    assert journal_files(tmp_path) == []
    assert journal_pids(str(tmp_path)) == set()


def test_a_journal_left_by_an_earlier_process_with_our_pid_is_recovered(tmp_path: Path, journal: Journal) -> None:
    journal.append("ours", b"O")
    write_journal(tmp_path, records((PUT, "theirs", b"T")), pid=os.getpid(), token="0ddba11a")
    store = Store()
    assert store.recover(tmp_path) == 1
    assert store.stored == {"theirs": b"T"}
    assert journal_files(tmp_path) == [Path(journal.path or "")]


def test_a_dead_recoverer_is_taken_over(tmp_path: Path) -> None:
    # The first recoverer stored "a" and marked it, then died before "b".
    name = f"{DEAD_PID}-feedface.journal.recovering.{DEAD_PID - 1}"
    (tmp_path / name).write_bytes(records((PUT, "a", b"A"), (PUT, "b", b"B"), (DONE, "a", b"")))
    assert journal_pids(str(tmp_path)) == {DEAD_PID, DEAD_PID - 1}
    store = Store()
    assert store.recover(tmp_path) == 1
    assert store.stored == {"b": b"B"}
    assert journal_files(tmp_path) == []


def test_a_recovery_marks_what_it_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A recoverer that dies midway leaves a journal its successor does not store again."""
    write_journal(tmp_path, records((PUT, "a", b"A"), (PUT, "b", b"B"), (PUT, "c", b"C")))

    class Died(Exception):
        pass

    first = Store()

    def store_two(key: str, data: bytes) -> None:
        if len(first.stored) == 2:
            raise Died
        first.store(key, data)

    assert recover(str(tmp_path), store_two, lambda key: False) == 0  # logged, journal left
    [left] = journal_files(tmp_path)
    assert left.name == f"{DEAD_PID}-deadbeef.journal.recovering.{os.getpid()}"
    # As if that recoverer had died: its pid is not ours any more.
    left = left.rename(left.with_name(f"{DEAD_PID}-deadbeef.journal.recovering.{DEAD_PID}"))
    second = Store()
    assert recover(str(tmp_path), second.store, lambda key: False) == 1
    assert second.stored == {"c": b"C"}
    assert first.stored == {"a": b"A", "b": b"B"}


def test_a_failed_store_is_retried_by_the_next_recovery(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_journal(tmp_path, records((PUT, "a", b"A")))

    def broken(key: str, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with caplog.at_level(logging.WARNING, logger="sentry_feedback"):
        assert recover(str(tmp_path), broken, lambda key: False) == 0
    [record] = caplog.records
    assert record.getMessage() == (
        f"could not recover journal {DEAD_PID}-deadbeef.journal ([Errno 28] No space left on device); left for later"
    )
    assert record.exc_info is not None and isinstance(record.exc_info[1], OSError)
    assert len(journal_files(tmp_path)) == 1
    store = Store()
    assert store.recover(tmp_path) == 1  # the earlier attempt of this process is over
    assert store.stored == {"a": b"A"}
    assert journal_files(tmp_path) == []


def test_the_liveness_test_is_the_cache_one() -> None:
    assert _cache._pid_alive is _journal.pid_alive
    assert _journal.pid_alive(os.getpid())
    assert not _journal.pid_alive(DEAD_PID)
    # A process of our own, not our parent: the test must not disturb the process it asks about.
    # (Its signals are back to their defaults: a signal the test runner ignores must still count.)
    code = (
        "import signal, sys\n"
        "for s in signal.valid_signals():\n"
        "    try: signal.signal(s, signal.SIG_DFL)\n"
        "    except (OSError, ValueError): pass\n"
        "print('ready', flush=True)\n"
        "sys.stdin.read()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        assert _journal.pid_alive(child.pid)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        assert child.wait() == 0  # it ended on its own, not by a signal
        assert child.stdout is not None
        child.stdout.close()
    assert not _journal.pid_alive(child.pid)  # reaped: gone


def test_a_process_that_is_not_ours_to_signal_is_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_permitted(pid: int, sig: int) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "kill", not_permitted)
    assert _journal.pid_alive(DEAD_PID)


def test_other_files_are_left_alone(tmp_path: Path) -> None:
    names = ["x.envelope", "x.envelope.1.sending", ".x.envelope.1.tmp", "journal", "1-a.journal.recovering.z"]
    names += [".1-a.journal", "abc-d.journal", "1-.journal"]
    for name in names:
        (tmp_path / name).write_bytes(records((PUT, "a", b"A")))
    (tmp_path / "corrupt").mkdir()
    store = Store()
    assert store.recover(tmp_path) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*names, "corrupt"])
    assert journal_pids(str(tmp_path)) == set()
    assert recover(str(tmp_path / "missing"), store.store, store.exists) == 0


# -- processes --------------------------------------------------------------------------------------

WRITER = f"""
import sys
sys.path.insert(0, {SRC!r})
from sentry_feedback._client_reports import ClientReportRecorder
from sentry_feedback._journal import Journal

journal = Journal(sys.argv[1])
i = 0
while True:
    key = f"key-{{i}}"
    journal.append(key, key.encode() * 100)
    print(key, flush=True)
    i += 1
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_process_killed_in_a_burst_of_appends_loses_nothing(tmp_path: Path) -> None:
    kills_after = 300
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    printed = [proc.stdout.readline().strip() for _ in range(kills_after)]
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    printed += proc.stdout.read().split()  # appended and printed before the kill
    proc.stdout.close()
    assert printed == [f"key-{i}" for i in range(len(printed))]

    [left] = journal_files(tmp_path)
    assert left.name.startswith(f"{proc.pid}-")
    store = Store()
    count = store.recover(tmp_path)
    assert set(printed) <= set(store.stored)  # N of N
    assert set(store.calls.values()) == {1}  # each once
    # At most the one appended after the last print and before the kill.
    assert set(store.stored) - set(printed) <= {f"key-{len(printed)}"}
    assert count == len(store.stored)
    assert all(data == key.encode() * 100 for key, data in store.stored.items())
    assert journal_files(tmp_path) == []


RECOVERER = f"""
import os, sys
sys.path.insert(0, {SRC!r})
from sentry_feedback._client_reports import ClientReportRecorder
from sentry_feedback._journal import recover

directory, out = sys.argv[1], sys.argv[2]

def store(key, data):
    fd = os.open(os.path.join(out, f"{{key}}.{{os.getpid()}}"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, data)
    os.close(fd)

print("ready", flush=True)
sys.stdin.readline()
print(recover(directory, store, lambda key: False), flush=True)
"""


def test_concurrent_recoverers_store_each_key_once(tmp_path: Path) -> None:
    directory, out = tmp_path / "cache", tmp_path / "stored"
    directory.mkdir()
    out.mkdir()
    expected: dict[str, bytes] = {}
    for j in range(16):
        ops: list[tuple[int, str, bytes]] = []
        for i in range(60):
            key = f"j{j}-k{i}"
            ops.append((PUT, key, key.encode()))
            if i % 4 == 0:
                ops.append((DONE, key, b""))
            else:
                expected[key] = key.encode()
        content = records(*ops)
        if j % 4 == 0:  # a recovery whose recoverer died: claimed again
            (directory / f"{DEAD_PID}-{j:08x}.journal.recovering.{DEAD_PID}").write_bytes(content)
        else:
            write_journal(directory, content, token=f"{j:08x}")

    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RECOVERER, str(directory), str(out)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for proc in procs:  # every one is waiting at the start line
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.close()
    counts = []
    for proc in procs:
        assert proc.stdout is not None
        counts.append(int(proc.stdout.read()))
        proc.stdout.close()
        assert proc.wait() == 0

    stored = Counter(p.name.rsplit(".", 1)[0] for p in out.iterdir())
    assert stored == Counter(dict.fromkeys(expected, 1))  # every key once, in all
    assert sum(counts) == len(expected)
    for path in out.iterdir():
        assert path.read_bytes() == expected[path.name.rsplit(".", 1)[0]]
    assert journal_files(directory) == []


# -- fork -------------------------------------------------------------------------------------------

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _in_child(body: Callable[[], bytes]) -> tuple[int, bytes]:
    """Fork; the child runs ``body`` and reports its result through a pipe. Returns (exit code, result)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read_end)
            signal.alarm(30)  # a deadlock kills the child instead of hanging the test
            os.write(write_end, body())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks)


@needs_fork
def test_a_forked_child_writes_its_own_journal(tmp_path: Path, journal: Journal) -> None:
    journal.append("parent", b"P")
    parent_path = Path(journal.path or "")
    before = parent_path.read_bytes()

    def child() -> bytes:
        assert journal.outstanding() == 0  # the parent's puts are not the child's
        journal.done("parent")  # ignored: not the child's to mark
        journal.append("child", b"C")
        return (journal.path or "").encode()

    code, result = _in_child(child)
    assert code == 0
    child_path = Path(result.decode())
    assert child_path != parent_path
    assert child_path.parent == parent_path.parent
    assert child_path.name.split("-")[0] != str(os.getpid())
    assert parent_path.read_bytes() == before
    assert parse_records(child_path.read_bytes())[0] == [(PUT, "child", b"C")]

    journal.append("parent-2", b"P2")  # the parent carries on in its own file
    assert Path(journal.path or "") == parent_path
    assert journal.outstanding() == 2
    store = Store()
    assert store.recover(tmp_path) == 1  # the child's (it has exited); never the parent's
    assert store.stored == {"child": b"C"}
    assert journal_files(tmp_path) == [parent_path]


@needs_fork
def test_a_fork_while_a_thread_holds_the_lock(journal: Journal) -> None:
    journal.append("a", b"A")

    def child() -> bytes:
        journal.append("b", b"B")
        return b"ok"

    with journal._lock:  # as if another thread were appending at the fork
        code, result = _in_child(child)
    assert (code, result) == (0, b"ok")


def test_a_fork_the_hook_missed_still_gets_its_own_journal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, journal: Journal
) -> None:
    journal.append("parent", b"P")
    parent_path = Path(journal.path or "")
    before = parent_path.read_bytes()
    child_pid = DEAD_PID + 1
    monkeypatch.setattr(os, "getpid", lambda: child_pid)  # as seen from a child the hook missed
    assert journal.path is None
    assert journal.outstanding() == 0  # the parent's puts are not the child's
    assert journal.compact() is True  # nothing of the child's to compact; the parent's file untouched
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    journal.sync()  # nothing of the child's to flush
    assert synced == []
    journal.done("parent")  # not the child's
    journal.append("child", b"C")
    child_path = Path(journal.path or "")
    assert child_path.name.startswith(f"{child_pid}-")
    assert parse_records(child_path.read_bytes())[0] == [(PUT, "child", b"C")]
    assert parent_path.read_bytes() == before


# -- properties -------------------------------------------------------------------------------------

keys = st.sampled_from(["a", "b", "c", "d", "é", "long-" + "k" * 40])
operations = st.lists(
    st.one_of(
        st.tuples(st.just(PUT), keys, st.binary(max_size=300)),
        st.tuples(st.just(DONE), keys, st.just(b"")),
    ),
    max_size=40,
)


def _pending(ops: list[tuple[int, str, bytes]]) -> dict[str, bytes]:
    """The model: the puts without a later done, with their last data."""
    pending: dict[str, bytes] = {}
    for kind, key, data in ops:
        pending.pop(key, None)
        if kind == PUT:
            pending[key] = data
    return pending


def _recover_content(content: bytes, name: str) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / name).write_bytes(content)
        stored: dict[str, bytes] = {}

        def store(key: str, data: bytes) -> None:
            assert key not in stored
            stored[key] = data

        assert recover(directory, store, lambda key: False) == len(stored)
        assert os.listdir(directory) == []
        return stored


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, cut=st.floats(0, 1), recovering=st.booleans())
def test_recovery_yields_the_puts_without_done_among_the_complete_records(
    ops: list[tuple[int, str, bytes]], cut: float, recovering: bool
) -> None:
    encoded = [encode_record(*op) for op in ops]
    content = b"".join(encoded)
    length = int(len(content) * cut)
    complete, end = [], 0
    for op, record in zip(ops, encoded, strict=True):
        end += len(record)
        if end > length:
            break
        complete.append(op)
    name = f"{DEAD_PID}-00000000.journal" + (f".recovering.{DEAD_PID}" if recovering else "")
    assert _recover_content(content[:length], name) == _pending(complete)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, cut=st.floats(0, 1))
def test_a_journal_recovers_what_it_has_not_marked_done(ops: list[tuple[int, str, bytes]], cut: float) -> None:
    with tempfile.TemporaryDirectory() as directory:
        journal = Journal(directory)
        # What the file holds: the records since it was last truncated.
        file_ops: list[tuple[int, str, bytes]] = []
        outstanding: set[str] = set()
        for kind, key, data in ops:
            if kind == PUT:
                journal.append(key, data)
                file_ops.append((kind, key, data))
                outstanding.add(key)
            else:
                journal.done(key)
                if key in outstanding:
                    outstanding.discard(key)
                    file_ops = [] if not outstanding else [*file_ops, (DONE, key, b"")]
        assert journal.outstanding() == len(outstanding)
        path = journal.path
        if path is None or not outstanding:
            journal.close()
            assert os.listdir(directory) == []
            assert _pending(file_ops) == {}
            return
        content = Path(path).read_bytes()
        assert content == records(*file_ops)
        journal.close()
        os.unlink(path)
    length = int(len(content) * cut)
    complete, end = [], 0
    for op in file_ops:
        end += len(encode_record(*op))
        if end > length:
            break
        complete.append(op)
    assert _recover_content(content[:length], f"{DEAD_PID}-00000000.journal") == _pending(complete)
    assert _recover_content(content, f"{DEAD_PID}-00000000.journal") == _pending(file_ops)


def test_with_truncate_above_small_journals_get_done_records_and_large_ones_are_emptied(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path), truncate_above=10_000)
    try:
        journal.append("a", b"x" * 100)
        journal.done("a")
        path = journal.path or ""
        assert [kind for kind, _, _ in parse_records(Path(path).read_bytes())[0]] == [PUT, DONE]
        journal.append("b", b"y" * 20_000)
        journal.done("b")
        assert os.path.getsize(path) == 0 and journal.outstanding() == 0
    finally:
        journal.close()
    assert os.listdir(tmp_path) == []


# -- short writes, failures, descriptors ------------------------------------------------------------


def _short_writes(monkeypatch: pytest.MonkeyPatch, fd: int, sizes: list[int]) -> list[int]:
    """Make ``os.write`` to ``fd`` write at most ``sizes[i]`` bytes on its i-th call (then all); the calls' results."""
    real_write = os.write
    results: list[int] = []

    def short(target: int, data: bytes) -> int:
        if target != fd:
            return real_write(target, data)
        assert len(results) < 1000, "the journal keeps writing"
        limit = sizes[len(results)] if len(results) < len(sizes) else len(data)
        n = real_write(target, bytes(data)[:limit]) if limit else 0
        results.append(n)
        return n

    monkeypatch.setattr(os, "write", short)
    return results


def test_short_writes_are_completed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, journal: Journal) -> None:
    journal.append("a", b"A")
    fd = journal._fd
    results = _short_writes(monkeypatch, fd, [10, 1, 1, 7])
    journal.append("b", b"B" * 100)
    monkeypatch.undo()
    record = encode_record(PUT, "b", b"B" * 100)
    assert results == [10, 1, 1, 7, len(record) - 19]
    journal.append("c", b"C")
    orphan(journal)
    store = Store()
    assert store.recover(tmp_path) == 3
    assert store.stored == {"a": b"A", "b": b"B" * 100, "c": b"C"}


def test_a_write_that_makes_no_progress_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, journal: Journal
) -> None:
    journal.append("a", b"A")
    fd = journal._fd
    size = os.path.getsize(journal.path or "")
    results = _short_writes(monkeypatch, fd, [5, 0])
    with pytest.raises(OSError) as failed:
        journal.append("b", b"B" * 100)
    monkeypatch.undo()
    assert results == [5, 0]
    assert failed.value.errno == errno.EIO
    assert failed.value.strerror == "journal write made no progress"
    assert os.path.getsize(journal.path or "") == size  # the five bytes are cut off
    assert journal.outstanding() == 1
    orphan(journal)
    store = Store()
    assert store.recover(tmp_path) == 1
    assert store.stored == {"a": b"A"}


def _fail_the_next_write_halfway(monkeypatch: pytest.MonkeyPatch, fd: int) -> None:
    real_write = os.write
    calls = []

    def half_then_full(target: int, data: bytes) -> int:
        if target != fd:
            return real_write(target, data)
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(target, bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)


@pytest.mark.parametrize("emptied_by", ["last-done", "compact"])
def test_a_failed_write_after_the_file_was_emptied_leaves_no_torn_record(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, emptied_by: str
) -> None:
    journal = Journal(str(tmp_path), truncate_above=0 if emptied_by == "last-done" else 10**9)
    try:
        journal.append("a", b"A" * 50)
        journal.done("a")
        if emptied_by == "compact":
            assert os.path.getsize(journal.path or "") > 0  # a done record: small journals are not truncated
            assert journal.compact() is True
        assert os.path.getsize(journal.path or "") == 0
        journal.append("b", b"B")
        assert os.path.getsize(journal.path or "") == len(encode_record(PUT, "b", b"B"))
        with monkeypatch.context() as patch:
            _fail_the_next_write_halfway(patch, journal._fd)
            with pytest.raises(OSError):
                journal.append("x", b"X" * 500)
        journal.append("c", b"C")
        orphan(journal)
    finally:
        journal.close()
    store = Store()
    assert store.recover(tmp_path) == 2
    assert store.stored == {"b": b"B", "c": b"C"}


def test_the_last_done_writes_a_record_when_the_truncation_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, journal: Journal
) -> None:
    journal.append("a", b"A")
    journal.append("b", b"B")
    journal.done("a")

    def no_truncate(target: int, length: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "ftruncate", no_truncate)
    journal.done("b")
    monkeypatch.undo()
    assert journal.outstanding() == 0
    content = Path(journal.path or "").read_bytes()
    parsed = parse_records(content)[0]
    assert [(kind, key) for kind, key, _ in parsed] == [(PUT, "a"), (PUT, "b"), (DONE, "a"), (DONE, "b")]
    journal.close()
    assert journal_files(tmp_path) == []  # nothing outstanding: removed
    write_journal(tmp_path, content)  # had the process died before: nothing to recover
    assert Store().recover(tmp_path) == 0


def test_a_done_truncates_only_a_journal_larger_than_the_threshold(tmp_path: Path) -> None:
    size = len(encode_record(PUT, "a", b"x" * 100))
    journal = Journal(str(tmp_path), truncate_above=size)
    try:
        journal.append("a", b"x" * 100)
        journal.done("a")  # exactly the threshold: a done record
        path = journal.path or ""
        assert os.path.getsize(path) == size + len(encode_record(DONE, "a"))
        journal.append("b", b"y")
        journal.done("b")  # larger: emptied
        assert os.path.getsize(path) == 0
    finally:
        journal.close()


def test_compact(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path), truncate_above=10**9)
    try:
        assert journal.compact() is True  # nothing open
        journal.append("a", b"A")
        assert journal.compact() is False  # a put is outstanding
        journal.done("a")
        path = journal.path or ""
        assert os.path.getsize(path) > 0
        assert journal.compact() is True
        assert os.path.getsize(path) == 0
        assert journal.compact() is True
        journal.append("b", b"B")
        assert parse_records(Path(path).read_bytes()) == ([(PUT, "b", b"B")], len(encode_record(PUT, "b", b"B")))
    finally:
        journal.close()


def test_sync_flushes_the_file_and_the_directory_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, journal: Journal
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else str(fd))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    journal.sync()
    assert synced == []  # nothing open
    journal.append("a", b"A")
    journal.sync()
    journal.append("b", b"B")
    journal.sync()
    journal.sync()
    if os.path.exists("/proc/self/fd"):
        path = os.path.realpath(journal.path or "")
        assert synced == [path, os.path.realpath(tmp_path), path, path]
    else:
        assert len(synced) == 4


def _inode(fd: int) -> int | None:
    """The inode ``fd`` refers to, ``None`` when it is not open."""
    try:
        return os.fstat(fd).st_ino
    except OSError:
        return None


@pytest.mark.skipif(not os.path.exists("/proc/self/fd"), reason="needs /proc/self/fd")
def test_a_journal_on_descriptor_zero(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A process that closed its standard input (a daemon) gets descriptor 0 for its journal."""
    saved = os.dup(0) if _inode(0) is not None else None
    if saved is not None:
        os.close(0)
    try:
        journal = Journal(str(tmp_path), truncate_above=10**9)
        journal.append("a", b"A")
        assert journal._fd == 0
        path = journal.path
        journal.append("b", b"B")
        assert journal.path == path  # the same file
        synced: list[str] = []
        real_fsync = os.fsync

        def spy(fd: int) -> None:
            synced.append(os.readlink(f"/proc/self/fd/{fd}"))
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", spy)
        journal.sync()
        monkeypatch.undo()
        assert synced == [os.path.realpath(path or ""), os.path.realpath(tmp_path)]
        journal.done("a")
        journal.done("b")
        assert os.path.getsize(path or "") > 0
        assert journal.compact() is True
        assert os.path.getsize(path or "") == 0
        journal.close()
        assert journal_files(tmp_path) == []
        with pytest.raises(OSError):
            os.fstat(0)  # closed by the journal

        parent = Journal(str(tmp_path))
        parent.append("p", b"P")
        assert parent._fd == 0
        parent_path = os.path.realpath(parent.path or "")
        with monkeypatch.context() as patch:
            patch.setattr(os, "getpid", lambda: DEAD_PID + 1)  # a child the fork hook missed
            parent.append("c", b"C")  # the parent's descriptor is closed, a file of its own opened
            child_path = os.path.realpath(parent.path or "")
            assert child_path != parent_path
            assert os.readlink("/proc/self/fd/0") == child_path  # not the parent's file, still open
            parent.done("c")
            parent.close()
        assert parse_records(Path(parent_path).read_bytes())[0] == [(PUT, "p", b"P")]
    finally:
        if saved is not None:
            os.dup2(saved, 0)
            os.close(saved)


def test_a_journal_never_opened_touches_no_descriptor(tmp_path: Path) -> None:
    before = [_inode(fd) for fd in (0, 1, 2)]
    journal = Journal(str(tmp_path))
    journal.close()
    journal = Journal(str(tmp_path))
    journal.append("a", b"A")
    assert journal._fd > 2
    journal.done("a")
    journal.close()
    assert [_inode(fd) for fd in (0, 1, 2)] == before


def test_close_logs_what_it_could_not_do(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    journal = Journal(str(tmp_path))
    journal.append("a", b"A")
    journal.done("a")
    path = journal.path or ""
    os.unlink(path)  # someone emptied the directory
    with caplog.at_level(logging.DEBUG, logger="sentry_feedback"):
        journal.close()  # does not raise
    assert caplog.messages == [f"could not remove journal {path} ([Errno 2] No such file or directory: {path!r})"]

    journal.append("b", b"B")
    os.close(journal._fd)  # closed behind its back
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="sentry_feedback"):
        journal.close()  # outstanding: kept, closed
    assert caplog.messages == ["could not close a journal ([Errno 9] Bad file descriptor)"]


def test_a_name_taken_by_an_earlier_process_with_our_pid_is_skipped_and_recovered(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, journal: Journal
) -> None:
    """In a container every run may have the same pid: a new journal never reuses a left one."""
    taken = write_journal(tmp_path, records((PUT, "old", b"O")), pid=os.getpid(), token="0badcafe")
    tokens = iter([bytes.fromhex("0badcafe"), bytes.fromhex("0badcafe"), bytes.fromhex("00c0ffee")])
    monkeypatch.setattr(os, "urandom", lambda n: next(tokens))
    journal.append("new", b"N")
    monkeypatch.undo()
    assert Path(journal.path or "").name == f"{os.getpid()}-00c0ffee.journal"
    assert taken.read_bytes() == records((PUT, "old", b"O"))
    store = Store()
    assert store.recover(tmp_path) == 1  # the earlier process's; never ours
    assert store.stored == {"old": b"O"}
    assert journal_files(tmp_path) == [Path(journal.path or "")]


def test_the_names_this_process_tracks_do_not_pile_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A long-running process keeps no name of a journal it no longer has."""
    before = set(_journal._active)
    for _ in range(3):
        journal = Journal(str(tmp_path))
        journal.append("a", b"A")
        journal.done("a")
        journal.close()  # nothing outstanding: the file goes
    assert _journal._active == before

    missing = Journal(str(tmp_path / "missing"))
    for _ in range(3):
        with pytest.raises(OSError):
            missing.append("a", b"A")  # the directory is gone
    assert _journal._active == before

    real_listdir = os.listdir
    phantom = f"{DEAD_PID}-0badf00d.journal"  # listed, then gone before it is claimed
    monkeypatch.setattr(os, "listdir", lambda d: [*real_listdir(d), phantom])
    assert Store().recover(tmp_path) == 0
    monkeypatch.undo()
    assert _journal._active == before


@pytest.mark.parametrize("chain", ["", f".recovering.{DEAD_PID - 1}", f".recovering.{os.getpid()}"])
def test_a_journal_under_recovery_is_not_claimed_again_by_this_process(tmp_path: Path, chain: str) -> None:
    """``store`` may run anything, a recovery of the same directory included: it must not store twice."""
    write_journal(tmp_path, records((PUT, "a", b"A"), (PUT, "b", b"B")))
    if chain:
        os.rename(tmp_path / f"{DEAD_PID}-deadbeef.journal", tmp_path / f"{DEAD_PID}-deadbeef.journal{chain}")
    stored: list[str] = []
    inner: list[int] = []

    def store(key: str, data: bytes) -> None:
        stored.append(key)
        inner.append(recover(str(tmp_path), store, lambda key: False))

    assert recover(str(tmp_path), store, lambda key: False) == 2
    assert stored == ["a", "b"]
    assert inner == [0, 0]
    assert journal_files(tmp_path) == []


def test_a_taken_over_recovery_names_every_recoverer(tmp_path: Path) -> None:
    name = f"{DEAD_PID}-feedface.journal.recovering.{DEAD_PID - 1}"
    (tmp_path / name).write_bytes(records((PUT, "a", b"A")))
    seen: list[list[str]] = []

    def store(key: str, data: bytes) -> None:
        seen.append([p.name for p in journal_files(tmp_path)])
        assert journal_pids(str(tmp_path)) == {DEAD_PID, DEAD_PID - 1, os.getpid()}
        raise OSError(errno.ENOSPC, "No space left on device")

    assert recover(str(tmp_path), store, lambda key: False) == 0
    assert seen == [[f"{name}.{os.getpid()}"]]
    # Left for later under that name: a recoverer after us takes it over in turn.
    assert [p.name for p in journal_files(tmp_path)] == [f"{name}.{os.getpid()}"]
    os.rename(tmp_path / f"{name}.{os.getpid()}", tmp_path / f"{name}.{DEAD_PID - 2}")
    store_ = Store()
    assert store_.recover(tmp_path) == 1
    assert store_.stored == {"a": b"A"}


def test_odd_journal_names(tmp_path: Path) -> None:
    """The pid is what comes before the first dash; the chain is what follows the first marker."""
    write_journal(tmp_path, records((PUT, "a", b"A")), token="dead-beef")
    odd = f"{DEAD_PID}-x.journal.recovering.{DEAD_PID}.journal.recovering.{DEAD_PID}"
    (tmp_path / odd).write_bytes(records((PUT, "b", b"B")))
    assert journal_pids(str(tmp_path)) == {DEAD_PID}
    store = Store()
    assert store.recover(tmp_path) == 1
    assert store.stored == {"a": b"A"}
    assert [p.name for p in journal_files(tmp_path)] == [odd]  # not a journal: left alone


@pytest.mark.skipif(not os.path.exists("/proc/self/fd"), reason="needs /proc/self/fd")
def test_the_journal_under_recovery_is_not_inherited(tmp_path: Path) -> None:
    """``store`` may start programs: they must not get the journal's descriptor."""
    write_journal(tmp_path, records((PUT, "a", b"A"), (PUT, "b", b"B")))
    inheritable: list[bool] = []

    def store(key: str, data: bytes) -> None:
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if ".journal.recovering." in target:
                inheritable.append(os.get_inheritable(int(fd)))

    assert recover(str(tmp_path), store, lambda key: False) == 2
    assert inheritable == [False, False]


def test_the_fork_hook_starts_every_journal_afresh(tmp_path: Path, journal: Journal) -> None:
    """What a forked child's hook does, seen in this process: the old file is left as it was."""
    journal.append("before", b"B")
    old = Path(journal.path or "")
    _journal._reinit_in_child()
    assert journal.path is None
    assert journal.outstanding() == 0
    journal.append("after", b"A")  # a new lock and a new file
    assert Path(journal.path or "") != old
    assert parse_records(old.read_bytes())[0] == [(PUT, "before", b"B")]
    store = Store()
    # The hook forgot the old file's name: it is a journal left by "another" process with our pid.
    assert store.recover(tmp_path) == 1
    assert store.stored == {"before": b"B"}
    assert journal_files(tmp_path) == [Path(journal.path or "")]
