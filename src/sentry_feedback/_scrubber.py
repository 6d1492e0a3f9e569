"""Client-side data scrubbing: sensitive values are replaced by ``"[Filtered]"`` before an event leaves.

:class:`EventScrubber` runs on every event. It looks at the parts of an event where
programs put data they did not curate, and nowhere else:

* ``extra``;
* every context in ``contexts`` except ``trace`` and ``feedback`` (the feedback context
  is what the user typed and is sent as given);
* ``breadcrumbs.values[*].data``;
* ``request``: ``headers``, ``cookies``, ``data``, ``env``, ``query_string`` and the
  query part of ``url``;
* the local variables of stack frames: ``exception.values[*].stacktrace.frames[*].vars``,
  ``threads.values[*].stacktrace.frames[*].vars`` and ``stacktrace.frames[*].vars``;
* ``user``, for the PII keys only, and only when ``send_default_pii`` is off.

``tags`` are never touched: they are searchable and set on purpose.

Key matching
------------
A key is compared in its *compact* form: lower-cased, with every ASCII punctuation
character and whitespace removed, so ``X-Api-Key``, ``x_api_key``, ``API_KEY``,
``apiKey`` and ``apikey`` are the same key (``xapikey`` / ``apikey``). Each denylist
entry is compacted the same way and matches in one of two ways:

* an entry written ``*word*`` matches when the word occurs **anywhere** in the key.
  The default list uses this for words that are never harmless:
  ``password``, ``passwd``, ``passphrase``, ``secret``, ``api_key``, ``private_key``,
  ``credential``, ``authorization``, ``csrf``, ``xsrf``. So ``db_password``,
  ``passwordHash``, ``stripe_secret_key``, ``client_secret``, ``x-api-key``,
  ``aws_credentials`` and ``csrftoken`` are filtered;
* any other entry matches when the key **ends with** it. The default list uses this for
  words that are also the first part of harmless names: ``auth``, ``token``,
  ``session``, ``sessionid``, ``session_key``, ``phpsessid``, ``connect.sid``,
  ``cookie``, ``cookies``, ``jwt``, ``bearer``, ``otp``, ``pwd``, ``access_key``,
  ``cvv``, ``cvc``. So ``user_token``, ``access_token``, ``refresh_token``,
  ``authToken``, ``x-auth-token``, ``oauth``, ``HTTP_AUTH``, ``user_session``,
  ``session_id``, ``set-cookie``, ``mysql_pwd`` are filtered, while ``authorized``,
  ``author``, ``authentication_backend``, ``tokenizer_name``, ``max_tokens``,
  ``token_count``, ``session_count`` and ``cookie_name`` are kept.

The PII denylist (:data:`DEFAULT_PII_DENYLIST`) uses the same rules and applies only
when ``send_default_pii`` is off: ``ip_address``, ``remote_addr``, ``forwarded``,
``forwarded_for`` (``X-Forwarded-For``), ``real_ip`` (``X-Real-IP``), ``client_ip``
(``X-Client-IP``, ``True-Client-IP``), ``connecting_ip`` (``CF-Connecting-IP``).

The scrubber leans towards filtering: a false positive costs a debugging hint, a false
negative leaks a secret. Known and accepted false positives: ``secretary`` (anywhere-word),
the ``PWD`` working directory of a CGI environment, an ``ss_number`` key for a custom
``*ssn*`` (separators are removed before matching, so a word may span them), any
``session`` local variable (an ORM session's repr). Query parameter names (in
``query_string`` and ``url``) are URL-decoded, then matched by the same rules.
:meth:`EventScrubber.is_denied` tells whether a key matches.

Values
------
The value of a matching key is replaced by ``"[Filtered]"`` whatever its type (a nested
dict or list goes as a whole), except:

* values that hide nothing are left alone and not reported: ``None``, booleans, empty
  strings and containers, and values that already are ``"[Filtered]"``;
* a ``cookies`` value (a dict, a list of pairs or a ``a=1; b=2`` string) keeps the cookie
  names and has every cookie value filtered, since Sentry rejects a bare ``"[Filtered]"``
  where it expects cookies. ``request.cookies`` is always treated that way; a cookie string
  there (or in the ``response`` context) without any ``name=value`` pair, or a value that is
  no cookies at all, becomes ``{}``;
* in ``user`` a PII key is removed (Sentry rejects ``"[Filtered]"`` as ``user.ip_address``);
  deeper in ``user`` (``user.data``) PII values become ``"[Filtered]"``. Other keys of
  ``user`` are kept: what the program put there is sent on purpose.

With ``scrub_credit_cards``, every string value in those places (keys are not scanned) has
each credit card number in it replaced by ``"[Filtered]"``, the rest of the string kept. A
credit card number is a run of 13 to 19 digits, whole digit groups separated by single
spaces or dashes allowed, that passes the Luhn check and starts like a card of a major
network (first digit 3 to 6, or 2221 to 2720 for Mastercard's 2-series). A digit group is
never split, so a card is never found inside a longer number; millisecond timestamps
(``17...``), order ids and other numbers failing Luhn are kept.

Nested dicts and lists are scrubbed to a depth of :data:`MAX_DEPTH` below each scrubbed
mapping when ``recursive`` is on (a container met again inside itself is skipped); with it
off only the keys and values directly in those mappings are looked at.
"""

from __future__ import annotations

from ._lazy import LazyPattern
from ._log import logger

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Iterable
    from typing import Any

__all__ = ["EventScrubber"]

#: What a filtered value is replaced with.
FILTERED = "[Filtered]"

#: How deep below each scrubbed mapping (``extra``, a context, a frame's ``vars``...) nested
#: containers are scrubbed; deeper ones are left as they are.
MAX_DEPTH = 16

