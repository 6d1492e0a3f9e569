"""Property-based fuzzing of the capture API against the local receiver.

Each example starts a fresh client (its own project id on one shared receiver), fills the
scopes with arbitrary data, installs hooks that behave in random ways, and makes a random
series of capture calls with random arguments and attachments. For every example:

- no exception reaches the caller from ``capture_*``; ``send_feedback`` raises only
  ``FeedbackError``s, and only for its documented reasons;
- no call blocks past its timeout;
- the worker thread is alive afterwards;
- for every data category, **delivered + counted == captured**: what the receiver
  stored plus what the client reports it received, against what the calls handed over
  (attachments by bytes). The client's own counts equal what reached the receiver.

``HYPOTHESIS_PROFILE=long`` runs many more examples; the default profile is fixed-seed
and bounded so that it stays fast in CI.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import stat
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sentry_feedback as sf
from sentry_feedback import Attachment
from sentry_feedback.server import LocalReceiver
from sentry_feedback.testing import reset

settings.register_profile(
    "ci",
    max_examples=120,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=3000,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")

#: The limit the fuzzed clients use, small so that "too large" happens often.
MAX_ATTACHMENT = 2048
#: Slack allowed past a call's timeout (scheduling on a loaded machine), not a speed goal.
SLACK = 5.0
FLUSH_TIMEOUT = 15.0
LEVELS = ["fatal", "error", "warning", "info", "debug"]

# -- the world the examples share ----------------------------------------------------------------


class Files:
    """Paths of every kind an attachment can point at, made once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.missing = str(root / "missing.log")
        self.directory = str(root)
        self.device = os.devnull
        self.fifo: str | None = None
        if hasattr(os, "mkfifo"):
            self.fifo = str(root / "pipe")
            os.mkfifo(self.fifo)
        self._counter = itertools.count()

    def regular(self, data: bytes) -> str:
        path = self.root / f"file-{next(self._counter)}.log"
        path.write_bytes(data)
        return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    return Files(tmp_path_factory.mktemp("fuzz-files"))


# -- strategies ----------------------------------------------------------------------------------


class RaisingRepr:
    """A value whose ``repr`` raises (``SystemExit`` included) while an example runs.

    Outside an example (when Hypothesis or pytest report a failure) it has a plain repr.
    """

    armed = False

    def __init__(self, exc_type: type[BaseException]) -> None:
        self.exc_type = exc_type

    def __repr__(self) -> str:
        if RaisingRepr.armed:
            raise self.exc_type("no repr")
        return f"RaisingRepr({self.exc_type.__name__})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(f"RaisingRepr({self.exc_type.__name__})")


class Opaque:
    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value


def _cyclic() -> list[Any]:
    loop: list[Any] = [1]
    loop.append(loop)
    return loop


leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.binary(max_size=40),
    st.builds(RaisingRepr, st.sampled_from([ValueError, SystemExit])),
    st.builds(Opaque, st.text(max_size=10)),
    st.builds(_cyclic),
)
nested = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.tuples(children, children),
        st.frozensets(st.integers() | st.text(max_size=5), max_size=4),
        st.dictionaries(st.text(max_size=10) | st.integers(), children, max_size=5),
    ),
    max_leaves=20,
)
#: What Sentry accepts as tag keys and values (see the notes in docs/reliability.md).
tag_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.:-", min_size=1, max_size=20)
tag_values = st.text(alphabet=st.characters(categories=["L", "N", "P", "S"]), min_size=1, max_size=50)
safe_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=60)


