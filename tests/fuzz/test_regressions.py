"""Plain example tests for what the fuzz tests found: each was a crash or a 500.

1. A session payload, a key file or a signed backup manifest nested thousands deep raised
   ``RecursionError`` (the JSON decoder's), not ``Rejected``/``BackupRefused``; a signed
   manifest with a size of ``1e400`` raised ``OverflowError``.
2. ``read_identity_file`` raised ``UnicodeDecodeError`` on a key file that is not UTF-8.
3. A raw non-ASCII byte in a URL's query string (``GET /?\\x80``) was a 500 in both apps
   (Werkzeug decodes the query string as strict UTF-8).
4. A multipart part without a name was a 500 in both apps (a ``None`` key in the form).
5. ``page=²`` on the inbox and ``²`` in a number field of the settings were a 500
   (``"²".isdigit()`` is true, ``int("²")`` fails).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tipbox import backup, restore
from tipbox.crypto import sessionbox
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import IDENTITY_JSON, parse_identity_file, read_identity_file
from tipbox.crypto.recovery import parse_recovery_public_file

from .conftest import SourceRig, assert_clean_answer
from .test_backup_reader import BY_FINGERPRINT, VALID_MANIFEST, archive
from .test_journalist_forms import JournalistRig, journalist_rig  # noqa: F401

DEEP = "[" * 100_000


def test_deep_session_payload_is_rejected() -> None:
    with pytest.raises(Rejected):
        sessionbox.decode_payload(b'{"data":' * 5000 + b"1" + b"}" * 5000)


@pytest.mark.parametrize("parse", [parse_identity_file, parse_recovery_public_file])
def test_deep_key_file_is_rejected(parse: object) -> None:
    assert callable(parse)
    with pytest.raises(Rejected, match=r"_file\.json"):
        parse("[" * 10_000)


def test_identity_file_that_is_not_utf8_is_rejected(tmp_path: Path) -> None:
    (tmp_path / IDENTITY_JSON).write_bytes(b"\x80{}")
    with pytest.raises(Rejected, match=r"identity_file\.json"):
        read_identity_file(tmp_path)


@pytest.mark.parametrize(
    "manifest",
    [
        b'{"format":' * 5000,
        VALID_MANIFEST.replace(b'"size": 0', b'"size": 1e400', 1),
    ],
)
def test_hostile_signed_manifest_is_refused(tmp_path: Path, manifest: bytes) -> None:
    path = tmp_path / "backup.tar"
    path.write_bytes(archive(manifest))
    with pytest.raises(backup.BackupRefused, match="manifest is malformed"):
        restore.verify_archive(path, BY_FINGERPRINT)


def test_raw_bytes_in_a_query_string_are_not_a_500(
    source_rig: SourceRig,
    journalist_rig: JournalistRig,  # noqa: F811
) -> None:
    for client in (source_rig.app.test_client(), journalist_rig.client):
        response = client.get("/", environ_overrides={"QUERY_STRING": "lang=\x80\xff"})
        assert response.status_code == 200
        assert_clean_answer(response)


NAMELESS = b"--b0undary\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b0undary--\r\n"


def test_a_nameless_part_is_refused_by_the_source_app(source_rig: SourceRig) -> None:
    before = source_rig.item_count()
    token = source_rig.token.encode()
    body = (
        (b'--b0undary\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n' + token)
        + b"\r\n"
        + NAMELESS
    )
    for data in (NAMELESS, body):
        response = source_rig.client.post(
            "/submit",
            input_stream=io.BytesIO(data),
            content_type="multipart/form-data; boundary=b0undary",
        )
        assert response.status_code == 400
        assert_clean_answer(response)
    source_rig.assert_nothing_half_stored(before, accepted=False)


def test_a_nameless_part_is_ignored_by_the_journalist_app(
    journalist_rig: JournalistRig,  # noqa: F811
) -> None:
    response = journalist_rig.client.post(
        f"/sources/{journalist_rig.source_hex}/star",
        input_stream=io.BytesIO(NAMELESS),
        content_type="multipart/form-data; boundary=b0undary",
    )
    assert response.status_code == 400  # no CSRF token: refused, not a crash
    assert "Form expired" in response.get_data(as_text=True)


def test_superscript_digits_are_a_400_in_the_journalist_app(
    journalist_rig: JournalistRig,  # noqa: F811
) -> None:
    rig = journalist_rig
    response = rig.client.get("/?page=%C2%B2")
    assert response.status_code == 400
    rig.refresh_token("/admin/settings")
    response = rig.client.post(
        "/admin/settings",
        data={"csrf_token": rig.token, "name": "Fuzz Times", "max_files": "²"},
    )
    assert response.status_code == 400
    assert "must be a whole number" in response.get_data(as_text=True)
