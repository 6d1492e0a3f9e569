"""REST API latency over a large store: the default listing, a filtered query, a deep page, cursor paging.

Run: ``python benchmarks/bench_api.py [--count 100000] [--requests 200] [--explain]``.

1. *Insert*: ``--count`` feedbacks (100,000 by default) are written straight into a
   :class:`~sentry_feedback.server.FeedbackStore` file in a temporary folder, in one
   transaction, as the rows ``store_envelope`` writes for envelopes an SDK would send:
   varied environments, releases, browsers, users and tags, a third resolved, about one in
   eight messages about paying, timestamps spread over the last 30 days, some linked to
   an error, some with an attachment.
2. *Requests*: a :class:`~sentry_feedback.server.LocalReceiver` serves that database on
   127.0.0.1, and one keep-alive HTTP connection times, after a warm-up, ``--requests``
   requests of each kind: the default listing, a filtered query, a deep page
   (``offset``) and the pages reached by following ``next`` cursors from the first page.
   Latencies are client-side (request sent to answer read), in milliseconds.

With ``--explain`` each SELECT one request of each kind ran is printed with its own time
and SQLite's ``EXPLAIN QUERY PLAN``, its values bound as the server binds them (literal
values can change the plan). Figures are printed, never asserted; the aim for the default
listing is a p99 under 20 ms.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import urllib3

from sentry_feedback._envelope import Envelope, EnvelopeItem
from sentry_feedback.server import FeedbackStore, LocalReceiver
from sentry_feedback.server._rows import dumps, prepare

AIM_P99_MS = 20.0
DAY = 86400.0
PROJECT_ID = "1"
BATCH = 5000
LISTING = "/api/0/organizations/local/user-feedback/"
FILTERED_QUERY = "status:unresolved environment:production message:*pay*"
CURSOR_PAGES = 20

ENVIRONMENTS = (("production", 60), ("staging", 25), ("development", 15))
MESSAGES = (
    ("The pay button does nothing after I enter my card", 6),
    ("Payment failed twice, then went through: was I charged twice?", 4),
    ("Apple Pay is missing on the checkout page", 3),
    ("Search is slow when I filter by date", 15),
    ("Dark mode, please", 12),
    ("The export to CSV drops the last column", 10),
    ("I cannot log in with my Google account", 12),
    ("The app crashed when I uploaded a photo", 10),
    ("Typo on the pricing page", 8),
    ("Notifications arrive twice", 10),
    ("Love the new dashboard!", 10),
)
PAGES = ("checkout", "cart", "search", "settings", "dashboard", "pricing", "login")
BROWSERS = (("Chrome", "126.0.6478"), ("Firefox", "127.0"), ("Safari", "17.5"), ("Edge", "126.0.2592"))
SYSTEMS = (("Windows", "11"), ("macOS", "14.5"), ("iOS", "17.5.1"), ("Android", "14"), ("Linux", None))
LOCALES = (
    ("en-US", "America/New_York"),
    ("de-DE", "Europe/Berlin"),
    ("fr-FR", "Europe/Paris"),
    ("ja-JP", "Asia/Tokyo"),
)
RELEASES = ("shop@2.3.0", "shop@2.3.1", "shop@2.4.0", "shop@2.4.1")
PLANS = ("free", "pro", "team")


def weighted(rng: random.Random, choices: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([value for value, _ in choices], weights=[weight for _, weight in choices])[0]


def hex_id(rng: random.Random, bits: int = 128) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def feedback_event(rng: random.Random, timestamp: float) -> tuple[dict[str, Any], float]:
    """A feedback event as a browser SDK sends it at ``timestamp``, and the time it was received."""
    user_id = rng.randrange(1, 20000)
    email = f"user{user_id}@example.com"
    page = rng.choice(PAGES)
    message = weighted(rng, MESSAGES)
    feedback: dict[str, Any] = {"message": message, "url": f"https://shop.example.com/{page}", "source": "widget"}
    if rng.random() < 0.6:
        feedback["contact_email"] = email
        feedback["name"] = f"User {user_id}"
    if rng.random() < 0.2:
        feedback["associated_event_id"] = hex_id(rng)
    browser, system, (lang, zone) = rng.choice(BROWSERS), rng.choice(SYSTEMS), rng.choice(LOCALES)
    tags: dict[str, str] = {"page": page, "plan": rng.choice(PLANS), "transaction": f"/{page}"}
    if rng.random() < 0.3:
        tags["feature_flag.new_checkout"] = rng.choice(("true", "false"))
    event = {
        "event_id": hex_id(rng),
        "type": "feedback",
        "level": "info",
        "platform": "javascript",
        "timestamp": timestamp,
        "environment": weighted(rng, ENVIRONMENTS),
        "release": rng.choice(RELEASES),
        "tags": tags,
        "user": {"id": str(user_id), "email": email, "ip_address": f"10.{user_id % 250}.{user_id % 199}.{user_id % 7}"},
        "contexts": {
            "feedback": feedback,
            "trace": {"trace_id": hex_id(rng), "span_id": hex_id(rng, 64), "type": "trace"},
            "browser": {"name": browser[0], "version": browser[1], "type": "browser"},
            "os": {"name": system[0], "version": system[1], "type": "os"},
            "culture": {"locale": lang, "timezone": zone, "type": "culture"},
        },
        "request": {"url": f"https://shop.example.com/{page}", "headers": {"User-Agent": "Mozilla/5.0"}},
        "sdk": {"name": "sentry.javascript.browser", "version": "8.13.0"},
    }
    return event, timestamp + rng.uniform(0.05, 2.0)


def envelope_rows(
    rng: random.Random, timestamp: float, envelope_id: int
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """The ``envelopes`` row, the ``feedback`` row and ``attachments`` rows ``store_envelope`` would write."""
    event, received_at = feedback_event(rng, timestamp)
    items = [EnvelopeItem.from_json("feedback", event)]
    if rng.random() < 0.05:
        log = b"12:00:01 INFO cart ok\n" * rng.randrange(5, 50)
        headers = {"type": "attachment", "filename": "console.log", "content_type": "text/plain"}
        items.append(EnvelopeItem(headers, log))
    envelope = Envelope({"event_id": event["event_id"], "sdk": event["sdk"]}, items)
    prepared = prepare(envelope, event["event_id"], PROJECT_ID, received_at)
    envelope_row = {
        "id": envelope_id,
        "project_id": PROJECT_ID,
        "event_id": event["event_id"],
        "received_at": received_at,
        "headers": dumps(envelope.headers),
        "size": sum(len(item.payload) for item in items) + 200,
        "item_types": dumps([item.type for item in items]),
    }
    [feedback] = prepared.feedback
    feedback_row = {
        **feedback,
        "envelope_id": envelope_id,
        "status": "resolved" if rng.random() < 0.33 else "unresolved",
    }
    attachments = [{**row, "envelope_id": envelope_id} for row in prepared.attachments]
    return envelope_row, feedback_row, attachments


INSERT_ENVELOPE = (
    "INSERT INTO envelopes (id, project_id, event_id, received_at, headers, size, item_types)"
    " VALUES (:id, :project_id, :event_id, :received_at, :headers, :size, :item_types)"
)
INSERT_FEEDBACK = (
    "INSERT INTO feedback (event_id, envelope_id, project_id, message, contact_email, name, url,"
    " associated_event_id, replay_id, source, environment, release, dist, platform, timestamp, tags, user,"
    " trace_id, sdk, status, received_at, data) VALUES (:event_id, :envelope_id, :project_id, :message,"
    " :contact_email, :name, :url, :associated_event_id, :replay_id, :source, :environment, :release, :dist,"
    " :platform, :timestamp, :tags, :user, :trace_id, :sdk, :status, :received_at, :data)"
)
INSERT_ATTACHMENT = (
    "INSERT INTO attachments (envelope_id, project_id, event_id, filename, content_type, attachment_type,"
    " size, data, received_at) VALUES (:envelope_id, :project_id, :event_id, :filename, :content_type,"
    " :attachment_type, :size, :data, :received_at)"
)


def fill(path: str, count: int, seed: int, *, analyze: bool) -> float:
    """Write ``count`` feedbacks into the store at ``path`` in one transaction; the seconds it took."""
    rng = random.Random(seed)
    now = time.time()
    # Arrival order, as a server stores them; all inside statsPeriod=30d for the whole run.
    moments = sorted(now - rng.uniform(60, 30 * DAY - 3600) for _ in range(count))
    started = time.perf_counter()
    store = FeedbackStore(path)
    conn: sqlite3.Connection = store._conn
    try:
        with conn:
            for first in range(1, count + 1, BATCH):
                ids = range(first, min(first + BATCH, count + 1))
                rows = [envelope_rows(rng, moments[envelope_id - 1], envelope_id) for envelope_id in ids]
                conn.executemany(INSERT_ENVELOPE, [envelope for envelope, _, _ in rows])
                conn.executemany(INSERT_FEEDBACK, [feedback for _, feedback, _ in rows])
                conn.executemany(INSERT_ATTACHMENT, [a for _, _, attachments in rows for a in attachments])
        if analyze:
            conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        store.close()
    return time.perf_counter() - started


@dataclass
class Timing:
    """The latencies of one kind of request, the last ``X-Hits`` and the SQL one such request ran."""

    name: str
    samples_ms: list[float]
    hits: str
    sql: list[str]

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, round(len(ordered) * 0.99) - 1)]

    def row(self) -> str:
        p50, mean = statistics.median(self.samples_ms), statistics.fmean(self.samples_ms)
        n = len(self.samples_ms)
        return f"{self.name:<34} {n:>5} {p50:>8.2f} {self.p99:>8.2f} {mean:>8.2f} {self.hits:>8}"


class Client:
    """One keep-alive HTTP connection to the server, with the Bearer token."""

    def __init__(self, receiver: LocalReceiver) -> None:
        self.pool = urllib3.HTTPConnectionPool("127.0.0.1", receiver.port, maxsize=1, block=True, retries=False)
        self.headers = {"Authorization": f"Bearer {receiver.api_token}"}
        self.conn: sqlite3.Connection = receiver.store._conn

    def get(self, target: str) -> urllib3.BaseHTTPResponse:
        response = self.pool.request("GET", target, headers=self.headers)
        if response.status != 200:
            raise RuntimeError(f"GET {target}: {response.status} {response.data[:200]!r}")
        return response

    def timed_get(self, target: str) -> tuple[float, urllib3.BaseHTTPResponse]:
        """The milliseconds from sending the request to having read the whole answer, and the answer."""
        start = time.perf_counter_ns()
        response = self.get(target)
        return (time.perf_counter_ns() - start) / 1e6, response

    def sql_of(self, target: str) -> list[str]:
        """The SQL statements (values filled in) the server runs to answer ``target``."""
        statements: list[str] = []
        self.conn.set_trace_callback(statements.append)  # between requests: no query is running
        try:
            self.get(target)
        finally:
            self.conn.set_trace_callback(None)
        return statements

    def measure(self, name: str, target: str, warmup: int, count: int) -> Timing:
        """Time ``count`` requests for ``target`` after ``warmup`` untimed ones."""
        for _ in range(warmup):
            self.get(target)
        gc.collect()
        samples: list[float] = []
        hits = "-"
        for _ in range(count):
            elapsed, response = self.timed_get(target)
            samples.append(elapsed)
            hits = response.headers.get("X-Hits", "-")
        return Timing(name, samples, hits, self.sql_of(target))

    def follow(self, count: int) -> Timing:
        """Time ``next`` requests: ``CURSOR_PAGES`` from the first page, the chain repeated to ``count`` samples."""
        samples: list[float] = []
        hits = "-"
        while len(samples) < count:
            target = next_target(self.get(LISTING))
            for _ in range(min(CURSOR_PAGES, count - len(samples))):
                if target is None:
                    break
                elapsed, response = self.timed_get(target)
                samples.append(elapsed)
                hits = response.headers.get("X-Hits", "-")
                target = next_target(response)
            if not samples:
                raise RuntimeError("the first page has no next page: too few feedbacks")
        second = next_target(self.get(LISTING))
        sql = self.sql_of(second) if second else []
        return Timing(f"next cursor, {CURSOR_PAGES} pages deep", samples, hits, sql)


def listing(**params: str) -> str:
    return f"{LISTING}?{urllib.parse.urlencode(params)}" if params else LISTING


_NEXT = re.compile(r'<([^>]+)>; rel="next"; results="(true|false)"')


def next_target(response: urllib3.BaseHTTPResponse) -> str | None:
    """The path and query of the ``rel="next"`` link, or None when it has no results."""
    match = _NEXT.search(response.headers.get("Link", ""))
    if match is None or match.group(2) != "true":
        return None
    parts = urllib.parse.urlsplit(match.group(1))
    return f"{parts.path}?{parts.query}"


#: The values the server binds (after a comparison, LIKE, IN, LIMIT, OFFSET), as SQLite's trace shows them.
_VALUE = re.compile(
    r"(?P<before>(?:[=<>] |LIKE |LIMIT |OFFSET |IN \(|, ))"
    r"(?P<value>'(?:[^']|'')*'|-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)"
)


def bound(sql: str) -> tuple[str, list[object]]:
    """``sql`` as the server ran it: its values as parameters again (literals can change SQLite's plan)."""
    values: list[object] = []

    def take(match: re.Match[str]) -> str:
        value = match.group("value")
        if value.startswith("'"):
            values.append(value[1:-1].replace("''", "'"))
        else:
            values.append(float(value) if any(c in value for c in ".e") else int(value))
        return match.group("before") + "?"

    return _VALUE.sub(take, sql), values


def explain(path: str, timings: list[Timing]) -> None:
    """Print each SELECT a kind of request ran, SQLite's plan for it and its own time (median of 5 runs)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for timing in timings:
            print(f"\n{timing.name}")
            for traced in timing.sql:
                if not traced.lstrip().upper().startswith("SELECT"):
                    continue
                sql, values = bound(traced)
                runs = []
                for _ in range(5):
                    start = time.perf_counter_ns()
                    conn.execute(sql, values).fetchall()
                    runs.append((time.perf_counter_ns() - start) / 1e6)
                shown = traced if len(traced) < 300 else traced[:300] + " ..."
                print(f"  {statistics.median(runs):8.2f} ms  {shown}")
                for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", values):
                    print(f"{'':14}{row[3]}")
    finally:
        conn.close()


def database_size(path: str) -> int:
    return sum(os.path.getsize(p) for p in (path, f"{path}-wal") if os.path.exists(p))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000, help="feedbacks in the store")
    parser.add_argument("--requests", type=int, default=200, help="timed requests of each kind")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests of each kind first")
    parser.add_argument("--deep-offset", type=int, default=50_000, help="offset of the deep page (at most count/2)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated data")
    parser.add_argument("--analyze", action="store_true", help="run SQLite's ANALYZE after inserting")
    parser.add_argument("--explain", action="store_true", help="print the SQL of each request kind and its plan")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, {args.count:,} feedbacks\n")

    with tempfile.TemporaryDirectory(prefix="bench-api-") as folder:
        path = os.path.join(folder, "feedback.sqlite3")
        seconds = fill(path, args.count, args.seed, analyze=args.analyze)
        size = database_size(path)
        print(f"insert        {seconds:7.2f} s  ({args.count / seconds:,.0f} feedbacks/s, one transaction)")
        print(f"database      {size / 2**20:7.1f} MiB  ({size / max(args.count, 1):,.0f} bytes per feedback)\n")

        deep = min(args.deep_offset, args.count // 2)
        with LocalReceiver(database=path, record_requests=0) as receiver:
            client = Client(receiver)
            cases = [
                ("default listing", listing()),
                ("filtered query (30d)", listing(query=FILTERED_QUERY, statsPeriod="30d")),
                (f"deep page offset={deep} (30d)", listing(offset=str(deep), statsPeriod="30d")),
            ]
            timings = [client.measure(name, target, args.warmup, args.requests) for name, target in cases]
            client.follow(args.warmup)  # warm-up
            timings.append(client.follow(args.requests))
            connections = receiver.connections_opened

        print(f"{'request':<34} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'X-Hits':>8}")
        for timing in timings:
            print(timing.row())
        print(f"\nfilter: query={FILTERED_QUERY!r}")
        print(f"HTTP connections opened: {connections}")
        p99 = timings[0].p99
        verdict = "met" if p99 < AIM_P99_MS else "MISSED"
        print(f"aim: default listing p99 under {AIM_P99_MS:.0f} ms: {verdict} ({p99:.2f} ms)")
        if args.explain:
            explain(path, timings)


if __name__ == "__main__":
    main()