@st.composite
def attachment_entries(draw: st.DrawFn, files: Files) -> object:
    kind = draw(
        st.sampled_from(
            ["bytes", "file", "missing", "directory", "device", "fifo", "raw-bytes", "str", "path", "int", "none"]
        )
    )
    if kind == "bytes":
        return Attachment(draw(st.binary(max_size=3 * MAX_ATTACHMENT)), filename=draw(tag_keys) + ".bin")
    if kind == "file":
        return Attachment(path=files.regular(draw(st.binary(max_size=3 * MAX_ATTACHMENT))))
    if kind == "missing":
        return Attachment(path=files.missing)
    if kind == "directory":
        return Attachment(path=files.directory)
    if kind == "device":
        return Attachment(path=files.device)
    if kind == "fifo":
        return Attachment(path=files.fifo) if files.fifo is not None else Attachment(path=files.missing)
    if kind == "raw-bytes":
        return draw(st.binary(max_size=100))
    if kind == "str":
        return files.regular(b"some text")
    if kind == "path":
        return Path(files.regular(b"a path"))
    if kind == "int":
        return draw(st.integers())
    return None


def attachments_argument(files: Files) -> st.SearchStrategy[object]:
    entries = attachment_entries(files)
    return st.one_of(st.none(), st.lists(entries, max_size=4), entries)


def event_ids() -> st.SearchStrategy[object]:
    return st.one_of(
        st.none(), st.uuids().map(lambda u: u.hex), st.uuids().map(str), st.text(max_size=10), st.integers()
    )


@st.composite
def feedback_call(draw: st.DrawFn, files: Files) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for name in ("email", "name", "url", "source"):
        if draw(st.booleans()):
            kwargs[name] = draw(st.one_of(st.none(), safe_text, st.integers()))
    if draw(st.booleans()):
        kwargs["associated_event_id"] = draw(event_ids())
    if draw(st.booleans()):
        kwargs["tags"] = draw(st.one_of(st.dictionaries(tag_keys, tag_values, max_size=3), st.integers()))
    attachments = draw(attachments_argument(files))
    if attachments is not None:
        kwargs["attachments"] = attachments
    hint = draw(st.one_of(st.none(), st.just(5), st.builds(dict), attachments_argument(files).map(_hint)))
    if hint is not None:
        kwargs["hint"] = hint
    message = draw(
        st.one_of(
            safe_text,
            st.just("   "),
            st.text(min_size=4097, max_size=4100),
            st.integers(),
            st.none(),
        )
    )
    blocking = draw(st.booleans())
    call: dict[str, Any] = {"kind": "send" if blocking else "feedback", "message": message, "kwargs": kwargs}
    if blocking:
        call["timeout"] = draw(st.one_of(st.just(10.0), st.sampled_from([math.inf, -1, "5", math.nan])))
    return call


def _hint(attachments: object) -> dict[str, Any]:
    return {"attachments": attachments}


@st.composite
def event_call(draw: st.DrawFn, files: Files) -> dict[str, Any]:
    kind = draw(st.sampled_from(["message", "event", "exception"]))
    hint = draw(st.one_of(st.none(), attachments_argument(files).map(_hint), st.just([1])))
    if kind == "message":
        return {
            "kind": kind,
            "message": draw(st.one_of(safe_text, nested)),
            "level": draw(st.one_of(st.none(), st.sampled_from(LEVELS), st.just("loud"), st.integers())),
            "hint": hint,
        }
    if kind == "event":
        event = draw(
            st.one_of(
                st.fixed_dictionaries(
                    {"message": safe_text},
                    optional={
                        "extra": st.dictionaries(st.text(max_size=8), nested, max_size=3),
                        "level": st.sampled_from(LEVELS),
                    },
                ),
                st.none(),
                st.lists(st.integers(), max_size=2),
                st.integers(),
                safe_text,
            )
        )
        return {"kind": kind, "event": event, "hint": hint}
    error = draw(st.one_of(st.builds(ValueError, safe_text), st.builds(KeyError, nested), st.just("not an error")))
    return {"kind": kind, "error": error, "local": draw(nested), "hint": hint}


