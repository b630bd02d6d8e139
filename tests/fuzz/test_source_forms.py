"""The source app's forms and its streaming upload parser, fuzzed through Flask's test client.

The client holds a confirmed source and a valid CSRF token, and most fuzzed posts carry
that token, so that they reach the request class's multipart parser and the views rather
than stopping at the CSRF refusal. After every request: no 500, a page or JSON without a
traceback, and nothing half stored (``SourceRig.assert_nothing_half_stored``).
"""

from __future__ import annotations

import io
import json
import secrets
from dataclasses import dataclass

from hypothesis import event, given
from hypothesis import strategies as st

from .conftest import SourceRig, assert_clean_answer, environ_with, one_line
from .profiles import fuzz, hostile_bytes, hostile_text

BOUNDARY_CHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?"


@dataclass(frozen=True)
class Post:
    """One fuzzed request: body, Content-Type, Content-Length and extra headers."""

    body: bytes
    content_type: str
    length: int | None
    headers: dict[str, str]


def _disposition(name: bytes | None, filename: bytes | None) -> bytes:
    value = b"form-data"
    if name is not None:
        value += b'; name="' + name + b'"'
    if filename is not None:
        value += b'; filename="' + filename + b'"'
    return value


@st.composite
def parts(draw: st.DrawFn, token: str) -> bytes:
    """One part's headers and data (without the boundary line)."""
    names = st.one_of(
        st.sampled_from(
            [b"csrf_token", b"message", b"files", b"blob0", b"blob1", b"mode", b"manifest"]
        ),
        hostile_bytes(24),
    )
    kind = draw(st.sampled_from(["token", "message", "file", "blob", "field", "raw", "nested"]))
    headers: list[bytes] = []
    data = b""
    if kind == "token":
        headers.append(b"Content-Disposition: " + _disposition(b"csrf_token", None))
        data = token.encode()
    elif kind == "message":
        headers.append(b"Content-Disposition: " + _disposition(b"message", None))
        charset = draw(st.sampled_from([None, "utf-8", "latin-1", "bogus", "utf-7", ""]))
        if charset is not None:
            headers.append(b"Content-Type: text/plain; charset=" + charset.encode())
        data = draw(hostile_bytes(600))
    elif kind == "file":
        filename = draw(
            st.one_of(
                hostile_bytes(60),
                st.sampled_from(
                    [b"", b"a\x00b.pdf", "\u202egnp.exe".encode(), b"\xff\xfe.txt", b"../../x"]
                ),
                st.just(b"x" * 5000 + b".pdf"),
            )
        )
        name = draw(st.one_of(st.just(b"files"), names))
        headers.append(b"Content-Disposition: " + _disposition(name, filename))
        if draw(st.booleans()):
            headers.append(b"Content-Type: " + draw(hostile_bytes(40)))
        data = draw(st.one_of(hostile_bytes(3000), st.just(b"\x00" * 70000)))
    elif kind == "blob":
        name = draw(st.sampled_from([b"blob0", b"blob1", b"blob9999", b"blob00", b"blob-1"]))
        headers.append(b"Content-Disposition: " + _disposition(name, b"blob"))
        headers.append(b"Content-Type: application/octet-stream")
        data = draw(st.one_of(hostile_bytes(200), st.just(bytes(4137))))
    elif kind == "field":
        field_name = draw(st.one_of(names, st.none()))
        headers.append(b"Content-Disposition: " + _disposition(field_name, None))
        data = draw(st.one_of(hostile_bytes(200), st.just(b"browser"), manifests()))
    elif kind == "raw":
        # Headers of any shape: none, enormous, without a colon, with bare CR or LF.
        headers.extend(
            draw(
                st.lists(
                    st.one_of(
                        hostile_bytes(80),
                        st.just(b"X-Big: " + b"a" * draw(st.integers(1, 300_000))),
                        st.just(b"Content-Disposition: form-data; name=" + b"n" * 10_000),
                        st.just(b"Content-Disposition: attachment"),
                    ),
                    max_size=3,
                )
            )
        )
        data = draw(hostile_bytes(200))
    else:
        inner = b'--inner\r\nContent-Disposition: form-data; name="message"\r\n\r\nhi\r\n--inner--'
        headers.append(b"Content-Disposition: " + _disposition(b"message", None))
        headers.append(b"Content-Type: multipart/mixed; boundary=inner")
        data = inner
    return b"\r\n".join(headers) + b"\r\n\r\n" + data


