"""Instance settings (``tipbox.settings``): read, checked updates, the audit trail, the logo.

Real database (each backend); images made with Pillow and by hand, nothing mocked.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from dataclasses import replace
from typing import Any

import pytest
from PIL import Image, ImageCms
from PIL.PngImagePlugin import PngInfo
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tipbox import logo, settings
from tipbox.config import MIB, Config
from tipbox.models import MAX_LOGO_BYTES, AuditEvent, InstanceSettings
from tipbox.settings import SettingsError
from tipbox.submission_rules import Limits

from .opened import OpenedInstance, open_instance

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GPS_IFD = 0x8825
ORIENTATION = 0x0112


@pytest.fixture
def desk(db: Session, config: Config) -> OpenedInstance:
    return open_instance(db, config)


def _events(db: Session) -> list[tuple[str, dict[str, Any]]]:
    rows = db.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    return [(row.action, dict(row.detail)) for row in rows]


def _settings_events(db: Session) -> list[dict[str, Any]]:
    return [detail for action, detail in _events(db) if action == "settings.change"]


# --- reading and updating ------------------------------------------------------------------


def test_a_new_instance_has_the_defaults(db: Session, config: Config, desk: OpenedInstance) -> None:
    found = settings.read(db, config)
    assert found == settings.Settings(
        name="Test",
        description="",
        languages=("en", "ru", "kk"),
        limits=Limits.from_config(config),
        files_accepted=True,
        retention_days=90,
        logo_hash=None,
    )
    assert found.submission_limits == found.limits
    assert found.submission_limits.accepts_files


def test_an_update_is_stored_and_audited_once_by_group(
    db: Session, config: Config, desk: OpenedInstance
) -> None:
    after = settings.update(
        db,
        config,
        desk.admin.id,
        name="  Свободная газета  ",
        description="Tips welcome.\r\nWe read every message.\r",
        languages=["kk", "en"],
        max_message_chars=20_000,
        max_files=3,
        max_file_bytes=50 * MIB,
        files_accepted=False,
        retention_days=None,
    )
    db.commit()
    assert after == settings.read(db, config)
    assert after.name == "Свободная газета"
    assert after.description == "Tips welcome.\nWe read every message."
    assert after.languages == ("kk", "en")
    assert after.limits == replace(
        Limits.from_config(config),
        max_message_chars=20_000,
        max_files=3,
        max_file_bytes=50 * MIB,
    )
    assert after.files_accepted is False
    assert after.retention_days is None
    assert after.submission_limits.max_files == 0
    assert not after.submission_limits.accepts_files
    assert _settings_events(db) == [{"fields": "name+description+languages+limits+files+retention"}]
    row = db.get(InstanceSettings, 1)
    assert row is not None
    assert row.languages == "kk,en"
    assert row.limits == {"max_message_chars": 20_000, "max_files": 3, "max_file_bytes": 50 * MIB}


def test_an_update_that_changes_nothing_records_nothing(
    db: Session, config: Config, desk: OpenedInstance
) -> None:
    settings.update(db, config, desk.admin.id, retention_days=30, max_files=None)
    db.commit()
    assert _settings_events(db) == [{"fields": "retention"}]
    settings.update(
        db,
        config,
        desk.admin.id,
        name="Test",
        languages=("en", "ru", "kk"),
        retention_days=30,
        max_files=None,
        files_accepted=True,
    )
    settings.update(db, config, desk.admin.id)
    db.commit()
    assert _settings_events(db) == [{"fields": "retention"}]


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"name": ""}, "name", "empty"),
        ({"name": " \n "}, "name", "empty"),
        ({"name": "x" * 101}, "name", "too_long"),
        ({"name": "Times\nof Day"}, "name", "bad_character"),
        ({"name": "Times\x00"}, "name", "bad_character"),
        ({"name": "Times \u202egpj.exe"}, "name", "bad_character"),  # right-to-left override
        ({"name": "Times\u2028Daily"}, "name", "bad_character"),  # line separator
        ({"name": "Times\ue000"}, "name", "bad_character"),  # private use
        ({"description": "x" * 2001}, "description", "too_long"),
        ({"description": "a\u2066hidden\u2069"}, "description", "bad_character"),
        ({"description": "tab\there"}, "description", "bad_character"),
        ({"description": "\ufeffbom"}, "description", "bad_character"),
        ({"languages": []}, "languages", "empty"),
        ({"languages": ["en", "de"]}, "languages", "unknown_language"),
        ({"languages": ["ru", "ru"]}, "languages", "duplicate_language"),
        ({"max_files": 0}, "max_files", "too_small"),
        ({"max_files": 11}, "max_files", "above_config"),
        ({"max_files": True}, "max_files", "not_a_number"),
        ({"max_file_bytes": 501 * MIB}, "max_file_bytes", "above_config"),
        ({"max_file_bytes": 1000}, "max_file_bytes", "too_small"),
        ({"max_message_chars": 999}, "max_message_chars", "too_small"),
        ({"max_message_chars": 100_001}, "max_message_chars", "above_config"),
        ({"retention_days": 0}, "retention_days", "out_of_range"),
        ({"retention_days": 3651}, "retention_days", "out_of_range"),
        ({"retention_days": 30.5}, "retention_days", "not_a_number"),
    ],
)
def test_what_is_refused_and_nothing_is_stored(
    db: Session,
    config: Config,
    desk: OpenedInstance,
    changes: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    before = settings.read(db, config)
    # A valid change beside the refused one is not stored either.
    valid: dict[str, Any] = {"name": "Ok", "retention_days": 7}
    with pytest.raises(SettingsError) as refused:
        settings.update(db, config, desk.admin.id, **(valid | changes))
    assert (refused.value.field, refused.value.reason) == (field, reason)
    assert str(refused.value).startswith(field)
    db.rollback()
    assert settings.read(db, config) == before
    assert _settings_events(db) == []


def test_every_refused_field_is_reported(db: Session, config: Config, desk: OpenedInstance) -> None:
    with pytest.raises(SettingsError) as refused:
        settings.update(
            db, config, desk.admin.id, name="", languages=["xx"], max_files=99, retention_days=-1
        )
    assert [(p.field, p.reason, p.limit) for p in refused.value.problems] == [
        ("name", "empty", None),
        ("languages", "unknown_language", None),
        ("max_files", "above_config", 10),
        ("retention_days", "out_of_range", 3650),
    ]
    assert "max_files must be at most 10" in str(refused.value)


@pytest.mark.parametrize(
    "name",
    [
        "Қазақ үні",
        "روزنامه\u200cی آزاد",  # Persian with a zero-width non-joiner: part of the spelling
        "Newsroom \U0001f469\u200d\U0001f4bb",  # an emoji sequence with a zero-width joiner
        "x" * 100,
    ],
)
def test_names_in_any_script_are_kept_as_written(
    db: Session, config: Config, desk: OpenedInstance, name: str
) -> None:
    assert settings.update(db, config, desk.admin.id, name=name).name == name


def test_the_configuration_is_the_ceiling_of_every_limit(
    db: Session, config: Config, desk: OpenedInstance
) -> None:
    settings.update(db, config, desk.admin.id, max_files=8, max_file_bytes=100 * MIB)
    db.commit()
    # The operator lowers the configuration below what the admin chose: it wins.
    lower = replace(config, max_files=4, max_file_bytes=2 * MIB, max_message_chars=500)
    found = settings.read(db, lower).limits
    assert (found.max_files, found.max_file_bytes, found.max_message_chars) == (4, 2 * MIB, 500)
    # Below a floor the configuration's value is the floor.
    with pytest.raises(SettingsError) as refused:
        settings.update(db, lower, desk.admin.id, max_message_chars=400)
    assert (refused.value.reason, refused.value.problems[0].limit) == ("too_small", 500)
    assert settings.update(db, lower, desk.admin.id, max_message_chars=500).limits == found
    # None: follow the configuration again.
    back = settings.update(db, config, desk.admin.id, max_files=None, max_file_bytes=None)
    assert back.limits.max_files == config.max_files
    assert back.limits.max_file_bytes == config.max_file_bytes


def test_malformed_stored_limits_are_ignored(
    db: Session, config: Config, desk: OpenedInstance
) -> None:
    bad = {"max_files": "7", "max_file_bytes": True, "max_message_chars": -5, "other": 1}
    db.execute(update(InstanceSettings).values(limits=bad, languages="de, ru,,ru"))
    db.commit()
    found = settings.read(db, config)
    assert found.limits == Limits.from_config(config)
    assert found.languages == ("ru",)
    db.execute(update(InstanceSettings).values(languages="de"))
    assert settings.read(db, config).languages == ("en", "ru", "kk")


# --- the logo: what is made of an upload ---------------------------------------------------


def _encoded(image: Image.Image, image_format: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=image_format, **options)
    return out.getvalue()


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """A PNG's chunks (type, data), checking the signature and every CRC."""
    assert png.startswith(PNG_SIGNATURE)
    chunks, at = [], len(PNG_SIGNATURE)
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind, data = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", png[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + data)
        chunks.append((kind, data))
        at += 12 + length
    return chunks


