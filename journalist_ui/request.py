"""The journalist app's request class: an uploaded file (an admin's logo) stays in memory.

Werkzeug writes an upload over 500 KB to a temporary file. An uploaded logo is not a
source's content, but before it is re-encoded it may carry what the newsroom never meant to
publish (a photographer's EXIF location); nothing of it should reach a disk. The app's body
limit (``MAX_REQUEST_BYTES``, 2 MiB) bounds the memory this takes.
"""

from __future__ import annotations

import io
from typing import IO

import flask
from werkzeug.datastructures import MultiDict


class JournalistRequest(flask.Request):
    """``flask.Request`` whose file parts are kept in memory, never spooled to disk."""

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        return io.BytesIO()

    def _load_form_data(self) -> None:
        super()._load_form_data()
        # Werkzeug names a multipart part without a name (no browser sends one) None; a
        # None key in the form breaks whatever iterates its names (Flask-WTF's CSRF check
        # does): such parts are dropped, as no field could ever be read by that name.
        for attribute in ("form", "files"):
            parsed: MultiDict[object, object] = self.__dict__[attribute]
            if None in parsed:
                named = [(k, v) for k, v in parsed.items(multi=True) if isinstance(k, str)]
                self.__dict__[attribute] = self.parameter_storage_class(named)