def manifests() -> st.SearchStrategy[bytes]:
    """Browser-path manifests: JSON of the right and wrong shapes."""
    item = st.fixed_dictionaries(
        {
            "item_id": st.one_of(st.just(secrets.token_hex(16)), st.text(max_size=40)),
            "kind": st.one_of(st.integers(-1, 5), st.booleans(), st.floats()),
            "key_id": st.just("0" * 32),
            "sealed_meta": st.one_of(st.just("AAAA"), st.text(max_size=20)),
            "wrap": st.just("A" * 108),
            "part": st.sampled_from(["blob0", "blob1", "x"]),
        }
    )
    document = st.fixed_dictionaries(
        {
            "version": st.one_of(st.just(1), st.booleans(), st.just(1.0)),
            "source_id": st.text(max_size=40),
            "items": st.lists(item, max_size=3),
        }
    )
    return st.one_of(
        document.map(lambda d: json.dumps(d).encode()),
        st.integers(1, 3000).map(lambda n: b"[" * n),
    )


@st.composite
def multipart_posts(draw: st.DrawFn, token: str) -> Post:
    """A multipart post: usually well framed around fuzzed parts (so that the parts reach
    the routing and the views), otherwise broken in the ways a client can break it."""
    broken = draw(st.integers(0, 2)) == 0
    # Long enough not to turn up inside fuzzed data by chance (as a browser's is).
    boundary = "tipbox" + draw(st.text(alphabet=BOUNDARY_CHARS, min_size=8, max_size=64))
    if broken:
        boundary = draw(st.one_of(st.just(boundary), st.just("b" * 200), hostile_text(30)))
    raw_boundary = boundary.encode("utf-8", "replace")
    pieces = draw(st.lists(parts(token), min_size=0, max_size=5))
    if draw(st.integers(0, 4)):  # usually the token, so that the CSRF check passes
        at = draw(st.integers(0, len(pieces)))
        token_part = b'Content-Disposition: form-data; name="csrf_token"\r\n\r\n' + token.encode()
        pieces.insert(at, token_part)
    delimiter = b"--" + raw_boundary
    line_ends = [b"\r\n", b"\n", b"", b" \r\n"] if broken else [b"\r\n"]
    body = draw(st.sampled_from([b"", b"preamble\r\n", b"\r\n"]))
    for piece in pieces:
        body += delimiter + draw(st.sampled_from(line_ends)) + piece + b"\r\n"
    endings = ["none", "no-crlf", "epilogue", "twice", "truncate"] if broken else ["close"]
    ending = draw(st.sampled_from(endings))
    if ending == "close":
        body += delimiter + b"--\r\n"
    elif ending == "no-crlf":
        body += delimiter + b"--"
    elif ending == "epilogue":
        body += delimiter + b"--\r\n" + draw(hostile_bytes(100))
    elif ending == "twice":
        body += delimiter + b"--\r\n" + delimiter + b"--\r\n"
    elif ending == "truncate" and body:
        body = body[: draw(st.integers(0, len(body) - 1))]
    # Quoted: RFC 2046 allows "/", "=", ":" and "?" in a boundary, HTTP only inside quotes.
    content_type = f'multipart/form-data; boundary="{boundary}"'
    if broken:
        content_type = draw(
            st.sampled_from(
                [
                    content_type,
                    f"multipart/form-data; boundary={boundary}",
                    "multipart/form-data",
                    "multipart/form-data; boundary=",
                    f"multipart/form-data; charset=utf-8; boundary={boundary}; boundary=x",
                    f"multipart/mixed; boundary={boundary}",
                    f"Multipart/Form-Data; BOUNDARY={boundary}",
                ]
            )
        )
    length = None
    if broken:
        length = draw(st.one_of(st.sampled_from([0, 1, 2**62]), st.integers(0, len(body) + 100)))
    return Post(body, one_line(content_type), length, draw(extra_headers()))


def extra_headers() -> st.SearchStrategy[dict[str, str]]:
    """Headers the app reads (language, JSON preference) with hostile or enormous values."""
    latin1 = hostile_bytes(100).map(lambda b: b.decode("latin-1"))
    value = st.one_of(latin1, st.just("a" * 200_000), st.just("ru;q=0.5, kk;q=x, *;q=1e999"))
    return st.fixed_dictionaries(
        {},
        optional={
            "Accept-Language": value,
            "Accept": st.one_of(st.just("application/json"), value),
            "X-Huge": st.just("x" * 300_000),
        },
    )