#: Keys whose values are always filtered. ``*word*`` matches anywhere in a key, any other entry
#: at its end (see the module documentation for the exact rules).
DEFAULT_DENYLIST: tuple[str, ...] = (
    # Anywhere in the key: these words have no harmless use.
    "*password*",
    "*passwd*",
    "*passphrase*",
    "*secret*",  # client_secret, secret_key, SECRET_KEY_BASE
    "*api_key*",  # apikey, x-api-key, stripe_api_key
    "*private_key*",  # privatekey
    "*credential*",  # credentials, aws_credentials
    "*authorization*",  # Authorization, Proxy-Authorization, HTTP_AUTHORIZATION
    "*csrf*",  # csrftoken, x-csrf-token, _csrf
    "*xsrf*",  # XSRF-TOKEN, _xsrf
    # At the end of the key: "token" but not "tokenizer" or "max_tokens".
    "auth",  # x-auth, basic_auth, oauth (not authorized, author)
    "token",  # access_token, refresh_token, id_token, authToken
    "session",  # user_session, aiohttp_session (not session_count)
    "sessionid",  # session_id, JSESSIONID, ASP.NET_SessionId
    "session_key",  # Django
    "phpsessid",  # PHP
    "connect.sid",  # Express
    "cookie",  # Cookie, Set-Cookie, HTTP_COOKIE
    "cookies",
    "jwt",
    "bearer",
    "otp",  # otp, totp
    "pwd",  # mysql_pwd, db_pwd
    "access_key",  # s3_access_key
    "cvv",
    "cvc",
)

#: Keys holding personal data (IP addresses); filtered only when ``send_default_pii`` is off.
DEFAULT_PII_DENYLIST: tuple[str, ...] = (
    "ip_address",  # user.ip_address
    "remote_addr",  # REMOTE_ADDR
    "forwarded",  # Forwarded
    "forwarded_for",  # X-Forwarded-For, HTTP_X_FORWARDED_FOR
    "real_ip",  # X-Real-IP
    "client_ip",  # X-Client-IP, True-Client-IP
    "connecting_ip",  # CF-Connecting-IP
)

_DENY = 1
_PII = 2
_CACHE_SIZE = 4096
_CONTEXTS_KEPT = frozenset(("trace", "feedback"))
#: What the scrubber looks inside. Sets are sent as lists (see ``_serialize``): scrubbed like tuples.
_CONTAINERS = (dict, list, tuple, set, frozenset)
# Compact form of a key: lower-cased, ASCII punctuation and whitespace removed.
_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"  # string.punctuation (``string`` imports ``re``)
_WHITESPACE = " \t\n\r\x0b\x0c"  # string.whitespace
_COMPACT = str.maketrans("", "", _PUNCTUATION + _WHITESPACE)

# A run of at least 13 ASCII digits, single spaces or dashes allowed between them.
_DIGIT_RUN = LazyPattern(r"[0-9](?:[ -]?[0-9]){12,}")
# What every such run starts with: a digit and 12 more digits, spaces or dashes. Much cheaper to
# look for (no group to repeat), so most strings are done with after this one search.
_CARD_HINT = LazyPattern(r"[0-9][0-9 -]{12}")
_DIGIT_GROUP = LazyPattern(r"[0-9]+")
_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def quote_plus(string: str, safe: str = "") -> str:
    """``urllib.parse.quote_plus``, imported by the first query string scrubbed (it imports ``re``)."""
    from urllib.parse import quote_plus

    return quote_plus(string, safe=safe)


def unquote_plus(string: str) -> str:
    """``urllib.parse.unquote_plus``, imported by the first query string scrubbed."""
    from urllib.parse import unquote_plus

    return unquote_plus(string)


def _compile(entries: Iterable[str], name: str) -> re.Pattern[str] | None:
    """One regex over compact keys for a denylist; ``None`` when it has no usable entry."""
    return _pattern(_words(entries, name))


def _words(entries: Iterable[str], name: str) -> tuple[frozenset[str], frozenset[str]]:
    """The compact words of a denylist: matched anywhere in a key, matched at its end (``TypeError``: bad entry)."""
    if isinstance(entries, str):
        raise TypeError(f"{name} must be an iterable of strings, not a single string")
    anywhere: set[str] = set()
    suffix: set[str] = set()
    for entry in entries:
        if not isinstance(entry, str):
            raise TypeError(f"{name} entries must be strings, got {type(entry).__name__}")
        stripped = entry.strip()
        word = stripped.strip("*").lower().translate(_COMPACT)
        if word:
            (anywhere if stripped.startswith("*") or stripped.endswith("*") else suffix).add(word)
    return frozenset(anywhere), frozenset(suffix)


def _pattern(words: tuple[frozenset[str], frozenset[str]]) -> re.Pattern[str] | None:
    """The regex of :func:`_compile` for words from :func:`_words` (imports ``re``)."""
    import re

    anywhere, suffix = words
    parts = []
    if anywhere:
        parts.append("(?:" + "|".join(map(re.escape, sorted(anywhere))) + ")")
    if suffix:
        parts.append("(?:" + "|".join(map(re.escape, sorted(suffix))) + r")\Z")
    return re.compile("|".join(parts)) if parts else None


def _luhn(digits: str) -> bool:
    total = 0
    double = False
    for char in reversed(digits):
        digit = ord(char) - 48
        total += _LUHN_DOUBLED[digit] if double else digit
        double = not double
    return total % 10 == 0


def _looks_like_card(digits: str) -> bool:
    if not 13 <= len(digits) <= 19:
        return False
    first = digits[0]
    if first not in "3456" and not (first == "2" and 2221 <= int(digits[:4]) <= 2720):
        return False
    return _luhn(digits)


