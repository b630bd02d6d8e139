"""Fuzz tests (issue #7): hostile bytes against every reader of stored formats and every
form a client can post, with no crash and no 500 as the pass mark.

What is fuzzed, and with what:

- ``test_crypto_readers``, ``test_backup_reader``: every public parser and opener of a
  stored format in ``tipbox.crypto`` and the backup reader, fed random bytes, mutations of
  the known-answer vectors of ``tests/vectors`` (bit flips, truncation, extension,
  splices) and, behind each AEAD, authenticated garbage: fuzzed plaintext sealed under the
  right key, so that the parser behind the authentication is reached too. A reader must
  return only for an input it may accept and otherwise raise its documented error
  (``Rejected``, ``BackupRefused``), never ``IndexError``, ``struct.error``,
  ``UnicodeDecodeError``, ``RecursionError`` or a PyNaCl exception.
- ``test_source_forms``, ``test_journalist_forms``: the real apps through Flask's test
  client, with a logged-in session and its CSRF token, so that the fuzz reaches the upload
  parser and the views: malformed multipart, invalid UTF-8, absurd lengths and headers.
  Never a 500, never a traceback in the page, and nothing half stored: after every request
  the blob store holds exactly the blobs of the stored items (no temp file, no orphan).
- ``test_slow_clients``: the source app under real gunicorn, with clients that trickle,
  stall, disconnect mid-body or send huge headers, while a normal client is served.

Hypothesis settings (``profiles``): ``derandomize=True`` and ``database=None``, so a run
draws the same examples on every machine and writes no ``.hypothesis`` directory: CI is
reproducible and a failure shows again when rerun. ``deadline=None``, because a shared CI
machine makes per-example timing meaningless (and the suite asserts no timing), while a
fixed ``max_examples`` per test bounds the whole package to well under 90 s per database
run. ``TIPBOX_FUZZ_PROFILE=deep`` switches to random draws and ten times the examples, for
a longer search by hand; a failure it finds is then written as a plain example test.

Each database run fuzzes one backend: the SQLite run SQLite, the PostgreSQL run
PostgreSQL (``conftest.db_backend``), and the pure parsers (no database) run in the
SQLite run only.

atheris is not used: the readers are pure Python over PyNaCl, whose C code (libsodium) is
fuzzed upstream (OSS-Fuzz); what can break here is our framing and parsing, which
structure-aware Hypothesis strategies reach directly (authenticated garbage behind the
AEADs, which a coverage-guided byte fuzzer would never get past), and they run inside
pytest with no extra build or dependency.
"""