def _send(rig: SourceRig, post: Post) -> None:
    before = rig.item_count()
    overrides = environ_with(post.headers)
    if post.length is not None:
        overrides["CONTENT_LENGTH"] = str(post.length)
    response = rig.client.post(
        "/submit",
        input_stream=io.BytesIO(post.body),
        content_type=post.content_type,
        environ_overrides=overrides,
    )
    assert_clean_answer(response)
    page = response.get_data(as_text=True)
    event(f"status {response.status_code}" + (" (CSRF)" if "Form expired" in page else ""))
    rig.assert_nothing_half_stored(before, accepted=response.status_code == 303)


@fuzz(120)
@given(data=st.data())
def test_multipart_posts_never_fail_or_leave_files(
    source_rig: SourceRig, data: st.DataObject
) -> None:
    _send(source_rig, data.draw(multipart_posts(source_rig.token)))


URLENCODED_PATHS = [
    "/submit",
    "/confirm",
    "/login",
    "/logout",
    "/generate",
    "/replies/" + "a" * 32 + "/hide",
]


@st.composite
def urlencoded_posts(draw: st.DrawFn, token: str) -> tuple[str, Post]:
    """A form post to any of the source app's POST routes: fields with invalid UTF-8,
    broken percent-escapes, duplicates and no names."""
    fields = [b"csrf_token=" + token.encode()] if draw(st.integers(0, 4)) else []
    names = st.sampled_from([b"message", b"codename", b"csrf_token", b"mode", b"", b"files"])
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.one_of(names, hostile_bytes(12)))
        value = draw(
            st.one_of(
                hostile_bytes(300),
                st.sampled_from([b"%", b"%zz", b"%ff%fe", b"%C0%80", b"%ED%A0%80", b"+%00+"]),
                st.just(b"word " * 2000),
            )
        )
        fields.append(name + b"=" + value)
    body = b"&".join(fields)
    content_type = draw(
        st.sampled_from(
            [
                "application/x-www-form-urlencoded",
                "application/x-www-form-urlencoded; charset=latin-1",
                "application/x-www-form-urlencoded; charset=bogus",
                "text/plain",
                "application/json",
            ]
        )
    )
    length = draw(st.one_of(st.none(), st.integers(0, len(body) + 10)))
    path = draw(st.sampled_from(URLENCODED_PATHS))
    return path, Post(body, content_type, length, draw(extra_headers()))


@fuzz(80)
@given(data=st.data())
def test_form_posts_never_fail(source_rig: SourceRig, data: st.DataObject) -> None:
    path, post = data.draw(urlencoded_posts(source_rig.token))
    before = source_rig.item_count()
    overrides = environ_with(post.headers)
    if post.length is not None:
        overrides["CONTENT_LENGTH"] = str(post.length)
    response = source_rig.client.post(
        path,
        input_stream=io.BytesIO(post.body),
        content_type=post.content_type,
        environ_overrides=overrides,
    )
    assert_clean_answer(response)
    csrf = " (CSRF)" if "Form expired" in response.get_data(as_text=True) else ""
    event(f"{path.split('/')[1]}: status {response.status_code}{csrf}")
    source_rig.assert_nothing_half_stored(before, accepted=response.status_code == 303)
    if path in ("/logout", "/generate", "/login") and response.status_code < 400:
        source_rig.new_source()  # back to a confirmed source with a fresh token


@fuzz(100)
@given(
    path=st.one_of(
        st.sampled_from(
            ["/", "/submit", "/replies", "/login", "/key", "/logo/" + "0" * 32 + ".png"]
        ),
        hostile_text(60).map(lambda t: "/" + t),
    ),
    query=hostile_bytes(80),
    cookie=st.one_of(hostile_bytes(120), st.just(b"tipbox_source_session=" + b"A" * 43)),
    headers=extra_headers(),
)
def test_gets_with_hostile_paths_cookies_and_headers_never_fail(
    source_rig: SourceRig, path: str, query: bytes, cookie: bytes, headers: dict[str, str]
) -> None:
    environ = environ_with(headers)
    environ["QUERY_STRING"] = query.decode("latin-1")
    environ["HTTP_COOKIE"] = cookie.decode("latin-1")
    response = source_rig.app.test_client().get(path, environ_overrides=environ)
    assert_clean_answer(response)