def _card_spans(run: str) -> list[tuple[int, int]]:
    """Spans (within ``run``) of the card numbers made of whole digit groups of ``run``."""
    groups = [(m.start(), m.end()) for m in _DIGIT_GROUP.finditer(run)]
    count = len(groups)
    spans: list[tuple[int, int]] = []
    i = 0
    while i < count:
        # The longest window of whole groups starting at group i that is a card number.
        found = -1
        digits = ""
        candidates: list[str] = []
        for j in range(i, min(count, i + 19)):
            digits += run[groups[j][0] : groups[j][1]]
            if len(digits) > 19:
                break
            candidates.append(digits)
        for j in range(len(candidates) - 1, -1, -1):
            if _looks_like_card(candidates[j]):
                found = i + j
                break
        if found < 0:
            i += 1
        else:
            spans.append((groups[i][0], groups[found][1]))
            i = found + 1
    return spans


def _filter_cards(text: str) -> str:
    """``text`` with every credit card number replaced by ``[Filtered]`` (``text`` itself if none)."""
    if type(text) is str and (len(text) < 13 or _CARD_HINT.search(text) is None):
        return text
    return _replace_cards(text)


def _replace_cards(text: str) -> str:
    """:func:`_filter_cards` without the quick look first (for callers that took it)."""
    pieces: list[str] = []
    last = 0
    for match in _DIGIT_RUN.finditer(text):
        base = match.start()
        for start, end in _card_spans(match.group()):
            pieces.append(text[last : base + start])
            pieces.append(FILTERED)
            last = base + end
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def _has_card(text: str) -> bool:
    """Whether :func:`_filter_cards` would change ``text`` (a ``str`` in which ``_CARD_HINT`` was found)."""
    return any(_card_spans(match.group()) for match in _DIGIT_RUN.finditer(text))


def _is_filtered(value: object) -> bool:
    # No ``==`` on arbitrary objects: a numpy array or DataFrame would not answer with a bool.
    return isinstance(value, str) and value == FILTERED


def _hides_nothing(value: object) -> bool:
    if value is None or value is True or value is False or _is_filtered(value):
        return True
    return isinstance(value, (str, dict, list, tuple)) and not value


def _filter_cookies(value: object, unparsable: object = FILTERED) -> object | None:
    """A cookies value with the names kept and every value filtered; ``None`` if nothing changes.

    A string without any ``name=value`` pair, or a value that is no cookies at all, becomes ``unparsable``.
    """
    if isinstance(value, dict):
        if all(_is_filtered(v) for v in value.values()):
            return None
        return dict.fromkeys(value, FILTERED)
    if isinstance(value, (list, tuple)):
        pairs = [p for p in value if isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[0], str) and p[0]]
        if len(pairs) == len(value) and all(_is_filtered(pair[1]) for pair in pairs):
            return None
        return [[pair[0], FILTERED] for pair in pairs]
    if isinstance(value, str):
        names = [part.split("=", 1)[0].strip() for part in value.split(";") if "=" in part]
        kept = "; ".join(f"{name}={FILTERED}" for name in names if name)
        if kept == value:
            return None
        return kept or unparsable
    return unparsable


