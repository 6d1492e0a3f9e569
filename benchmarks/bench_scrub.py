"""Cost of the event scrubber per event, on the background thread, before serialization.

Run: ``python benchmarks/bench_scrub.py [--n 20000] [--repeat 7] [--module PATH] [--baseline PATH]``.

Each case builds ``--n`` fresh events (untimed), then times one loop calling the scrubber on
each of them; the figure is the loop's time divided by ``--n``, the best and the median of
``--repeat`` loops. The time is the process's CPU time (``time.process_time_ns``), which other
processes competing for the CPU disturb much less than wall time. Cases:

* ``feedback``: a feedback event with nothing to scrub (``contexts.feedback`` and ``trace``,
  a few tags, ``user`` {id, email}, 5 breadcrumbs with small ``data``, a ``request`` with a few
  headers), through ``scrub_before_sending`` (what the client runs) and through
  ``EventScrubber.scrub_event`` alone;
* ``error``: an error event with 9 frames of local variables (reprs) besides the above,
  nothing to scrub;
* ``user.ip_address``: the feedback event with an IP address in ``user`` (removed);
* ``secrets``: the feedback event with a password in ``extra``, a token header, a cookie,
  an IP address in ``user`` and a card number in a breadcrumb.

``--module PATH`` measures the ``_scrubber.py`` found at ``PATH`` instead of the installed one;
``--baseline PATH`` measures the one at ``PATH`` too (for example an older version, saved with
``git show HEAD:src/sentry_feedback/_scrubber.py > /tmp/old_scrubber.py``), the loops of the
two taking turns so that both see the same load, and prints the ratio. Figures are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

TRACE_ID = "771a43a4192642f0b136d5159a501700"
SPAN_ID = "a1b2c3d4e5f60718"


def load_module(path: str | None, name: str = "bench_scrubber_under_test") -> ModuleType:
    """The scrubber module: the installed one, or the file at ``path`` (loaded as ``name``)."""
    if path is None:
        from sentry_feedback import _scrubber

        return _scrubber
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def feedback_event(i: int) -> dict[str, Any]:
    """A feedback event as the client hands it to the scrubber: nothing in it needs filtering."""
    return {
        "type": "feedback",
        "level": "info",
        "event_id": f"{i:032x}",
        "timestamp": 1_700_000_000.0 + i,
        "platform": "python",
        "environment": "production",
        "release": "shop@1.4.2",
        "sdk": {"name": "sentry.python.feedback", "version": "1.0.0"},
        "contexts": {
            "feedback": {
                "message": "The pay button does nothing after I enter my card.",
                "contact_email": "jane@example.com",
                "name": "Jane",
            },
            "trace": {"trace_id": TRACE_ID, "span_id": SPAN_ID},
        },
        "tags": {"page": "checkout", "browser": "firefox", "plan": "pro"},
        "user": {"id": "42", "email": "jane@example.com"},
        "breadcrumbs": {
            "values": [
                {
                    "timestamp": 1_700_000_000.0 + j,
                    "category": "ui.click",
                    "message": f"clicked button {j}",
                    "data": {"target": f"button#step-{j}", "x": 10 * j, "y": 20},
                }
                for j in range(5)
            ]
        },
        "request": {
            "url": "https://shop.example/checkout",
            "method": "POST",
            "headers": {
                "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
                "Accept": "text/html",
                "Accept-Language": "en-US,en;q=0.5",
                "Content-Type": "application/json",
            },
        },
    }


def error_event(i: int) -> dict[str, Any]:
    """An error event with 9 frames of local variables (already rendered as reprs), nothing to filter."""
    event = feedback_event(i)
    del event["contexts"]["feedback"]
    event["type"] = "event"
    event["level"] = "error"
    event["extra"] = {"cart_id": f"cart-{i}", "items": 3}
    frames = [
        {
            "filename": f"shop/module_{n}.py",
            "function": f"handler_{n}",
            "lineno": 10 + n,
            "in_app": True,
            "vars": {"n": str(n), "order_id": f"'order-{n}'", "items": f"[{n}, {n + 1}, {n + 2}]", "self": "<Cart>"},
        }
        for n in range(9)
    ]
    event["exception"] = {
        "values": [{"type": "ValueError", "value": "payment declined", "stacktrace": {"frames": frames}}]
    }
    return event


def user_ip_event(i: int) -> dict[str, Any]:
    """The feedback event with an IP address in ``user``, removed (``send_default_pii`` is off)."""
    event = feedback_event(i)
    event["user"]["ip_address"] = "203.0.113.7"
    return event


def secrets_event(i: int) -> dict[str, Any]:
    """The feedback event with a few values the scrubber filters."""
    event = feedback_event(i)
    event["extra"] = {"db_password": "hunter2", "cart_id": f"cart-{i}"}
    event["request"]["headers"]["X-Auth-Token"] = "abc"
    event["request"]["cookies"] = "sessionid=abc; theme=dark"
    event["user"]["ip_address"] = "203.0.113.7"
    event["breadcrumbs"]["values"][2]["data"]["note"] = "paid with 4111 1111 1111 1111"
    return event


Case = tuple[str, str, Callable[[int], dict[str, Any]]]

CASES: list[Case] = [
    ("feedback, nothing to scrub", "scrub_before_sending", feedback_event),
    ("feedback, nothing to scrub", "scrub_event", feedback_event),
    ("error + 9 frames of vars, nothing to scrub", "scrub_before_sending", error_event),
    ("error + 9 frames of vars, nothing to scrub", "scrub_event", error_event),
    ("feedback with user.ip_address", "scrub_before_sending", user_ip_event),
    ("feedback with 5 secrets", "scrub_before_sending", secrets_event),
    ("feedback with 5 secrets", "scrub_event", secrets_event),
]


def runner(module: ModuleType, entry: str) -> Callable[[dict[str, Any]], object]:
    """One call of ``entry`` (``scrub_before_sending`` or ``scrub_event``) with one scrubber of ``module``."""
    scrubber = module.EventScrubber()
    if entry == "scrub_event":
        return scrubber.scrub_event  # type: ignore[no-any-return]
    scrub_before_sending = module.scrub_before_sending

    def run(event: dict[str, Any]) -> None:
        scrub_before_sending(scrubber, event)

    return run


def timed_loop(run: Callable[[dict[str, Any]], object], build: Callable[[int], dict[str, Any]], n: int) -> float:
    """CPU microseconds per event for one loop over ``n`` fresh events (built untimed)."""
    events = [build(i) for i in range(n)]
    gc.collect()
    clock = time.process_time_ns
    start = clock()
    for event in events:
        run(event)
    return (clock() - start) / n / 1000


def measure(
    runs: list[Callable[[dict[str, Any]], object]], build: Callable[[int], dict[str, Any]], n: int, repeat: int
) -> list[list[float]]:
    """Per-event figures of ``repeat`` loops for each of ``runs``, their loops taking turns."""
    for run in runs:  # warm-up (fills the key cache)
        timed_loop(run, build, min(n, 2000))
    figures: list[list[float]] = [[] for _ in runs]
    for _ in range(repeat):
        for run, samples in zip(runs, figures, strict=True):
            samples.append(timed_loop(run, build, n))
    return figures


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments, run every case, print one line per case."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=20_000, help="events per timed loop")
    parser.add_argument("--repeat", type=int, default=7, help="timed loops per case")
    parser.add_argument("--module", help="measure the _scrubber.py at this path instead of the installed one")
    parser.add_argument("--baseline", help="also measure the _scrubber.py at this path, loops taking turns")
    args = parser.parse_args(argv)

    modules = [load_module(args.module)]
    if args.baseline:
        modules.insert(0, load_module(args.baseline, "bench_scrubber_baseline"))
    for label, module in zip(("baseline: ", "measured: ") if args.baseline else ("measured: ",), modules, strict=True):
        print(f"{label}{module.__file__}")
    print(f"python {sys.version.split()[0]}, {args.n} events per loop, {args.repeat} loops; CPU µs per event")
    print("(best / median of the loops" + (", and the ratio of the medians)" if args.baseline else ")"))
    width = max(len(name) + len(entry) for name, entry, _ in CASES) + 2
    header = "".join(f"  {'baseline' if args.baseline and i == 0 else 'measured':>15}" for i in range(len(modules)))
    print(f"{'case':<{width}}{header}")
    for name, entry, build in CASES:
        figures = measure([runner(module, entry) for module in modules], build, args.n, args.repeat)
        line = f"{name + ': ' + entry:<{width}}"
        for samples in figures:
            line += f"  {min(samples):6.2f} / {statistics.median(samples):6.2f}"
        if args.baseline:
            line += f"  {statistics.median(figures[0]) / statistics.median(figures[1]):5.2f}x"
        print(line)


if __name__ == "__main__":
    main()
