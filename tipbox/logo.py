"""The newsroom's logo: an upload decoded and re-encoded into a PNG of its pixels alone.

An uploaded PNG, JPEG, GIF or WebP is decoded by Pillow within a pixel budget checked
*before* decoding, shrunk to fit 512 x 512 and re-encoded as a fresh PNG from its pixels
alone: no EXIF, text chunk, ICC profile or anything else of the upload reaches a source,
and neither does a parser trick aimed at their browser. Only the admin side imports this
module: the source app serves the stored PNG and never loads Pillow (an import-linter
contract holds it to that).
"""

from __future__ import annotations

import io
import struct
from typing import Final

from PIL import Image, ImageOps
from sqlalchemy.orm import Session

from tipbox.config import MIB, Config
from tipbox.models import MAX_LOGO_BYTES
from tipbox.settings import Problem, Settings, SettingsError, store_logo

# The logo: what an admin may upload, and what a source is served.
MAX_LOGO_UPLOAD_BYTES: Final = MIB
# Checked from the header, before any pixel is decoded: 16 megapixels is 64 MiB as RGBA,
# the most one decode may take; Pillow's own bomb limit (89 megapixels) is far above it.
MAX_LOGO_PIXELS: Final = 4096 * 4096
LOGO_BOX: Final = 512
# Tried in turn until the PNG fits MAX_LOGO_BYTES (a photograph compresses badly).
_LOGO_SIDES: Final = (LOGO_BOX, 384, 256, 128)
# What a file starts with, for the formats accepted; anything else is refused unread.
_SIGNATURES: Final = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
)


def set_logo(session: Session, config: Config, actor_id: int | None, upload: bytes) -> Settings:
    """Re-encode ``upload`` (``prepare_logo``) and make it the logo; ``SettingsError`` with
    field ``logo`` if it is refused. Records ``settings.change`` when the logo changed."""
    return store_logo(session, config, actor_id, prepare_logo(upload))


def prepare_logo(upload: bytes) -> bytes:
    """The PNG a source is served for an uploaded logo, or ``SettingsError`` (field
    ``logo``): too large, not one of the four formats, too many pixels, unreadable.

    The format is recognised from the first bytes and Pillow may use that decoder only;
    the pixel count is checked from the header before anything is decoded. The result is
    a new image built from the decoded pixels alone (turned upright from the EXIF
    orientation, RGB or RGBA, shrunk to fit ``LOGO_BOX``), saved as PNG with nothing else;
    shrunk further while the PNG is over ``MAX_LOGO_BYTES``.
    """
    if not upload:
        raise SettingsError([Problem("logo", "empty")])
    if len(upload) > MAX_LOGO_UPLOAD_BYTES:
        raise SettingsError([Problem("logo", "too_large", MAX_LOGO_UPLOAD_BYTES)])
    image_format = _format_of(upload)
    if image_format is None:
        raise SettingsError([Problem("logo", "not_an_image")])
    try:
        pixels = _decoded(upload, image_format)
    except SettingsError:
        raise
    except Image.DecompressionBombError:
        # Pillow's own limit, which its open() checks before ours can (a far larger one).
        raise SettingsError([Problem("logo", "too_many_pixels", MAX_LOGO_PIXELS)]) from None
    # What Pillow raises for damaged input: OSError (truncated, or not decodable, as
    # UnidentifiedImageError), SyntaxError and ValueError from its parsers, EOFError and
    # struct.error from short reads.
    except (OSError, SyntaxError, ValueError, EOFError, struct.error):
        raise SettingsError([Problem("logo", "unreadable")]) from None
    for side in _LOGO_SIDES:
        png = _png(pixels, side)
        if len(png) <= MAX_LOGO_BYTES:
            return png
    raise SettingsError([Problem("logo", "too_detailed")])


def _format_of(data: bytes) -> str | None:
    for signature, image_format in _SIGNATURES:
        if data.startswith(signature):
            return image_format
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _decoded(upload: bytes, image_format: str) -> Image.Image:
    """The first frame's pixels, upright, in RGB or RGBA, fitted into ``LOGO_BOX``, with
    no metadata attached."""
    with Image.open(io.BytesIO(upload), formats=[image_format]) as image:
        width, height = image.size
        if width < 1 or height < 1 or width * height > MAX_LOGO_PIXELS:
            raise SettingsError([Problem("logo", "too_many_pixels", MAX_LOGO_PIXELS)])
        if image_format == "JPEG":
            # Let the JPEG decoder scale down while decoding: less memory and time.
            image.draft("RGB", (LOGO_BOX, LOGO_BOX))
        image.load()
        upright = _upright(image)
        has_alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
        mode = "RGBA" if has_alpha else "RGB"
        pixels = upright if upright.mode == mode else upright.convert(mode)
        # Shrunk first (in place), so the copies below are small whatever was uploaded.
        pixels.thumbnail((LOGO_BOX, LOGO_BOX), Image.Resampling.LANCZOS)
        # A new image from the raw pixels: nothing of the upload's info (EXIF, ICC, text
        # chunks, comments, XMP) can follow it into the saved PNG.
        return Image.frombytes(pixels.mode, pixels.size, pixels.tobytes())


def _upright(image: Image.Image) -> Image.Image:
    # The orientation is a nicety: a logo whose EXIF Pillow cannot parse is kept as it is.
    try:
        return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, EOFError, struct.error):
        return image


def _png(pixels: Image.Image, side: int) -> bytes:
    shrunk = pixels.copy()
    shrunk.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    # No pnginfo, icc_profile, exif or dpi: IHDR, IDAT and IEND only.
    shrunk.save(out, format="PNG", optimize=True)
    return out.getvalue()
