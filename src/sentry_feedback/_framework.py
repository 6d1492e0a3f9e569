"""What the web framework integrations share, without the request machinery.

The integration classes are made at ``init`` for every framework that is installed (their
hooks wait until the framework is imported): this module, their base, imports nothing of
the request handling (``_web``, ``_request_data``, the middlewares), which is loaded once a
framework serves.
"""

from __future__ import annotations

from .integrations import Integration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import ClassVar

__all__: list[str] = []

#: Bodies up to this many bytes are kept by default (when the application read them).
DEFAULT_MAX_BODY_SIZE = 10 * 1024


class FrameworkIntegration(Integration):
    """What the web framework integrations share: the transaction style and the middleware's options.

    ``transaction_style`` is one of the subclass's ``transaction_styles`` (``"url"``, the
    route, is every framework's default); ``use_x_forwarded_for`` and
    ``max_request_body_size`` are :class:`WebMiddleware`'s. A wrong option raises
    ``TypeError`` or ``ValueError``.
    """

    #: The values ``transaction_style`` takes.
    transaction_styles: ClassVar[tuple[str, ...]] = ("url",)

    def __init__(
        self,
        *,
        transaction_style: str = "url",
        use_x_forwarded_for: bool = False,
        max_request_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        check_options(use_x_forwarded_for, max_request_body_size, transaction_style, self.transaction_styles)
        #: How transactions are named: ``"url"`` (the route) or the framework's other style.
        self.transaction_style = transaction_style
        #: Whether the client's IP comes from ``X-Forwarded-For``.
        self.use_x_forwarded_for = use_x_forwarded_for
        #: The largest request body kept for events, in bytes.
        self.max_request_body_size = max_request_body_size


def check_options(
    use_x_forwarded_for: object,
    max_request_body_size: object,
    transaction_style: object = None,
    styles: tuple[str, ...] = (),
) -> None:
    """``TypeError``/``ValueError`` for options of the middleware (and the framework integrations) it cannot take.

    With ``styles`` (a framework integration's), ``transaction_style`` must be one of them.
    """
    if styles and (not isinstance(transaction_style, str) or transaction_style not in styles):
        raise ValueError(f"transaction_style must be {' or '.join(map(repr, styles))}, not {transaction_style!r}")
    if not isinstance(use_x_forwarded_for, bool):
        raise TypeError("use_x_forwarded_for must be True or False")
    if isinstance(max_request_body_size, bool) or not isinstance(max_request_body_size, int):
        raise TypeError("max_request_body_size must be an integer")
    if max_request_body_size < 0:
        raise ValueError(f"max_request_body_size must be >= 0, not {max_request_body_size}")
