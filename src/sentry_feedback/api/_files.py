"""Safe file names for downloaded attachments, and the file name of a ``Content-Disposition`` header."""

from __future__ import annotations

import email.message
import email.utils
import re

_UNSAFE_CHARS = re.compile(r'[\x00-\x1f\x7f-\x9f<>:"/\\|?*]')
_WINDOWS_RESERVED = re.compile(r"(?i)(con|prn|aux|nul|com\d|lpt\d)(\..*)?")
_MAX_NAME = 200


def _safe_file_name(name: str | None, fallback: str) -> str:
    """A file name that stays in its folder: no directories, no ``..``, no control characters.

    ``"../../etc/passwd"`` gives ``"passwd"``; leading dots are dropped (no hidden
    files); an empty result gives ``fallback`` (made safe the same way).
    """
    for candidate in (name, fallback, "attachment"):
        text = (candidate or "").replace("\\", "/").rsplit("/", 1)[-1]
        text = _UNSAFE_CHARS.sub("_", text).strip().lstrip(".").rstrip(". ")
        if not text:
            continue
        if _WINDOWS_RESERVED.fullmatch(text):
            text = "_" + text
        if len(text) > _MAX_NAME:
            stem, dot, suffix = text.rpartition(".")
            suffix = suffix[:20] if dot and stem else ""
            text = text[: _MAX_NAME - len(suffix) - 1] + "." + suffix if suffix else text[:_MAX_NAME]
        return text
    return "attachment"  # pragma: no cover - the last candidate is always safe


def _disposition_name(header: str | None) -> str | None:
    """The file name of a ``Content-Disposition`` header: ``filename*`` (RFC 6266 prefers it), else ``filename``."""
    if not header:
        return None
    try:
        message = email.message.Message()
        message["content-disposition"] = header
        plain: str | None = None
        for key, value in (message.get_params(header="content-disposition") or [])[1:]:
            if key.lower() != "filename":
                continue
            if isinstance(value, tuple):  # filename*=UTF-8''...
                try:
                    return str(email.utils.collapse_rfc2231_value(value))
                except (LookupError, UnicodeError):  # its charset cannot decode it: the plain name, if any
                    continue
            if plain is None and isinstance(value, str):
                plain = value
        return plain
    except Exception:  # a hostile header must not break a download
        return None