class EventScrubber:
    """Replaces the values of sensitive keys (and credit card numbers) in an event by ``"[Filtered]"``.

    ``denylist`` and ``pii_denylist`` replace :data:`DEFAULT_DENYLIST` and
    :data:`DEFAULT_PII_DENYLIST` (extend them with ``[*DEFAULT_DENYLIST, "ssn"]``); an entry
    ``*word*`` matches anywhere in a key, any other entry at the end of a key, ignoring case
    and punctuation. The PII list is used only when ``send_default_pii`` is off.
    ``recursive`` scrubs nested dicts and lists too; ``scrub_credit_cards`` filters
    Luhn-valid card numbers inside strings. The module documentation has the full rules.

    >>> scrubber = EventScrubber()
    >>> event = {"extra": {"db_password": "hunter2", "user": "ada"}}
    >>> scrubber.scrub_event(event)
    ['extra.db_password']
    >>> event["extra"]
    {'db_password': '[Filtered]', 'user': 'ada'}
    """

    __slots__ = (
        "_cache",
        "_compiled",
        "_deny",
        "_mask",
        "_pii",
        "_words",
        "denylist",
        "pii_denylist",
        "recursive",
        "scrub_credit_cards",
        "send_default_pii",
    )

    def __init__(
        self,
        *,
        denylist: Iterable[str] | None = None,
        pii_denylist: Iterable[str] | None = None,
        recursive: bool = True,
        send_default_pii: bool = False,
        scrub_credit_cards: bool = True,
    ) -> None:
        if isinstance(denylist, str) or isinstance(pii_denylist, str):
            raise TypeError("denylist and pii_denylist must be iterables of strings, not a single string")
        #: The denylist in use (entries as given).
        self.denylist: tuple[str, ...] = DEFAULT_DENYLIST if denylist is None else tuple(denylist)
        #: The PII denylist in use (entries as given).
        self.pii_denylist: tuple[str, ...] = DEFAULT_PII_DENYLIST if pii_denylist is None else tuple(pii_denylist)
        #: Whether nested dicts and lists are scrubbed.
        self.recursive = recursive
        #: When true, the PII denylist is not applied.
        self.send_default_pii = send_default_pii
        #: Whether credit card numbers inside strings are filtered.
        self.scrub_credit_cards = scrub_credit_cards
        # Checked now (TypeError), compiled by the first lookup: ``re`` is not imported by ``init``.
        self._words = (
            _words(self.denylist, "denylist"),
            _words(self.pii_denylist, "pii_denylist"),
        )
        # ``None`` for a list without usable entry, as ``_compile`` gives; else the regex, once looked up.
        self._deny: Any = self._words[0] if any(self._words[0]) else None
        self._pii: Any = self._words[1] if any(self._words[1]) else None
        self._compiled = False
        self._mask = _DENY if send_default_pii else _DENY | _PII
        self._cache: dict[str, int] = {}

    def __repr__(self) -> str:
        return (
            f"EventScrubber(recursive={self.recursive}, send_default_pii={self.send_default_pii}, "
            f"scrub_credit_cards={self.scrub_credit_cards}, {len(self.denylist)} denied keys, "
            f"{len(self.pii_denylist)} PII keys)"
        )

    def is_denied(self, key: str) -> bool:
        """Whether values under ``key`` are filtered (PII keys count only when ``send_default_pii`` is off)."""
        return isinstance(key, str) and bool(self._flags(key) & self._mask)

    def _flags(self, key: str) -> int:
        flags = self._cache.get(key)
        if flags is None:
            flags = self._new_flags(key)
        return flags

    def _new_flags(self, key: str) -> int:
        """Match ``key`` against both lists and remember the answer.

        The cache is a plain dict, cleared when full: concurrent use only races to store the
        same answer twice (or to clear it once more), which is harmless.
        """
        if not self._compiled:
            self._deny, self._pii = _pattern(self._words[0]), _pattern(self._words[1])
            self._compiled = True
        compact = key.lower().translate(_COMPACT)
        flags = 0
        if self._deny is not None and self._deny.search(compact):
            flags = _DENY
        if self._pii is not None and self._pii.search(compact):
            flags |= _PII
        cache = self._cache
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        cache[key] = flags
        return flags

    def scrub_event(self, event: dict[str, Any]) -> list[str]:
        """Scrub ``event`` in place; return the dotted paths of the values it filtered.

        For example ``["extra.password", "request.headers.Authorization", "request.cookies",
        "exception.values.0.stacktrace.frames.3.vars.api_key"]``. List indices are path
        parts; a header, cookie or query parameter given as a list of pairs is named by its
        key. Never raises on malformed events: whatever it does not understand is skipped.
        """
        return self._scrub_parts(event, _PARTS)

    def _scrub_parts(self, event: dict[str, Any], parts: tuple[str, ...]) -> list[str]:
        """:meth:`scrub_event` limited to ``parts`` (names from :data:`_PARTS`), in the same order."""
        out: list[str] = []
        if not isinstance(event, dict) or not event:
            return out
        mask = self._mask
        active: set[int] = set()

        if "extra" in parts:
            extra = event.get("extra")
            if isinstance(extra, dict) and extra:
                self._scrub_dict(extra, "extra", 0, mask, out, active)

        if "contexts" in parts:
            contexts = event.get("contexts")
            if isinstance(contexts, dict) and contexts:
                for name, context in contexts.items():
                    if isinstance(context, dict) and context and name not in _CONTEXTS_KEPT:
                        self._scrub_dict(context, f"contexts.{name}", 0, mask, out, active)

        if "breadcrumbs" in parts:
            crumbs = event.get("breadcrumbs")
            if crumbs is not None:
                prefix, values = _values(crumbs, "breadcrumbs")
                for i, crumb in enumerate(values):
                    if isinstance(crumb, dict):
                        data = crumb.get("data")
                        if isinstance(data, dict) and data:
                            self._scrub_dict(data, f"{prefix}.{i}.data", 0, mask, out, active)

        if "request" in parts:
            request = event.get("request")
            if isinstance(request, dict) and request:
                self._scrub_request(request, mask, out, active)

        if "frames" in parts:
            self._scrub_frames(event, mask, out, active)

        if "user" in parts and not self.send_default_pii and self._pii is not None:
            user = event.get("user")
            if isinstance(user, dict) and user:
                self._scrub_user(user, out, active)
        return out

    # -- sections ------------------------------------------------------------------------

    def _scrub_frames(self, event: dict[str, Any], mask: int, out: list[str], active: set[int]) -> None:
        for key in ("exception", "threads"):
            container = event.get(key)
            if container is not None:
                prefix, values = _values(container, key)
                for i, value in enumerate(values):
                    if isinstance(value, dict):
                        stacktrace = value.get("stacktrace")
                        self._scrub_stacktrace(stacktrace, f"{prefix}.{i}.stacktrace", mask, out, active)
        if "stacktrace" in event:
            self._scrub_stacktrace(event["stacktrace"], "stacktrace", mask, out, active)

    def _scrub_stacktrace(self, stacktrace: object, path: str, mask: int, out: list[str], active: set[int]) -> None:
        if not isinstance(stacktrace, dict):
            return
        frames = stacktrace.get("frames")
        if not isinstance(frames, list):
            return
        for i, frame in enumerate(frames):
            if isinstance(frame, dict):
                variables = frame.get("vars")
                if isinstance(variables, dict) and variables:
                    self._scrub_dict(variables, f"{path}.frames.{i}.vars", 0, mask, out, active)

    def _scrub_request(self, request: dict[Any, Any], mask: int, out: list[str], active: set[int]) -> None:
        for key in _REQUEST_SCRUBBED:
            value = request.get(key)
            if value is None:
                continue
            path = f"request.{key}"
            if isinstance(value, dict):
                if value:
                    self._scrub_dict(value, path, 0, mask, out, active)
            elif isinstance(value, str):
                if key == "query_string":
                    new = self._scrub_query(value, path, mask, out)
                elif self.scrub_credit_cards:
                    new = _filter_cards(value)
                    if new is not value:
                        out.append(path)
                else:
                    continue
                if new is not value:
                    request[key] = new
            elif isinstance(value, (list, tuple)):
                if key in ("headers", "query_string"):
                    new_pairs = self._scrub_pairs(value, path, mask, out)
                    if new_pairs is not value:
                        request[key] = new_pairs
                elif self.recursive:
                    self._scrub_container(request, key, value, path, 0, mask, out, active)

        cookies = request.get("cookies")
        if not _hides_nothing(cookies):
            # Sentry rejects a cookie string without name=value pairs.
            filtered = _filter_cookies(cookies, {})
            if filtered is not None:
                request["cookies"] = filtered
                out.append("request.cookies")

        url = request.get("url")
        if isinstance(url, str) and "?" in url:
            base, _, rest = url.partition("?")
            query, hash_sign, fragment = rest.partition("#")
            sink: list[str] = []
            new_query = self._scrub_query(query, "request.url", mask, sink)
            if sink:
                request["url"] = f"{base}?{new_query}{hash_sign}{fragment}"
                out.append("request.url")

    def _scrub_user(self, user: dict[Any, Any], out: list[str], active: set[int]) -> None:
        removed = []
        for key, value in user.items():
            if isinstance(key, str) and self._flags(key) & _PII:
                if value is not None and not (isinstance(value, str) and not value):
                    removed.append(key)
            elif self.recursive and isinstance(value, _CONTAINERS) and value:
                self._scrub_container(user, key, value, f"user.{key}", 0, _PII, out, active, cards=False)
        for key in removed:
            del user[key]
            out.append(f"user.{key}")

    # -- generic walkers -----------------------------------------------------------------

    def _scrub_query(self, query: str, path: str, mask: int, out: list[str]) -> str:
        """A query string (``a=1&token=x``, optionally with a leading ``?``) with sensitive values filtered.

        Changes nothing but ``out``: one path is appended for each value that differs in the result.
        """
        if "=" not in query:
            return query
        parts = query.split("&")
        changed = False
        for i, part in enumerate(parts):
            raw_name, sep, raw_value = part.partition("=")
            if not sep or not raw_value:
                continue
            name = unquote_plus(raw_name.lstrip("?"))
            value = unquote_plus(raw_value)
            if value == FILTERED:  # both are str
                continue
            if name and self._flags(name) & mask:
                parts[i] = f"{raw_name}={FILTERED}"
            elif self.scrub_credit_cards and len(value) >= 13:
                filtered = _filter_cards(value)
                if filtered is value:
                    continue
                parts[i] = f"{raw_name}={quote_plus(filtered, safe='[]')}"
            else:
                continue
            changed = True
            out.append(f"{path}.{name}")
        return "&".join(parts) if changed else query

    def _scrub_pairs(self, pairs: list[Any] | tuple[Any, ...], path: str, mask: int, out: list[str]) -> Any:
        """Headers or query parameters as ``[[name, value], ...]``; returns a new list if anything changed.

        Changes nothing but ``out``: one path is appended for each pair that differs in the result.
        """
        result: list[Any] | None = None
        for i, pair in enumerate(pairs):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                continue
            name, value = pair
            if not isinstance(name, str):
                continue
            if self._flags(name) & mask:
                if _hides_nothing(value):
                    continue
                new_value: Any = FILTERED
            elif self.scrub_credit_cards and isinstance(value, str) and len(value) >= 13:
                new_value = _filter_cards(value)
                if new_value is value:
                    continue
            else:
                continue
            if result is None:
                result = list(pairs)
            result[i] = [name, new_value]
            out.append(f"{path}.{name}")
        return pairs if result is None else result

    def _scrub_dict(
        self,
        mapping: dict[Any, Any],
        path: str,
        depth: int,
        mask: int,
        out: list[str],
        active: set[int],
        cards: bool = True,
    ) -> None:
        cards = cards and self.scrub_credit_cards
        recursive = self.recursive and depth < MAX_DEPTH
        cache = self._cache
        # Assigning to existing keys while iterating is fine: the dict's size never changes.
        for key, value in mapping.items():
            if value is None or value is True or value is False:
                continue
            if type(key) is str:
                flags = cache.get(key)
                if flags is None:
                    flags = self._new_flags(key)
            else:
                flags = self._flags(key) if isinstance(key, str) else 0
            if flags & mask:
                if _hides_nothing(value):
                    continue
                new_value = (
                    FILTERED
                    if key.lower() != "cookies"
                    else _filter_cookies(value, _cookies_fallback(mapping, path, depth))
                )
                if new_value is not None:
                    out.append(f"{path}.{key}")  # first: a _Probe stops the walk before any change
                    mapping[key] = new_value
            elif type(value) is str:
                # Inlined _scrub_value: most values are short strings with nothing to find.
                if cards and len(value) >= 13 and _CARD_HINT.search(value) is not None:
                    new = _replace_cards(value)
                    if new is not value:
                        out.append(f"{path}.{key}")
                        mapping[key] = new
            elif recursive and isinstance(value, _CONTAINERS) and value:
                self._scrub_container(
                    mapping,
                    key,
                    value,
                    f"{path}.{key}",
                    depth,
                    mask,
                    out,
                    active,
                    cards,
                )

    def _scrub_value(
        self,
        parent: Any,
        key: Any,
        value: Any,
        path: str,
        depth: int,
        mask: int,
        out: list[str],
        active: set[int],
        cards: bool,
        recursive: bool,
    ) -> None:
        """A value whose key is not denied: filter card numbers in a string, or look inside a container."""
        if type(value) is str:
            if cards and len(value) >= 13 and _CARD_HINT.search(value) is not None:
                new = _replace_cards(value)
                if new is not value:
                    out.append(f"{path}.{key}")
                    parent[key] = new
        elif recursive and isinstance(value, _CONTAINERS) and value:
            self._scrub_container(parent, key, value, f"{path}.{key}", depth, mask, out, active, cards)

    def _scrub_list(
        self,
        items: list[Any],
        path: str,
        depth: int,
        mask: int,
        out: list[str],
        active: set[int],
        cards: bool = True,
    ) -> None:
        cards = cards and self.scrub_credit_cards
        recursive = self.recursive and depth < MAX_DEPTH
        for i, value in enumerate(items):
            self._scrub_value(items, i, value, path, depth, mask, out, active, cards, recursive)

    def _scrub_container(
        self,
        parent: Any,
        key: Any,
        value: dict[Any, Any] | list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any],
        path: str,
        depth: int,
        mask: int,
        out: list[str],
        active: set[int],
        cards: bool = True,
    ) -> None:
        """Scrub the nested ``value`` found at ``parent[key]`` (a tuple or set is replaced by a list if it changes).

        ``active`` holds the containers being scrubbed above this one: meeting one again is a cycle.
        """
        marker = id(value)
        if marker in active:
            return
        active.add(marker)
        try:
            if isinstance(value, dict):
                self._scrub_dict(value, path, depth + 1, mask, out, active, cards)
            elif isinstance(value, list):
                self._scrub_list(value, path, depth + 1, mask, out, active, cards)
            else:
                before = len(out)
                copy = list(value)
                self._scrub_list(copy, path, depth + 1, mask, out, active, cards)
                if len(out) > before:
                    parent[key] = copy
        finally:
            active.discard(marker)

    # -- the read-only pass of scrub_before_sending --------------------------------------
    #
    # Each ``*_dirty`` method mirrors a ``_scrub_*`` one without changing anything, and answers
    # True as soon as scrubbing would change something, or as soon as the copy that
    # scrub_before_sending used to make of each section (_copy_tree) would not be an exact
    # replica: a tuple (it becomes a list), a subclass of dict or list (it becomes a plain one),
    # a container _COPY_DEPTH levels below the section (it is shared; a cycle always leads
    # there). Anything else odd answers True too: True only costs the copy and the full scrub,
    # as before. Strings that could hold a card number (13 characters or more) are not searched
    # one by one but gathered in ``texts`` and searched at once for each part (_settle).

    def _plan(self, event: dict[str, Any]) -> tuple[str, ...]:
        """The parts of ``event`` (names from :data:`_PARTS`) to copy and scrub; empty if none.

        Empty when :meth:`scrub_event` would change nothing in ``event`` and copying its
        sections would give the very same values. Every part when the stack frames (which
        are not copied) would change. Otherwise the first section that would change and
        every section after it: once something is to be copied and scrubbed, doing the rest
        the straightforward way costs about what looking at it first would. Changes nothing;
        may raise on odd input.
        """
        if type(event) is not dict:
            return _PARTS
        if ("exception" in event or "threads" in event or "stacktrace" in event) and self._frames_dirty(event):
            return _PARTS
        mask = self._mask
        texts: list[str] | None = [] if self.scrub_credit_cards else None

        extra = event.get("extra")
        if extra is not None:
            if type(extra) is dict and extra:
                dirty = self._dict_dirty(extra, 0, 0, mask, texts)
            else:
                dirty = not _plain(extra, 0)
            if _settle(dirty, texts):
                return _SECTIONS_FROM["extra"]

        contexts = event.get("contexts")
        if contexts is not None:
            if type(contexts) is dict:
                dirty = False
                for name, context in contexts.items():
                    if type(context) is dict and context and name not in _CONTEXTS_KEPT:
                        dirty = self._dict_dirty(context, 1, 0, mask, texts)
                    else:
                        dirty = not _plain(context, 1)
                    if dirty:
                        break
            else:
                dirty = not _plain(contexts, 0)
            if _settle(dirty, texts):
                return _SECTIONS_FROM["contexts"]

        crumbs = event.get("breadcrumbs")
        if crumbs is not None:
            if type(crumbs) is dict:
                values = crumbs.get("values")
                dirty = not all(value is values or _plain(value, 1) for value in crumbs.values())
                if not dirty and type(values) is list:
                    dirty = self._crumbs_dirty(values, 1, mask, texts)
                elif not dirty:
                    dirty = not _plain(values, 1)
            elif type(crumbs) is list:
                dirty = self._crumbs_dirty(crumbs, 0, mask, texts)
            else:
                dirty = not _plain(crumbs, 0)
            if _settle(dirty, texts):
                return _SECTIONS_FROM["breadcrumbs"]

        request = event.get("request")
        if request is not None:
            dirty = self._request_dirty(request, mask, texts) if type(request) is dict else not _plain(request, 0)
            if _settle(dirty, texts):
                return _SECTIONS_FROM["request"]

        user = event.get("user")
        if user is not None:
            if type(user) is dict and user and not self.send_default_pii and self._pii is not None:
                dirty = self._user_dirty(user)
            else:
                dirty = not _plain(user, 0)
            if dirty:
                return _SECTIONS_FROM["user"]
        return ()

    def _dict_dirty(
        self,
        mapping: dict[Any, Any],
        level: int,
        depth: int,
        mask: int,
        texts: list[str] | None,
    ) -> bool:
        """Whether ``_scrub_dict(mapping, depth=depth)`` would change anything, or ``mapping`` not copy exactly.

        ``mapping`` is ``level`` levels below its section. Strings to search for card numbers
        are added to ``texts`` (``None`` when they are not searched: ``_scrub_dict``'s ``cards``).
        """
        if level >= _COPY_DEPTH:
            return True
        level += 1
        recursive = self.recursive and depth < MAX_DEPTH
        depth += 1
        cache = self._cache
        for key, value in mapping.items():
            if value is None or value is True or value is False:
                continue
            if type(key) is str:
                flags = cache.get(key)
                if flags is None:
                    flags = self._new_flags(key)
            else:
                flags = self._flags(key) if isinstance(key, str) else 0
            kind = type(value)
            if flags & mask:
                if not _hides_nothing(value) or (kind is not str and not _plain(value, level)):
                    return True
            elif kind is str:
                if texts is not None and len(value) >= 13:
                    texts.append(value)
            elif kind is dict or kind is list:
                if recursive and value:
                    if (self._dict_dirty if kind is dict else self._list_dirty)(value, level, depth, mask, texts):
                        return True
                elif not _plain(value, level):
                    return True
            elif kind is not int and kind is not float and isinstance(value, _CONTAINERS):
                return True
        return False

    def _list_dirty(
        self,
        items: list[Any],
        level: int,
        depth: int,
        mask: int,
        texts: list[str] | None,
    ) -> bool:
        """Whether ``_scrub_list(items, depth=depth)`` would change anything, or ``items`` not copy exactly."""
        if level >= _COPY_DEPTH:
            return True
        level += 1
        recursive = self.recursive and depth < MAX_DEPTH
        depth += 1
        for value in items:
            kind = type(value)
            if kind is str:
                if texts is not None and len(value) >= 13:
                    texts.append(value)
            elif kind is dict or kind is list:
                if recursive and value:
                    if (self._dict_dirty if kind is dict else self._list_dirty)(value, level, depth, mask, texts):
                        return True
                elif not _plain(value, level):
                    return True
            elif not _plain(value, level):
                return True
        return False

    def _crumbs_dirty(self, crumbs: list[Any], level: int, mask: int, texts: list[str] | None) -> bool:
        """The read-only pass over a list of breadcrumbs (at ``level``): only their ``data`` is scrubbed."""
        if level >= _COPY_DEPTH - 2:
            return True
        level += 1
        for crumb in crumbs:
            if type(crumb) is dict:
                data = crumb.get("data")
                for value in crumb.values():
                    kind = type(value)
                    if kind is str or kind is float or kind is int or value is None or value is data:
                        continue
                    if not _plain(value, level + 1):
                        return True
                if type(data) is dict:
                    if self._dict_dirty(data, level + 1, 0, mask, texts):
                        return True
                elif not _plain(data, level + 1):
                    return True
            elif not _plain(crumb, level):
                return True
        return False

    def _request_dirty(self, request: dict[Any, Any], mask: int, texts: list[str] | None) -> bool:
        """The read-only pass over ``request`` (at level 0), as :meth:`_scrub_request` sees it."""
        for key, value in request.items():
            if value is None:
                continue
            if type(key) is not str and type(key) is not int:
                return True  # could pass for "headers" or "url" in _scrub_request's lookups: the careful way
            kind = type(value)
            if key in _REQUEST_SCRUBBED:
                if kind is dict:
                    if self._dict_dirty(value, 1, 0, mask, texts):
                        return True
                elif kind is str:
                    if key == "query_string":
                        if "=" in value and self._query_dirty(value, mask):
                            return True
                    elif texts is not None and len(value) >= 13:
                        texts.append(value)
                elif kind is list:
                    if key == "headers" or key == "query_string":
                        sink: list[str] = []
                        self._scrub_pairs(value, "", mask, sink)
                        if sink or not _plain(value, 1):
                            return True
                    elif self.recursive:
                        if self._list_dirty(value, 1, 1, mask, texts):
                            return True
                    elif not _plain(value, 1):
                        return True
                elif isinstance(value, str):  # a str subclass: as _scrub_request takes it
                    if key == "query_string":
                        if self._query_dirty(value, mask):
                            return True
                    elif texts is not None and _filter_cards(value) is not value:
                        return True
                elif isinstance(value, _CONTAINERS):
                    return True  # a subclass, or a tuple
            elif key == "cookies":
                if not _hides_nothing(value) and _filter_cookies(value, {}) is not None:
                    return True
                if not _plain(value, 1):
                    return True
            elif key == "url" and isinstance(value, str):
                if "?" in value and self._query_dirty(value.partition("?")[2].partition("#")[0], mask):
                    return True
            elif kind is not str and not _plain(value, 1):
                return True
        return False

    def _query_dirty(self, query: str, mask: int) -> bool:
        """Whether :meth:`_scrub_query` would change ``query``."""
        sink: list[str] = []
        self._scrub_query(query, "", mask, sink)
        return bool(sink)

    def _user_dirty(self, user: dict[Any, Any]) -> bool:
        """The read-only pass over ``user`` (at level 0), as :meth:`_scrub_user` sees it."""
        cache = self._cache
        recursive = self.recursive
        for key, value in user.items():
            if type(key) is str:
                flags = cache.get(key)
                if flags is None:
                    flags = self._new_flags(key)
            else:
                flags = self._flags(key) if isinstance(key, str) else 0
            if flags & _PII:
                if value is not None and not (isinstance(value, str) and not value):
                    return True
                continue
            kind = type(value)
            if kind is dict or kind is list:
                if recursive and value:
                    if (self._dict_dirty if kind is dict else self._list_dirty)(value, 1, 1, _PII, None):
                        return True
                elif not _plain(value, 1):
                    return True
            elif kind is not str and not _plain(value, 1):
                return True
        return False

    def _frames_dirty(self, event: dict[str, Any]) -> bool:
        """Whether scrubbing would change the local variables of a stack frame.

        Frames are scrubbed in place, never copied: the scrubbing walk itself is run, with an
        ``out`` list that stops it before it changes anything.
        """
        try:
            self._scrub_frames(event, self._mask, _Probe(), set())
        except _Changed:
            return True
        return False


