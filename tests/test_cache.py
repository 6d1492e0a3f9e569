"""The offline cache: whole files, claims by rename, eviction, corrupt files, dead processes' leftovers."""

from __future__ import annotations

import logging
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentry_feedback import Attachment, Envelope
from sentry_feedback._cache import JOURNAL_TRUNCATE_ABOVE, CachedEnvelope, EnvelopeCache
from sentry_feedback._client_reports import ClientReportRecorder
from sentry_feedback._envelope import EnvelopeItem, PayloadReadError
from sentry_feedback._journal import DONE, PUT, encode_record, parse_records

#: Above the largest pid Linux can hand out (PID_MAX_LIMIT, 2**22): never a live process.
DEAD_PID = 2**22 + 1
PID = os.getpid()


@pytest.fixture
def recorder() -> ClientReportRecorder:
    return ClientReportRecorder()


@pytest.fixture
def cache(tmp_path: Path, recorder: ClientReportRecorder) -> Iterator[EnvelopeCache]:
    c = EnvelopeCache(str(tmp_path / "cache"), 100, recorder)
    yield c
    c.close()


@pytest.fixture
def live_pid() -> Iterator[int]:
    """The pid of a process that runs for the whole test (not ours)."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    yield proc.pid
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait() == 0


def names(directory: str | Path) -> list[str]:
    return sorted(os.listdir(directory))


def feedback_envelope(message: str, *attachments: bytes, report: bool = False) -> Envelope:
    items = [EnvelopeItem.from_json("feedback", {"contexts": {"feedback": {"message": message}}})]
    items += [
        EnvelopeItem.from_attachment(Attachment(data, filename=f"a{i}.bin")) for i, data in enumerate(attachments)
    ]
    if report:
        counts = {"timestamp": 1.0, "discarded_events": [{"reason": "x", "category": "error", "quantity": 5}]}
        items.append(EnvelopeItem.from_json("client_report", counts))
    return Envelope({"event_id": "ab" * 16}, items)


def message_of(path: str) -> str:
    envelope = Envelope.parse_file(path)
    return str(envelope.items[0].get_json()["contexts"]["feedback"]["message"])


def stored_free(cache: EnvelopeCache, *data: bytes | Envelope) -> list[CachedEnvelope]:
    """Store each of ``data`` and release it: free files, oldest first."""
    files = [cache.store(d) for d in data]
    for cached in files:
        cache.release(cached)
    return files


# -- writing ----------------------------------------------------------------------------------------


def test_the_directory_is_made_and_kept_absolute(
    tmp_path: Path, recorder: ClientReportRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cache = EnvelopeCache("a/b", 5, recorder)
    try:
        assert cache.directory == str(tmp_path / "a" / "b")
        assert cache.max_items == 5
        assert (tmp_path / "a" / "b").is_dir()
        monkeypatch.chdir(tmp_path / "a")
        cached = cache.store(b"x")  # relative to where the cache was made, not to the cwd
        assert os.path.dirname(cached.path) == str(tmp_path / "a" / "b")
    finally:
        cache.close()


def test_keys_are_unique_and_sort_in_creation_order(cache: EnvelopeCache) -> None:
    keys = [cache.new_key() for _ in range(50)]
    assert len(set(keys)) == 50
    assert sorted(keys) == keys
    for counter, key in enumerate(keys, start=1):
        assert re.fullmatch(rf"[0-9]{{20}}-{PID}-{counter}-[0-9a-f]{{8}}", key), key


def test_store_writes_a_file_claimed_by_this_process(cache: EnvelopeCache) -> None:
    cached = cache.store(b"payload bytes")
    name = os.path.basename(cached.free_path)
    assert re.fullmatch(rf"[0-9]{{20}}-{PID}-1-[0-9a-f]{{8}}\.envelope", name)
    assert os.path.dirname(cached.free_path) == cache.directory
    assert cached.path == f"{cached.free_path}.{PID}.sending"
    assert names(cache.directory) == [os.path.basename(cached.path)]  # no temporary file left
    assert Path(cached.path).read_bytes() == b"payload bytes"
    assert cache.free_count() == 0  # claimed: no other process takes it
    assert cache.claim_next() is None


def test_store_under_a_key(cache: EnvelopeCache) -> None:
    cached = cache.store(b"k", key="0001-key")
    assert cached.free_path == os.path.join(cache.directory, "0001-key.envelope")
    assert cache.exists("0001-key")


def test_an_envelope_is_written_whole_block_by_block(cache: EnvelopeCache) -> None:
    big = os.urandom(200_000)  # more than one block
    envelope = feedback_envelope("big", big, b"small")
    cached = cache.store(envelope)
    assert Path(cached.path).read_bytes() == envelope.serialize()
    parsed = Envelope.parse_file(cached.path)
    assert [item.type for item in parsed.items] == ["feedback", "attachment", "attachment"]
    assert parsed.items[1].payload == big


def test_release_frees_and_claim_takes_back(cache: EnvelopeCache) -> None:
    cached = cache.store(b"x")
    cache.release(cached)
    assert names(cache.directory) == [os.path.basename(cached.free_path)]
    assert cache.free_count() == 1
    claimed = cache.claim(cached.free_path)
    assert claimed == CachedEnvelope(cached.path, cached.free_path)
    assert names(cache.directory) == [os.path.basename(cached.path)]
    assert cache.claim(cached.free_path) is None  # taken already
    cache.remove(claimed)
    assert names(cache.directory) == []
    cache.remove(claimed)  # gone already: fine
    cache.release(claimed)  # nothing to release: logged, not raised
    assert cache.claim(cached.free_path) is None


def test_rewrite_replaces_the_content(cache: EnvelopeCache) -> None:
    cached = cache.store(b"old")
    assert cache.rewrite(cached, feedback_envelope("new")) is cached
    assert message_of(cached.path) == "new"
    assert names(cache.directory) == [os.path.basename(cached.path)]


def test_a_failed_write_leaves_nothing_behind(cache: EnvelopeCache, tmp_path: Path) -> None:
    missing = Attachment(path=str(tmp_path / "missing.log"))
    envelope = Envelope({}, [EnvelopeItem.from_attachment(missing)])
    with pytest.raises(PayloadReadError):
        cache.store(envelope)
    assert names(cache.directory) == []
    old = cache.store(b"old")
    with pytest.raises(PayloadReadError):
        cache.rewrite(old, envelope)
    assert names(cache.directory) == [os.path.basename(old.path)]  # the old content stays whole
    assert Path(old.path).read_bytes() == b"old"


def test_store_raises_when_the_directory_is_gone(cache: EnvelopeCache) -> None:
    os.rmdir(cache.directory)
    with pytest.raises(OSError):
        cache.store(b"x")
    assert cache.free_count() == 0
    assert cache.claim_next() is None
    assert cache.recover_stale_claims() == 0
    assert not cache.exists("anything")


def test_a_file_written_without_sync_is_complete(cache: EnvelopeCache, caplog: pytest.LogCaptureFixture) -> None:
    cached = cache.store(b"later", sync=False, make_room=False)
    assert Path(cached.path).read_bytes() == b"later"
    cache.sync(cached)
    assert Path(cached.path).read_bytes() == b"later"
    gone = cached.path + ".gone"
    with caplog.at_level(logging.DEBUG, logger="sentry_feedback"):
        cache.sync(CachedEnvelope(gone, cached.free_path))  # logged, not raised
    [record] = caplog.records
    assert record.getMessage() == f"could not sync {gone}"
    assert record.exc_info is not None and isinstance(record.exc_info[1], FileNotFoundError)


def fsynced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What ``os.fsync`` is called on from now on: file names (a directory as ``<dir>``)."""
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(
            "<dir>" if stat.S_ISDIR(os.fstat(fd).st_mode) else os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        )
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return synced


