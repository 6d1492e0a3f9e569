"""``python -m sentry_feedback``: see :mod:`sentry_feedback._cli`."""

from __future__ import annotations

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
