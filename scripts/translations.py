"""The web apps' translations: extract, update, compile, check.

Each app has its own catalogues, and its own Babel mapping file naming what is extracted:

    source       tipbox/source/translations   babel.cfg
    journalist   journalist_ui/translations   babel-journalist.cfg

Both carry the shared error wording of ``tipbox.web`` (marked with ``N_`` in
``tipbox/web/i18n.py``). Every step works on both apps unless ``--app`` names one:

    .venv/bin/python scripts/translations.py extract   # code and templates -> messages.pot
    .venv/bin/python scripts/translations.py update    # messages.pot -> each messages.po
    .venv/bin/python scripts/translations.py compile   # each messages.po -> messages.mo
    .venv/bin/python scripts/translations.py check     # every message translated, and right?
    .venv/bin/python scripts/translations.py --app journalist check   # one app only

The workflow after changing a user-visible string: ``extract``, ``update``, translate the
new and fuzzy entries in ``<app>/translations/{ru,kk}/LC_MESSAGES/messages.po`` (remove the
``fuzzy`` flag once checked), ``check``, then ``make translations`` (which compiles; ``.mo``
files are built, never committed). ``update`` creates a language's ``messages.po`` if it
is missing. ``check`` lists every untranslated message and every translation whose
placeholders or plural forms do not match its message (what ``pybabel compile`` would
warn about). ``tests/test_catalogues.py`` fails until all of this is done, for both
apps.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import NamedTuple

from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

REPO = Path(__file__).resolve().parents[1]
LANGUAGES = ("ru", "kk")


class App(NamedTuple):
    """One web app's catalogues: where they live and what is extracted into them."""

    name: str
    catalogues: Path  # holds messages.pot and <language>/LC_MESSAGES/messages.po
    mapping: str  # the Babel mapping file, relative to the repository root

    @property
    def template(self) -> Path:
        """The ``messages.pot`` every language's catalogue is updated from."""
        return self.catalogues / "messages.pot"

    def po(self, language: str) -> Path:
        """The ``messages.po`` of ``language``."""
        return self.catalogues / language / "LC_MESSAGES" / "messages.po"


SOURCE = App("source", REPO / "tipbox" / "source" / "translations", "babel.cfg")
JOURNALIST = App("journalist", REPO / "journalist_ui" / "translations", "babel-journalist.cfg")
APPS: dict[str, App] = {app.name: app for app in (SOURCE, JOURNALIST)}

# The source app's, as before there were two apps (the functions below default to it).
CATALOGUES = SOURCE.catalogues
TEMPLATE = SOURCE.template


def _pybabel(*args: str) -> None:
    # From the repository root, so that the locations in the catalogues are relative.
    with contextlib.chdir(REPO):
        CommandLineInterface().run(["pybabel", "--quiet", *args])  # type: ignore[no-untyped-call]


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def extract(output: Path | None = None, app: App = SOURCE) -> None:
    """Write the app's ``messages.pot`` (or ``output``) from what its mapping file names.

    A template whose messages have not changed is left as it is, so that its date (and
    the one ``update`` copies into each ``messages.po``) does not churn.
    """
    target = app.template if output is None else output
    target.parent.mkdir(parents=True, exist_ok=True)
    fresh = target.with_name(target.name + ".new")
    _pybabel(
        "extract",
        "--mapping-file",
        app.mapping,
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
        str(fresh),
        ".",
    )
    if target.exists() and _undated(target) == _undated(fresh):
        fresh.unlink()
    else:
        fresh.replace(target)


def _undated(template: Path) -> list[str]:
    """A template's lines, but its creation date."""
    lines = template.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if not line.startswith('"POT-Creation-Date: ')]


def update(app: App = SOURCE) -> None:
    """Merge the app's ``messages.pot`` into each language's ``messages.po`` (made if missing)."""
    for language in LANGUAGES:
        _pybabel(
            "update",
            "--input-file",
            str(app.template),
            "--output-dir",
            str(app.catalogues),
            "--locale",
            language,
            "--init-missing",
            "--width",
            "100",
            "--ignore-obsolete",
        )


def compile_catalogues(app: App = SOURCE) -> None:
    """Build each of the app's ``messages.mo`` (what ``make translations`` does)."""
    _pybabel("compile", "--directory", str(app.catalogues), "--statistics")


def untranslated(app: App = SOURCE) -> dict[str, list[str]]:
    """For each language, the message ids with no (or only a fuzzy) translation."""
    wanted = {message.id for message in _read(app.template) if message.id}
    missing: dict[str, list[str]] = {}
    for language in LANGUAGES:
        done = set()
        for message in _read(app.po(language), language):
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            if message.id and not message.fuzzy and all(strings):
                done.add(message.id)
        missing[language] = sorted(str(msgid) for msgid in wanted - done)
    return missing


def problems(app: App = SOURCE) -> dict[str, list[str]]:
    """For each language, Babel's complaints about its translations (``pybabel compile``'s).

    Placeholders that differ from the message's (python-format), or a plural with the
    wrong number of forms; untranslated messages are ``untranslated``'s business.
    """
    found: dict[str, list[str]] = {}
    for language in LANGUAGES:
        catalogue = _read(app.po(language), language)
        found[language] = [
            f"{message.id!r}: {error}" for message, errors in catalogue.check() for error in errors
        ]
    return found


def check(app: App = SOURCE) -> int:
    """Print every untranslated or faulty message; return the exit status (1 if any)."""
    status = 0
    for kind, report in (("untranslated", untranslated(app)), ("wrong", problems(app))):
        for language, entries in report.items():
            for entry in entries:
                shown = repr(entry) if kind == "untranslated" else entry
                print(f"{app.name} {language}: {kind}: {shown}")
                status = 1
    return status


def main() -> int:
    """Run one step of the workflow for one app or both (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--app", choices=[*APPS, "all"], default="all", help="which app's catalogues (all)"
    )
    parser.add_argument("step", choices=["extract", "update", "compile", "check"])
    arguments = parser.parse_args()
    apps = list(APPS.values()) if arguments.app == "all" else [APPS[arguments.app]]
    status = 0
    for app in apps:
        if arguments.step == "extract":
            extract(app=app)
        elif arguments.step == "update":
            update(app)
        elif arguments.step == "compile":
            compile_catalogues(app)
        else:
            status |= check(app)
    return status


if __name__ == "__main__":
    sys.exit(main())