@st.composite
def scope_data(draw: st.DrawFn) -> list[tuple[str, Any]]:
    ops: list[tuple[str, Any]] = []
    ops += [("tag", kv) for kv in draw(st.dictionaries(tag_keys, tag_values, max_size=3)).items()]
    ops += [("extra", kv) for kv in draw(st.dictionaries(st.text(max_size=10), nested, max_size=3)).items()]
    if draw(st.booleans()):
        ops.append(("context", draw(st.dictionaries(st.text(max_size=10), nested, max_size=3))))
    if draw(st.booleans()):
        ops.append(("user", {"id": draw(tag_values), "data": draw(st.dictionaries(st.text(max_size=10), nested))}))
    for _ in range(draw(st.integers(0, 3))):
        data = draw(st.dictionaries(st.text(max_size=10), nested, max_size=3))
        ops.append(("breadcrumb", {"message": draw(safe_text), "category": draw(tag_keys), "data": data}))
    # Wrong types: logged and ignored.
    ops += [("wrong", value) for value in draw(st.lists(nested, max_size=2))]
    return ops


hook_behaviours = st.sampled_from(["same", "copy", "none", "wrong-type", "raise", "absent"])


def make_hook(behaviour: str) -> Any:
    if behaviour == "absent":
        return None

    def hook(event: dict[str, Any], hint: dict[str, Any]) -> Any:
        if behaviour == "same":
            return event
        if behaviour == "copy":
            return dict(event)
        if behaviour == "none":
            return None
        if behaviour == "wrong-type":
            return ["not", "an", "event"]
        raise RuntimeError("hook failed")

    return hook


# -- what a call hands over ----------------------------------------------------------------------


def entry_bytes(entry: object) -> int:
    """The bytes an attachment entry counts for, delivered or dropped (1 when unknown)."""
    if isinstance(entry, Attachment):
        if entry.path is None:
            return len(entry.read())
        try:
            info = os.stat(entry.path)
        except OSError:
            return 1
        return info.st_size if stat.S_ISREG(info.st_mode) else 1
    if isinstance(entry, (bytes, bytearray)):
        return len(entry)
    return 1


def entries(value: object) -> list[object]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def handed_over(call: dict[str, Any]) -> Counter[str]:
    captured: Counter[str] = Counter()
    kind = call["kind"]
    hint = call.get("hint") if kind not in ("feedback", "send") else call["kwargs"].get("hint")
    attachments = list(entries(hint.get("attachments"))) if isinstance(hint, dict) else []
    if kind in ("feedback", "send"):
        captured["feedback"] += 1
        attachments += entries(call["kwargs"].get("attachments"))
    elif kind == "exception" and not isinstance(call["error"], BaseException):
        captured["error"] += 1  # counted invalid: the hint's attachments with it
    else:
        captured["error"] += 1
    captured["attachment"] += sum(entry_bytes(entry) for entry in attachments)
    return captured


def raise_and_capture(error: BaseException, local: object, hint: Any) -> Any:
    odd_local = local  # noqa: F841 - a local variable the stack trace serializes
    try:
        raise error
    except BaseException as caught:
        return sf.capture_exception(caught, hint=hint)


def run_call(call: dict[str, Any]) -> None:
    """Make the call; only ``send_feedback`` may raise, and only ``FeedbackError``."""
    kind = call["kind"]
    if kind == "feedback":
        sf.capture_feedback(call["message"], **call["kwargs"])
    elif kind == "send":
        timeout = call["timeout"]
        started = time.monotonic()
        with contextlib.suppress(sf.FeedbackError):
            sf.send_feedback(call["message"], timeout=timeout, **call["kwargs"])
        if isinstance(timeout, float) and math.isfinite(timeout) and timeout >= 0:
            assert time.monotonic() - started <= timeout + SLACK
    elif kind == "message":
        sf.capture_message(call["message"], call["level"], hint=call["hint"])
    elif kind == "event":
        sf.capture_event(call["event"], hint=call["hint"])
    else:
        if isinstance(call["error"], BaseException):
            raise_and_capture(call["error"], call["local"], call["hint"])
        else:
            sf.capture_exception(call["error"], hint=call["hint"])


