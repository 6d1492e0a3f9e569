"""Where ``download_to`` saves a file into a folder when the server's ``Content-Disposition`` is odd or hostile."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentry_feedback.api import FeedbackApi, FeedbackAttachment
from sentry_feedback.api._files import _disposition_name, _safe_file_name

from .scripted import Answer, Recorded, ScriptedServer

FEEDBACK_ID = "1ffe0775ac0f4417aed9de36d9f6f8dc"
ATTACHMENT_PATH = "/api/0/projects/acme/web/user-feedback/1ffe0775ac0f4417aed9de36d9f6f8dc/attachments/7/"


def download_into_folder(
    scripted: ScriptedServer,
    sapi: FeedbackApi,
    folder: Path,
    headers: dict[str, str],
    attachment: str | FeedbackAttachment = "7",
) -> Path:
    """Download attachment 7 by id into ``folder`` from a server answering with ``headers``."""

    def handler(request: Recorded) -> Answer:
        if request.path != ATTACHMENT_PATH:
            return Answer(404, {"detail": "unexpected request"})
        return Answer(200, b"file content", headers)

    scripted.handler = handler
    folder.mkdir(exist_ok=True)
    saved = sapi.download_to(FEEDBACK_ID, attachment, folder)
    assert saved.parent == folder
    assert saved.read_bytes() == b"file content"
    assert [path.name for path in folder.iterdir()] == [saved.name]  # no temporary file left
    return saved


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        # No name from the server: the attachment's id.
        ({}, "attachment-7"),
        ({"Content-Disposition": ""}, "attachment-7"),
        ({"Content-Disposition": "attachment"}, "attachment-7"),
        ({"Content-Disposition": 'attachment; name="upload"; size=12'}, "attachment-7"),
        # Other parameters around the file name are skipped.
        ({"Content-Disposition": 'attachment; name="upload"; size=12; filename="report.pdf"'}, "report.pdf"),
        ({"Content-Disposition": 'form-data; filename="a.txt"; creation-date="Wed, 12 Feb 1997"'}, "a.txt"),
        ({"Content-Disposition": "inline; FILENAME=upper.txt"}, "upper.txt"),
        # filename* wins over filename, decoded from its charset.
        ({"Content-Disposition": "attachment; filename=\"plain.txt\"; filename*=UTF-8''na%C3%AFve.txt"}, "naïve.txt"),
        # A filename* whose charset cannot decode it: no name, not a failed download.
        ({"Content-Disposition": "attachment; filename*=idna''xn--evil.exe"}, "attachment-7"),
        # ... then the plain filename, wherever it stands.
        ({"Content-Disposition": "attachment; filename*=idna''xn--evil.exe; filename=\"plain.txt\""}, "plain.txt"),
        ({"Content-Disposition": "attachment; filename=\"plain.txt\"; filename*=idna''xn--evil.exe"}, "plain.txt"),
        # An unknown charset: the text as it is.
        ({"Content-Disposition": "attachment; filename*=no-such-charset''raw.txt"}, "raw.txt"),
        # Hostile names stay inside the folder.
        ({"Content-Disposition": "attachment; filename*=UTF-8''..%2F..%2F.profile"}, "profile"),
        ({"Content-Disposition": 'attachment; filename="CON.txt"'}, "_CON.txt"),
        ({"Content-Disposition": "attachment; filename*=UTF-8''a%00b%1Bc%7Fd"}, "a_b_c_d"),
        ({"Content-Disposition": "attachment; filename*=UTF-8''csi%C2%9B2J%C2%85.txt"}, "csi_2J_.txt"),
        ({"Content-Disposition": 'attachment; filename="' + "x" * 300 + '.tar.gz"'}, "x" * 197 + ".gz"),
    ],
)
def test_download_to_a_folder_names_the_file_from_the_header(
    scripted: ScriptedServer, sapi: FeedbackApi, tmp_path: Path, headers: dict[str, str], expected: str
) -> None:
    saved = download_into_folder(scripted, sapi, tmp_path / "downloads", headers)
    assert saved.name == expected


def test_the_listed_name_wins_over_the_header_and_loses_its_control_characters(
    scripted: ScriptedServer, sapi: FeedbackApi, tmp_path: Path
) -> None:
    listed = FeedbackAttachment(id="7", name="shot\u009b31m\u0085.png")
    headers = {"Content-Disposition": 'attachment; filename="other.png"'}
    saved = download_into_folder(scripted, sapi, tmp_path / "downloads", headers, listed)
    assert saved.name == "shot_31m_.png"


HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=80)
HEADER_PARTS = st.lists(
    st.sampled_from(
        [
            "attachment",
            "inline",
            ";",
            " ",
            "=",
            '"',
            "'",
            "*",
            "%",
            "filename",
            "filename*",
            "name",
            "UTF-8''",
            "idna''",
        ]
    )
    | HEADER_TEXT,
    max_size=12,
).map("".join)


@settings(max_examples=50, deadline=None)
@given(HEADER_PARTS)
def test_any_header_gives_a_safe_name_or_none(header: str) -> None:
    name = _disposition_name(header)
    assert name is None or isinstance(name, str)
    safe = _safe_file_name(name, "attachment-7")
    assert safe and safe not in (".", "..") and not safe.startswith(".")
    assert "/" not in safe and "\\" not in safe
    assert not any(unicodedata.category(ch) == "Cc" for ch in safe)
    assert len(safe) <= 200