class _Changed(Exception):
    """Raised by :class:`_Probe`: the scrubbing walk was about to change something."""


class _Probe(list[str]):
    """An ``out`` list for the scrubbing walks that raises :class:`_Changed` instead of noting a path.

    The walks note a path before they change the value it names.
    """

    __slots__ = ()

    def append(self, path: str) -> None:
        raise _Changed(path)


def _settle(dirty: bool, texts: list[str] | None) -> bool:
    """Whether a part is dirty: ``dirty``, or one of ``texts`` holds a card number. Empties ``texts``.

    The strings are searched at once first: a NUL between them cannot be part of a digit
    run, so that search finds something exactly when the search of one of them would.
    """
    if not texts:
        return dirty
    found = dirty or _CARD_HINT.search(texts[0] if len(texts) == 1 else "\0".join(texts)) is not None
    if found and not dirty:
        found = False
        for text in texts:
            if _CARD_HINT.search(text) is not None and _has_card(text):
                found = True
                break
    texts.clear()
    return found


def _plain(value: Any, level: int) -> bool:
    """Whether ``_copy_tree(value)`` at ``level`` below a section gives an exact replica of ``value``.

    That is: the only containers in it are plain dicts and lists, all less than
    :data:`_COPY_DEPTH` levels below the section (a cycle never is).
    """
    kind = type(value)
    if kind is dict:
        items: Iterable[Any] = value.values()
    elif kind is list:
        items = value
    elif kind is str or value is None or kind is int or kind is float or kind is bool:
        return True
    else:
        return not isinstance(value, _CONTAINERS)
    if level >= _COPY_DEPTH:
        return False
    level += 1
    for item in items:
        kind = type(item)
        if kind is str or item is None or kind is int or kind is float or kind is bool:
            continue
        if kind is dict or kind is list:
            if not _plain(item, level):
                return False
        elif isinstance(item, _CONTAINERS):
            return False
    return True