@pytest.mark.skipif(not os.path.exists("/proc/self/fd"), reason="needs /proc/self/fd")
def test_writes_reach_the_disk_before_they_count(cache: EnvelopeCache, monkeypatch: pytest.MonkeyPatch) -> None:
    synced = fsynced(monkeypatch)
    cached = cache.store(b"durable")
    tmp = f".{os.path.basename(cached.free_path)}.{PID}.tmp"
    assert synced == [tmp, "<dir>"]  # the content, then the rename
    synced.clear()
    cache.rewrite(cached, b"replaced")
    assert synced == [tmp, "<dir>"]
    synced.clear()
    later = cache.store(b"later", sync=False)
    assert synced == []
    cache.sync(later)
    assert synced == [os.path.basename(later.path), "<dir>"]


# -- the cap ----------------------------------------------------------------------------------------


def test_a_full_cache_evicts_the_oldest_free_files_and_counts_their_items(
    tmp_path: Path, recorder: ClientReportRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    cache = EnvelopeCache(str(tmp_path), 3, recorder)
    claimed = cache.store(feedback_envelope("claimed"))  # oldest, but another process may be sending it
    stored_free(cache, feedback_envelope("first", b"0123456789", report=True), feedback_envelope("second", b"abc"))
    assert recorder.totals() == {}
    with caplog.at_level(logging.WARNING, logger="sentry_feedback"):
        newest = cache.store(feedback_envelope("newest"))
    # The cap counts every file: the claimed one stays, the oldest free one goes.
    assert cache.free_count() == 1
    assert recorder.totals() == {("cache_overflow", "feedback"): 1, ("cache_overflow", "attachment"): 10}
    assert "offline cache is full (3 files); dropped the oldest envelope" in caplog.messages
    kept = [message_of(os.path.join(tmp_path, n)) for n in names(tmp_path) if n.endswith(".envelope")]
    assert kept == ["second"]
    assert os.path.exists(claimed.path) and os.path.exists(newest.path)

    cache.make_room(incoming=3)  # room for three more: every free file goes, claimed ones stay
    assert cache.free_count() == 0
    assert recorder.totals() == {
        ("cache_overflow", "feedback"): 2,
        ("cache_overflow", "attachment"): 13,
    }
    assert len(names(tmp_path)) == 2
    cache.close()


def test_eviction_stops_once_there_is_room(tmp_path: Path, recorder: ClientReportRecorder) -> None:
    cache = EnvelopeCache(str(tmp_path), 4, recorder)
    stored_free(cache, *(feedback_envelope(f"n{i}") for i in range(4)))
    cache.make_room()  # one more must fit: one goes
    assert [message_of(str(tmp_path / n)) for n in names(tmp_path)] == ["n1", "n2", "n3"]
    cache.make_room()  # fits already
    cache.make_room(incoming=0)
    assert cache.free_count() == 3
    assert recorder.totals() == {("cache_overflow", "feedback"): 1}
    cache.close()


def test_store_without_make_room_may_go_over_the_cap_until_sync(tmp_path: Path, recorder: ClientReportRecorder) -> None:
    cache = EnvelopeCache(str(tmp_path), 2, recorder)
    stored_free(cache, feedback_envelope("a"), feedback_envelope("b"))
    cached = cache.store(feedback_envelope("c"), make_room=False, sync=False)
    assert len(names(tmp_path)) == 3
    cache.sync(cached)  # the file counts now: the oldest goes
    assert [message_of(str(tmp_path / n)) for n in names(tmp_path) if n.endswith(".envelope")] == ["b"]
    assert recorder.totals() == {("cache_overflow", "feedback"): 1}
    cache.close()


def test_an_unreadable_file_evicted_counts_once_as_default(tmp_path: Path, recorder: ClientReportRecorder) -> None:
    cache = EnvelopeCache(str(tmp_path), 1, recorder)
    (tmp_path / "00000000000000000001-1-1-aaaaaaaa.envelope").write_bytes(b"not an envelope\n{")
    cache.store(b"x")
    assert recorder.totals() == {("cache_overflow", "default"): 1}
    assert len(names(tmp_path)) == 1
    cache.close()


def test_eviction_skips_a_file_claimed_meanwhile(
    tmp_path: Path, recorder: ClientReportRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = EnvelopeCache(str(tmp_path), 1, recorder)
    [first] = stored_free(cache, feedback_envelope("first"))
    real_parse = Envelope.parse_file.__func__  # type: ignore[attr-defined]

    def claimed_by_another(cls: type[Envelope], path: str, **kwargs: object) -> Envelope:
        os.rename(path, f"{path}.{DEAD_PID - 1}.sending")  # another process wins the race
        return real_parse(cls, path, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(Envelope, "parse_file", classmethod(claimed_by_another))
    cache.make_room()
    monkeypatch.undo()
    assert recorder.totals() == {}  # not evicted: nothing counted
    assert names(tmp_path) == [f"{os.path.basename(first.free_path)}.{DEAD_PID - 1}.sending"]
    cache.close()


# -- claiming and reading ---------------------------------------------------------------------------


def test_claim_next_takes_the_oldest_free_file(cache: EnvelopeCache) -> None:
    stored_free(cache, *(feedback_envelope(f"n{i}") for i in range(3)))
    Path(cache.directory, "corrupt").mkdir()
    Path(cache.directory, ".00000000000000000000-1-1-x.envelope.1.tmp").write_bytes(b"half")
    Path(cache.directory, "00000000000000000000-1-1-x.other").write_bytes(b"not ours")
    order = []
    while (claimed := cache.claim_next()) is not None:
        assert claimed.path == f"{claimed.free_path}.{PID}.sending"
        envelope = cache.read(claimed)
        assert envelope is not None
        order.append(envelope.items[0].get_json()["contexts"]["feedback"]["message"])
    assert order == ["n0", "n1", "n2"]
    assert cache.free_count() == 0


def test_claim_next_skips_a_file_another_process_claims_first(
    cache: EnvelopeCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = stored_free(cache, b"1", b"2")
    real_claim = cache.claim

    def raced(free_path: str) -> CachedEnvelope | None:
        if free_path == first.free_path:
            os.rename(free_path, f"{free_path}.{DEAD_PID - 1}.sending")
        return real_claim(free_path)

    monkeypatch.setattr(cache, "claim", raced)
    claimed = cache.claim_next()
    assert claimed is not None and claimed.free_path == second.free_path


def test_an_unreadable_file_is_moved_aside_and_counted(
    cache: EnvelopeCache, recorder: ClientReportRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    [bad] = stored_free(cache, b"this is not an envelope\n{")
    claimed = cache.claim_next()
    assert claimed is not None
    with caplog.at_level(logging.ERROR, logger="sentry_feedback"):
        assert cache.read(claimed) is None
    name = os.path.basename(bad.free_path)
    assert names(cache.directory) == ["corrupt"]
    assert names(os.path.join(cache.directory, "corrupt")) == [name]  # its free name, for inspection
    assert Path(cache.directory, "corrupt", name).read_bytes() == b"this is not an envelope\n{"
    assert recorder.totals() == {("internal_sdk_error", "default"): 1}
    [message] = caplog.messages
    assert message.startswith(f"cached envelope {os.path.basename(claimed.path)} is unreadable (")
    assert message.endswith("); moved aside")


def test_an_unreadable_file_that_cannot_be_moved_is_removed(
    cache: EnvelopeCache, recorder: ClientReportRecorder
) -> None:
    Path(cache.directory, "corrupt").write_bytes(b"a file where the folder should be")
    stored_free(cache, b"garbage\n{")
    claimed = cache.claim_next()
    assert claimed is not None
    assert cache.read(claimed) is None
    assert names(cache.directory) == ["corrupt"]
    assert recorder.totals() == {("internal_sdk_error", "default"): 1}


def test_read_gives_the_envelope(cache: EnvelopeCache) -> None:
    claimed = cache.store(feedback_envelope("hello", b"data"))
    envelope = cache.read(claimed)
    assert envelope is not None
    assert [item.type for item in envelope.items] == ["feedback", "attachment"]
    assert envelope.items[1].payload == b"data"


# -- leftovers of other processes -------------------------------------------------------------------


def test_exists_sees_the_file_free_or_claimed_by_any_process(cache: EnvelopeCache) -> None:
    d = cache.directory
    assert not cache.exists("k1")
    Path(d, "k1.envelope").write_bytes(b"")
    assert cache.exists("k1")
    os.rename(os.path.join(d, "k1.envelope"), os.path.join(d, f"k1.envelope.{DEAD_PID}.sending"))
    assert cache.exists("k1")
    assert not cache.exists("k")  # another key's file
    Path(d, ".k2.envelope.1.tmp").write_bytes(b"")  # half written: not there yet
    Path(d, "k2.envelope.tmp").write_bytes(b"")
    Path(d, "k3.envelope.1.sending.x").write_bytes(b"")
    assert not cache.exists("k2")
    assert not cache.exists("k3")
    Path(d, "k4.envelopes.1.sending").write_bytes(b"")
    assert not cache.exists("k4")


def test_stale_claims_of_dead_processes_are_freed(cache: EnvelopeCache, live_pid: int) -> None:
    d = Path(cache.directory)
    for name in (
        "00-z.envelope",  # free already
        f"01-a.envelope.{DEAD_PID}.sending",  # dead: freed
        f"02-b.envelope.{live_pid}.sending",  # alive: its process sends it
        f"03-c.envelope.{PID}.sending",  # ours
        "04-d.envelope.x1.sending",  # not a pid
        f"05-e.envelope.{DEAD_PID - 1}.sending",  # dead, but its journal is there: recovery first
        f"06-f.envelope.{DEAD_PID - 2}.sending",  # dead, and named by a journal being recovered
        f"07-g.envelope.{DEAD_PID - 3}.sending",  # dead: freed
    ):
        (d / name).write_bytes(b"")
    (d / f"{DEAD_PID - 1}-0badf00d.journal").write_bytes(b"")
    (d / f"{DEAD_PID - 4}-0badf00d.journal.recovering.{DEAD_PID - 2}").write_bytes(b"")
    assert cache.recover_stale_claims() == 2
    assert sorted(n for n in names(d) if ".envelope" in n) == [
        "00-z.envelope",
        "01-a.envelope",
        f"02-b.envelope.{live_pid}.sending",
        f"03-c.envelope.{PID}.sending",
        "04-d.envelope.x1.sending",
        f"05-e.envelope.{DEAD_PID - 1}.sending",
        f"06-f.envelope.{DEAD_PID - 2}.sending",
        "07-g.envelope",
    ]
    assert cache.recover_stale_claims() == 0


def test_half_written_files_of_dead_processes_are_removed(cache: EnvelopeCache, live_pid: int) -> None:
    d = Path(cache.directory)
    kept = [f".01-a.envelope.{live_pid}.tmp", f".02-b.envelope.{PID}.tmp", ".03-c.envelope.x.tmp", ".04-d.tmp"]
    kept += [f"05-e.envelope.{DEAD_PID}.tmp"]  # not a temporary file of the cache (no dot)
    for name in [*kept, f".06-f.envelope.{DEAD_PID}.tmp"]:
        (d / name).write_bytes(b"half")
    assert cache.recover_stale_claims() == 0  # not claims: not counted
    assert names(d) == sorted(kept)
    assert cache.free_count() == 0


def test_leftovers_another_process_cleaned_up_first_are_skipped(
    cache: EnvelopeCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_listdir = os.listdir
    gone = [f".01-a.envelope.{DEAD_PID}.tmp", f"02-b.envelope.{DEAD_PID}.sending"]  # listed, then gone
    Path(cache.directory, f"03-c.envelope.{DEAD_PID}.sending").write_bytes(b"")
    monkeypatch.setattr(os, "listdir", lambda d: [*real_listdir(d), *gone])
    assert cache.recover_stale_claims() == 1
    monkeypatch.undo()
    assert names(cache.directory) == ["03-c.envelope"]


def test_recovered_envelopes_evict_nothing(tmp_path: Path, recorder: ClientReportRecorder) -> None:
    cache = EnvelopeCache(str(tmp_path), 2, recorder)
    stored_free(cache, feedback_envelope("a"), feedback_envelope("b"))
    (tmp_path / f"{DEAD_PID}-0badf00d.journal").write_bytes(encode_record(PUT, "k1", b"recovered"))
    assert cache.recover_journals() == 1
    assert cache.free_count() == 3  # over the cap until the next store makes room: nothing lost here
    assert recorder.totals() == {}
    cache.close()


def test_recover_journals_stores_the_envelopes_of_a_dead_process(
    cache: EnvelopeCache, caplog: pytest.LogCaptureFixture
) -> None:
    d = Path(cache.directory)
    data = {key: feedback_envelope(key).serialize() for key in ("k1", "k2", "k3", "k4")}
    content = b"".join(encode_record(PUT, key, value) for key, value in data.items())
    content += encode_record(DONE, "k4")
    (d / f"{DEAD_PID}-0badf00d.journal").write_bytes(content)
    (d / "k2.envelope").write_bytes(b"written before the crash")  # step 2 was done: not again
    with caplog.at_level(logging.INFO, logger="sentry_feedback"):
        assert cache.recover_journals() == 2
    assert "recovered 2 envelope(s) from the journal of a process that ended" in caplog.messages
    # Free (released once all were stored), for any process to send.
    assert names(d) == ["k1.envelope", "k2.envelope", "k3.envelope"]
    assert (d / "k1.envelope").read_bytes() == data["k1"]
    assert (d / "k2.envelope").read_bytes() == b"written before the crash"
    assert (d / "k3.envelope").read_bytes() == data["k3"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sentry_feedback"):
        assert cache.recover_journals() == 0
    assert caplog.messages == []


def test_recovered_files_are_released_even_when_a_store_fails(
    cache: EnvelopeCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = Path(cache.directory)
    content = encode_record(PUT, "k1", b"one") + encode_record(PUT, "k2", b"two")
    (d / f"{DEAD_PID}-0badf00d.journal").write_bytes(content)
    real_store = cache.store

    def full_after_one(data: bytes, **kwargs: object) -> CachedEnvelope:
        if kwargs.get("key") == "k2":
            raise OSError(28, "No space left on device")
        return real_store(data, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cache, "store", full_after_one)
    assert cache.recover_journals() == 0  # the journal stays for a later recovery
    assert "k1.envelope" in names(d)  # stored and freed
    monkeypatch.undo()
    assert cache.recover_journals() == 1  # k1 exists: only k2
    assert sorted(n for n in names(d) if n.endswith(".envelope")) == ["k1.envelope", "k2.envelope"]
    assert (d / "k2.envelope").read_bytes() == b"two"
    assert [n for n in names(d) if ".journal" in n] == []


# -- the journal ------------------------------------------------------------------------------------


def test_journal_put_and_done(cache: EnvelopeCache) -> None:
    assert JOURNAL_TRUNCATE_ABOVE == 1024 * 1024
    key = cache.journal_put(b"envelope bytes")
    assert re.fullmatch(rf"[0-9]{{20}}-{PID}-1-[0-9a-f]{{8}}", key)
    [journal] = [n for n in names(cache.directory) if n.endswith(".journal")]
    path = os.path.join(cache.directory, journal)
    assert parse_records(Path(path).read_bytes())[0] == [(PUT, key, b"envelope bytes")]
    cache.journal_done(key)
    # A small journal gets a done record rather than a truncation.
    assert parse_records(Path(path).read_bytes())[0] == [(PUT, key, b"envelope bytes"), (DONE, key, b"")]
    cache.close()
    assert names(cache.directory) == []  # nothing outstanding: the journal goes


def test_close_keeps_a_journal_with_outstanding_puts(tmp_path: Path, recorder: ClientReportRecorder) -> None:
    first = EnvelopeCache(str(tmp_path), 10, recorder)
    key = first.journal_put(b"not yet written")
    first.close()
    [journal] = names(tmp_path)
    assert journal.startswith(f"{PID}-") and journal.endswith(".journal")
    assert parse_records((tmp_path / journal).read_bytes())[0] == [(PUT, key, b"not yet written")]
