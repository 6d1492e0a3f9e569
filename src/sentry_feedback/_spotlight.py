"""Spotlight: a copy of every envelope for a local debugging sidecar."""

from __future__ import annotations

from ._log import logger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._envelope import Envelope

__all__: list[str] = []

DEFAULT_URL = "http://localhost:8969/stream"


class SpotlightSender:
    """POSTs envelopes to a Spotlight sidecar; failures are logged at debug level and never counted.

    Delivery to the DSN does not depend on it in any way.
    """

    def __init__(self, url: str) -> None:
        import urllib3

        self.url = url
        self._pool = urllib3.PoolManager(num_pools=1, maxsize=1, retries=False, timeout=urllib3.Timeout(2.0, 2.0))
        self._failed_before = False

    @classmethod
    def from_option(cls, option: bool | str) -> SpotlightSender | None:
        """A sender for the ``spotlight`` option: ``True`` (the default URL), a URL, or ``None`` if off."""
        if option is False or option == "":
            return None
        return cls(DEFAULT_URL if option is True else str(option))

    def send(self, envelope: Envelope) -> None:
        """Send a copy of ``envelope``; never raises."""
        try:
            response = self._pool.request(
                "POST",
                self.url,
                body=envelope.serialize(),
                headers={"Content-Type": "application/x-sentry-envelope"},
                redirect=False,
            )
            if response.status >= 400:
                logger.debug("spotlight answered %d", response.status)
            self._failed_before = False
        except Exception as exc:
            # Once per outage at debug level: a sidecar that is not running is normal.
            if not self._failed_before:
                logger.debug("could not reach spotlight at %s: %s", self.url, exc)
            self._failed_before = True