def _cookies_fallback(mapping: dict[Any, Any], path: str, depth: int) -> object:
    """What unparsable ``cookies`` become: ``{}`` in the response context (Sentry types it), else ``[Filtered]``."""
    if depth == 0 and (path == "contexts.response" or mapping.get("type") == "response"):
        return {}
    return FILTERED


def _values(container: object, name: str) -> tuple[str, list[Any]]:
    """The ``values`` list of ``{"values": [...]}`` (or a bare list) and its path prefix."""
    if isinstance(container, dict):
        values = container.get("values")
        return f"{name}.values", values if isinstance(values, list) else []
    if isinstance(container, list):
        return name, container
    return name, []


_SCRUBBED_SECTIONS = ("extra", "contexts", "breadcrumbs", "request", "user")
#: Each section, and the sections after it.
_SECTIONS_FROM = {name: _SCRUBBED_SECTIONS[i:] for i, name in enumerate(_SCRUBBED_SECTIONS)}
#: The parts of an event the scrubber looks at, in the order it reports them; ``frames`` are the
#: local variables of ``exception``, ``threads`` and ``stacktrace`` (edited in place, never copied).
_PARTS: tuple[str, ...] = (
    "extra",
    "contexts",
    "breadcrumbs",
    "request",
    "frames",
    "user",
)
_REQUEST_SCRUBBED = ("headers", "data", "env", "query_string")
#: How deep ``_copy_tree`` copies a section: containers further down are shared with the original.
_COPY_DEPTH = 32
#: The rule id Sentry shows for a value the SDK filtered.
_RULE = "!sentry_feedback.event_scrubber"


