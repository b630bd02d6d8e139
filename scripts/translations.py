"""The source app's translations: extract, update, compile, check.

    .venv/bin/python scripts/translations.py extract   # code and templates -> messages.pot
    .venv/bin/python scripts/translations.py update    # messages.pot -> each messages.po
    .venv/bin/python scripts/translations.py compile   # each messages.po -> messages.mo
    .venv/bin/python scripts/translations.py check     # every message translated?

The workflow after changing a user-visible string: ``extract``, ``update``, translate the
new and fuzzy entries in ``tipbox/source/translations/{ru,kk}/LC_MESSAGES/messages.po``
(remove the ``fuzzy`` flag once checked), ``check``, then ``make translations`` (which
compiles; ``.mo`` files are built, never committed). What is extracted is set in
``babel.cfg``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

REPO = Path(__file__).resolve().parents[1]
CATALOGUES = REPO / "tipbox" / "source" / "translations"
TEMPLATE = CATALOGUES / "messages.pot"
LANGUAGES = ("ru", "kk")


def _pybabel(*args: str) -> None:
    # From the repository root, so that the locations in the catalogues are relative.
    with contextlib.chdir(REPO):
        CommandLineInterface().run(["pybabel", "--quiet", *args])  # type: ignore[no-untyped-call]


def extract(output: Path = TEMPLATE) -> None:
    """Write ``messages.pot`` (or ``output``) from the code and templates ``babel.cfg`` names."""
    _pybabel(
        "extract",
        "--mapping-file",
        "babel.cfg",
        "--keywords",
        "N_",
        "--sort-output",
        "--add-location",
        "file",
        "--project",
        "tipbox",
        "--width",
        "100",
        "--copyright-holder",
        "the tipbox authors",
        "--output-file",
        str(output),
        ".",
    )


def update() -> None:
    """Merge ``messages.pot`` into each language's ``messages.po``."""
    _pybabel(
        "update",
        "--input-file",
        str(TEMPLATE),
        "--output-dir",
        str(CATALOGUES),
        "--width",
        "100",
        "--ignore-obsolete",
    )


def compile_catalogues() -> None:
    """Build each ``messages.mo`` (what ``make translations`` does)."""
    _pybabel("compile", "--directory", str(CATALOGUES), "--statistics")


def untranslated() -> dict[str, list[str]]:
    """For each language, the message ids with no (or only a fuzzy) translation."""
    with TEMPLATE.open("rb") as handle:
        wanted = {message.id for message in read_po(handle) if message.id}
    missing: dict[str, list[str]] = {}
    for language in LANGUAGES:
        path = CATALOGUES / language / "LC_MESSAGES" / "messages.po"
        with path.open("rb") as handle:
            catalogue = read_po(handle, locale=language)
        done = set()
        for message in catalogue:
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            if message.id and not message.fuzzy and all(strings):
                done.add(message.id)
        missing[language] = sorted(str(msgid) for msgid in wanted - done)
    return missing


def check() -> int:
    """Print every untranslated message; return the exit status (1 if there is one)."""
    status = 0
    for language, msgids in untranslated().items():
        for msgid in msgids:
            print(f"{language}: untranslated: {msgid!r}")
            status = 1
    return status


def main() -> int:
    """Run one step of the workflow (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["extract", "update", "compile", "check"])
    step = parser.parse_args().step
    if step == "extract":
        extract()
    elif step == "update":
        update()
    elif step == "compile":
        compile_catalogues()
    else:
        return check()
    return 0


if __name__ == "__main__":
    sys.exit(main())
