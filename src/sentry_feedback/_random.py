"""Random ids for events, traces and spans, without a system call on the caller's thread.

``os.urandom`` releases the GIL, and a busy background thread then takes it: a capture
that needs an id could wait for the worker's next switch interval. The ids come instead
from the SDK's own Mersenne Twister, seeded with 256 bits from ``os.urandom`` when the
SDK is imported and again in every child after ``fork`` (so parent and child never share
a sequence), and never touched by the application's ``random.seed()``. Ids only have to
be unique, not secret: 128 random bits for event and trace ids, 64 for span ids.
"""

from __future__ import annotations

import os

# The C generator behind ``random.Random``: ``random.py`` itself (with its imports) is not needed.
from _random import Random

__all__ = ["event_id", "sample_rand", "span_id", "trace_id", "uniform"]


def _seed() -> int:
    return int.from_bytes(os.urandom(32), "big")


_rng = Random(_seed())
_bits = _rng.getrandbits

#: UUID version 4 and the RFC 4122 variant, as the ``uuid`` module sets them.
_VERSION_MASK = ~((0xF000 << 64) | (0xC000 << 48))
_VERSION_BITS = (0x4000 << 64) | (0x8000 << 48)


def _reseed() -> None:
    _rng.seed(_seed())


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)


def event_id() -> str:
    """A random UUID4 as 32 lowercase hex characters (what ``uuid.uuid4().hex`` gives)."""
    return f"{(_bits(128) & _VERSION_MASK) | _VERSION_BITS:032x}"


def trace_id() -> str:
    """128 random bits as 32 lowercase hex characters, never all zeros."""
    return f"{_bits(128) or 1:032x}"


def span_id() -> str:
    """64 random bits as 16 lowercase hex characters, never all zeros."""
    return f"{_bits(64) or 1:016x}"


def uniform() -> float:
    """A float in [0, 1)."""
    return _rng.random()


def sample_rand() -> float:
    """A float in [0, 1), rounded to 6 decimals as the dynamic sampling context carries it."""
    return round(_rng.random(), 6) % 1.0
