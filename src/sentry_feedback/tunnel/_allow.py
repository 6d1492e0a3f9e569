"""The allow-list: which envelope DSNs the tunnel forwards, and where to."""

from __future__ import annotations

from collections.abc import Iterable

from .._dsn import Dsn

__all__: list[str] = []

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _project(dsn: Dsn) -> tuple[str, str, int, str, str]:
    """What names one project at one server: scheme, host, port, path prefix, project id."""
    port = dsn.port if dsn.port is not None else _DEFAULT_PORTS[dsn.scheme]
    return dsn.scheme, dsn.host.lower(), port, dsn.path_prefix, dsn.project_id


class AllowList:
    """The configured DSNs, looked up by the DSN an envelope names.

    An envelope DSN matches a configured one when the scheme, host, port (the scheme's
    default when left out), path prefix and project id are the same, and, with
    ``match_public_key``, the public key too. The match gives the *configured* DSN: the
    envelope is sent where the configuration says, never where the envelope says.
    """

    def __init__(self, allowed: Iterable[Dsn], *, match_public_key: bool) -> None:
        self._match_public_key = match_public_key
        self._by_project: dict[tuple[str, str, int, str, str], list[Dsn]] = {}
        for dsn in allowed:
            self._by_project.setdefault(_project(dsn), []).append(dsn)

    def find(self, envelope_dsn: Dsn) -> Dsn | None:
        """The configured DSN ``envelope_dsn`` is allowed by, or ``None``."""
        candidates = self._by_project.get(_project(envelope_dsn), [])
        if not self._match_public_key:
            return candidates[0] if candidates else None
        return next((dsn for dsn in candidates if dsn.public_key == envelope_dsn.public_key), None)