def _assert_pixels_only(png: bytes) -> Image.Image:
    """The PNG holds image data and nothing else; returns it decoded."""
    kinds = [kind for kind, _ in _chunks(png)]
    assert kinds[0] == b"IHDR"
    assert kinds[-1] == b"IEND"
    assert set(kinds) <= {b"IHDR", b"IDAT", b"IEND"}
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG"
    assert image.mode in ("RGB", "RGBA")
    assert not image.getexif()
    assert not {"exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "dpi"} & set(image.info)
    return image


def _photo(width: int, height: int) -> Image.Image:
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    image.paste((200, 30, 30), (0, 0, width // 4, height // 4))
    return image


def test_a_jpeg_with_gps_comes_out_with_no_metadata_and_upright() -> None:
    photo = _photo(800, 400)
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # make
    exif[0x0131] = "Editor 1.0 on laptop-of-jane"  # software
    exif[ORIENTATION] = 6  # shot rotated: shown turned 90 degrees clockwise
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "N", 2: (43.0, 15.0, 30.0), 3: "E", 4: (76.0, 53.0, 10.0)})
    upload = _encoded(photo, "JPEG", exif=exif.tobytes(), comment=b"taken at the office")
    # The upload really carries the location.
    with Image.open(io.BytesIO(upload)) as original:
        assert original.getexif().get_ifd(GPS_IFD)[2] == (43.0, 15.0, 30.0)
    png = logo.prepare_logo(upload)
    shown = _assert_pixels_only(png)
    assert shown.size == (256, 512)  # turned upright, then fitted into 512 x 512
    assert shown.mode == "RGB"
    for needle in (b"SecretCam", b"laptop-of-jane", b"office", b"Exif"):
        assert needle not in png


def test_a_png_with_text_chunks_and_an_icc_profile_comes_out_with_none() -> None:
    image = Image.new("RGBA", (300, 120), (20, 40, 60, 128))
    info = PngInfo()
    info.add_text("Author", "Jane Reporter")
    info.add_text("Comment", "from the private archive", zip=True)
    info.add_itxt("Description", "внутренний документ", lang="ru")
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    upload = _encoded(image, "PNG", pnginfo=info, icc_profile=profile, dpi=(300, 300))
    kinds = {kind for kind, _ in _chunks(upload)}
    assert {b"tEXt", b"zTXt", b"iTXt", b"iCCP", b"pHYs"} <= kinds
    png = logo.prepare_logo(upload)
    shown = _assert_pixels_only(png)
    assert shown.size == (300, 120)  # small enough already: not enlarged
    assert shown.mode == "RGBA"
    assert shown.getpixel((10, 10)) == (20, 40, 60, 128)
    for needle in (b"Jane", b"archive", "внутренний".encode()):
        assert needle not in png


@pytest.mark.parametrize(
    ("image_format", "options"),
    [
        ("GIF", {"comment": b"secret comment"}),
        ("WEBP", {"exif": b"Exif\x00\x00secret", "xmp": b"<x:xmpmeta>secret</x:xmpmeta>"}),
    ],
)
def test_gif_and_webp_are_accepted_and_cleaned(image_format: str, options: dict[str, Any]) -> None:
    upload = _encoded(
        _photo(640, 640).convert("P" if image_format == "GIF" else "RGB"), image_format, **options
    )
    png = logo.prepare_logo(upload)
    assert _assert_pixels_only(png).size == (512, 512)
    assert b"secret" not in png


def test_a_transparent_palette_image_keeps_its_transparency() -> None:
    image = Image.new("P", (64, 64), 0)
    image.putpalette([255, 255, 255, 200, 0, 0] + [0] * 762)
    image.paste(1, (16, 16, 48, 48))
    upload = _encoded(image, "PNG", transparency=0)
    shown = _assert_pixels_only(logo.prepare_logo(upload))
    assert shown.mode == "RGBA"
    assert shown.getpixel((0, 0)) == (255, 255, 255, 0)
    assert shown.getpixel((32, 32)) == (200, 0, 0, 255)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` (1-bit grey) and holds a few rows: a
    decompression bomb's header, costing nothing to build."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * ((width + 7) // 8 + 1) * 4)
    return PNG_SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def _gif_claiming(width: int, height: int) -> bytes:
    """A small GIF whose logical screen claims ``width`` x ``height``."""
    small = _encoded(Image.new("P", (8, 8)), "GIF")
    return small[:6] + struct.pack("<HH", width, height) + small[10:]


def _valid_png() -> bytes:
    return _encoded(_photo(400, 300), "PNG")


@pytest.mark.parametrize(
    ("upload", "reason"),
    [
        (b"", "empty"),
        (PNG_SIGNATURE + bytes(logo.MAX_LOGO_UPLOAD_BYTES), "too_large"),
        (b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", "not_an_image"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "not_an_image",
        ),
        (_encoded(_photo(20, 20), "BMP"), "not_an_image"),
        (_encoded(_photo(20, 20), "TIFF"), "not_an_image"),
        (_valid_png()[: len(_valid_png()) // 2], "unreadable"),  # truncated
        (_encoded(_photo(300, 300), "JPEG")[:700], "unreadable"),
        (PNG_SIGNATURE + b"\x00" * 40, "unreadable"),
        (b"\xff\xd8\xff\xe0" + b"garbage" * 10, "unreadable"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 20, "unreadable"),
        (_png_header_only(50_000, 50_000), "too_many_pixels"),  # a decompression bomb
        (_png_header_only(4097, 4096), "too_many_pixels"),
        (_png_header_only(4096 * 4096 + 1, 1), "too_many_pixels"),
        (_gif_claiming(65_535, 65_535), "too_many_pixels"),
    ],
)
def test_what_is_refused_as_a_logo(upload: bytes, reason: str) -> None:
    with pytest.raises(SettingsError) as refused:
        logo.prepare_logo(upload)
    assert refused.value.field == "logo"
    assert refused.value.reason == reason


def test_a_bomb_is_refused_before_pillow_decodes_it() -> None:
    # Pillow's open() refuses past twice its own limit (and only warns below that); our
    # budget is far lower, checked from the header before a pixel is decoded.
    assert Image.MAX_IMAGE_PIXELS is not None
    assert logo.MAX_LOGO_PIXELS < Image.MAX_IMAGE_PIXELS
    with pytest.raises(SettingsError) as refused:
        logo.prepare_logo(_png_header_only(5000, 5000))
    assert refused.value.problems[0].limit == logo.MAX_LOGO_PIXELS
    # Right at the budget, the same kind of file is decoded (and is mostly blank).
    shown = _assert_pixels_only(logo.prepare_logo(_png_header_only(4096, 4096)))
    assert shown.size == (512, 512)


def test_a_detailed_image_is_shrunk_until_it_fits() -> None:
    # 32 rows of noise repeated: WebP finds the repeats 64 KiB back, PNG's deflate (a 32 KiB
    # window) cannot, so the 512 x 512 PNG would be over the 1 MiB a logo may take.
    tile = hashlib.shake_256(b"noise").digest(512 * 32 * 4)
    image = Image.frombytes("RGBA", (512, 512), tile * 16)
    assert len(_encoded(image, "PNG")) > MAX_LOGO_BYTES
    upload = _encoded(image, "WEBP", lossless=True)
    assert len(upload) <= logo.MAX_LOGO_UPLOAD_BYTES
    png = logo.prepare_logo(upload)
    assert len(png) <= MAX_LOGO_BYTES
    assert _assert_pixels_only(png).size == (384, 384)


# --- the logo: stored, served, replaced ----------------------------------------------------


def test_set_replace_and_remove_the_logo(db: Session, config: Config, desk: OpenedInstance) -> None:
    first = logo.set_logo(db, config, desk.admin.id, _valid_png())
    db.commit()
    assert first.logo_hash is not None
    stored = settings.logo_png(db, first.logo_hash)
    assert stored is not None
    assert first.logo_hash == hashlib.blake2b(stored, digest_size=16).digest()
    assert settings.logo_png(db, bytes(16)) is None
    # The same picture again changes nothing and records nothing.
    assert logo.set_logo(db, config, desk.admin.id, _valid_png()) == first

    second = logo.set_logo(db, config, desk.admin.id, _encoded(_photo(90, 90), "GIF"))
    db.commit()
    assert second.logo_hash not in (None, first.logo_hash)
    assert settings.logo_png(db, first.logo_hash) is None  # the old address is gone

    with pytest.raises(SettingsError):
        logo.set_logo(db, config, desk.admin.id, b"not an image")
    db.rollback()
    assert settings.read(db, config).logo_hash == second.logo_hash

    assert settings.remove_logo(db, config, desk.admin.id).logo_hash is None
    settings.remove_logo(db, config, desk.admin.id)
    db.commit()
    assert _settings_events(db) == [{"fields": "logo"}] * 3