def delivered(store: Any, project: str) -> Counter[str]:
    found: Counter[str] = Counter()
    for envelope in store.list_envelopes(project):
        for item_type in envelope.item_types:
            if item_type == "feedback":
                found["feedback"] += 1
            elif item_type == "event":
                found["error"] += 1
        if envelope.event_id is not None:
            found["attachment"] += sum(a.size for a in store.list_attachments(envelope.event_id))
    return found


# -- the property --------------------------------------------------------------------------------


@dataclass
class Program:
    """One example: scope data, how each hook behaves, and the capture calls."""

    scope: list[tuple[str, Any]]
    before_send_feedback: str
    before_send: str
    processor: str
    calls: list[dict[str, Any]]


def programs(files: Files) -> st.SearchStrategy[Program]:
    return st.builds(
        Program,
        scope=scope_data(),
        before_send_feedback=hook_behaviours,
        before_send=hook_behaviours,
        processor=hook_behaviours,
        calls=st.lists(st.one_of(feedback_call(files), event_call(files)), min_size=1, max_size=6),
    )


def run_program(receiver: LocalReceiver, program: Program) -> None:
    """Run one example against ``receiver`` and check the invariants."""
    reset()
    project = receiver.project_id
    client = sf.init(
        receiver.dsn,
        before_send_feedback=make_hook(program.before_send_feedback),
        before_send=make_hook(program.before_send),
        max_attachment_size=MAX_ATTACHMENT,
        retry=sf.RetryPolicy(max_attempts=1),
        default_integrations=False,
    )
    for op, value in program.scope:
        if op == "tag":
            sf.set_tag(*value)
        elif op == "extra":
            sf.set_extra(*value)
        elif op == "context":
            sf.set_context("shop", value)
        elif op == "user":
            sf.set_user(value)
        elif op == "breadcrumb":
            sf.add_breadcrumb(**value)
        elif isinstance(value, dict):
            sf.set_extras(value)
        else:  # wrong types: logged and ignored
            sf.set_user(value)
            sf.set_tags(value)
            sf.set_context("shop", value)
    hook = make_hook(program.processor)
    if hook is not None:
        sf.add_event_processor(hook)

    captured: Counter[str] = Counter()
    for call in program.calls:
        captured += handed_over(call)
        run_call(call)

    started = time.monotonic()
    assert sf.flush(FLUSH_TIMEOUT)
    assert time.monotonic() - started <= FLUSH_TIMEOUT + SLACK
    worker = client._dispatcher._worker  # type: ignore[union-attr]
    assert worker._thread is None or worker._thread.is_alive()
    counted_here = client.client_reports.totals()
    assert client.close(FLUSH_TIMEOUT)

    counted: Counter[str] = Counter()
    for (_, category), quantity in receiver.store.client_report_totals(project).items():
        counted[category] += quantity
    assert receiver.store.client_report_totals(project) == counted_here
    got = delivered(receiver.store, project)
    for category in ("feedback", "error", "attachment"):
        assert got[category] + counted[category] == captured[category], (category, got, counted_here, captured)


@pytest.mark.timeout(6 * 3600 if PROFILE == "long" else 300)
def test_capture_api_never_raises_never_hangs_and_loses_nothing(
    files: Files, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = settings.get_profile(PROFILE)
    examples = 0
    started = time.monotonic()

    @settings(profile)
    @given(program=programs(files))
    def example(program: Program) -> None:
        nonlocal examples
        examples += 1
        RaisingRepr.armed = True
        try:
            with LocalReceiver() as receiver:  # its own receiver: what it stores is this example's
                run_program(receiver, program)
        finally:
            RaisingRepr.armed = False

    example()
    assert examples >= profile.max_examples  # every example ran (none were filtered out)
    with capsys.disabled():
        print(f"\nfuzz: {examples} examples in {time.monotonic() - started:.1f} s (profile {PROFILE!r})")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX paths")
def test_the_fuzz_profile_is_bounded_in_ci() -> None:
    profile = settings.get_profile("ci")
    assert profile.derandomize and profile.max_examples <= 200 and profile.database is None