def scrub_before_sending(scrubber: EventScrubber, event: dict[str, Any]) -> None:
    """Scrub ``event`` just before it is serialized, and note each filtered value in ``_meta``.

    A read-only pass first finds the parts the scrubber would change. Usually there is none,
    and the event is left as it is: nothing is copied. Otherwise the sections about to be
    edited are copied first, since their nested values may still be shared with the scopes.
    If the scrubber fails, the sections it would have looked at are removed rather than sent
    unscrubbed.
    """
    try:
        parts: tuple[str, ...] = _PARTS
        if type(scrubber).scrub_event is EventScrubber.scrub_event:  # a subclass's own scrub_event always runs
            try:
                parts = scrubber._plan(event)
            except Exception:  # odd input, or a dict another thread changes: the careful way
                parts = _PARTS
            if not parts:
                return
        for key in _SCRUBBED_SECTIONS:
            if key in parts and key in event:
                event[key] = _copy_tree(event[key])
        paths = scrubber.scrub_event(event) if parts is _PARTS else scrubber._scrub_parts(event, parts)
    except Exception:
        logger.exception("the event scrubber failed; extras, breadcrumbs, request and local variables removed")
        for key in ("extra", "breadcrumbs", "request"):
            event.pop(key, None)
        for section in ("exception", "threads"):
            for value in (event.get(section) or {}).get("values") or ():
                for frame in ((value.get("stacktrace") or {}).get("frames")) or ():
                    frame.pop("vars", None)
        return
    if paths:
        # Tell Sentry (and whoever reads the event) which values the SDK filtered.
        meta = event.setdefault("_meta", {})
        for path in paths:
            node = meta
            for part in path.split("."):
                node = node.setdefault(part, {})
            node[""] = {"rem": [[_RULE, "s"]]}


def _copy_tree(value: Any, depth: int = _COPY_DEPTH) -> Any:
    """A copy of the dicts and lists in ``value`` (other objects shared); each container is copied atomically.

    Dicts (of any dict subclass) become plain dicts, lists and tuples plain lists, down to
    ``depth`` levels; deeper containers are shared.
    """
    if depth <= 0:
        return value
    if isinstance(value, dict):
        if type(value) is not dict:
            return {k: _copy_tree(v, depth - 1) for k, v in value.copy().items()}
        copy = value.copy()
        if depth > 1:
            # Only the containers need a call: values are replaced in place (the size never changes).
            for k, v in copy.items():
                if type(v) is not str and isinstance(v, _CONTAINERS):
                    copy[k] = _copy_tree(v, depth - 1)
        return copy
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        if depth > 1:
            for i, v in enumerate(items):
                if type(v) is not str and isinstance(v, _CONTAINERS):
                    items[i] = _copy_tree(v, depth - 1)
        return items
    return value
