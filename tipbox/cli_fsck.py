"""``tipbox fsck [--repair] [--delete-unreadable] [--apps-stopped] [--json]``: check the
database against the blob store and repair what a crash left (``tipbox.fsck``).

Run it as the journalist app's user, with its database role. No admin unlocks it: it
needs no secret key (it reads row metadata, ciphertext sizes and the signed directory,
verified against the identity public key in ``keys/``), and what it removes without being
asked is only what nobody could read: blobs no item names, unfinished temporary files and
wraps to retired keys beside a readable wrap. Deleting damaged items takes
``--delete-unreadable`` on top of ``--repair``; every repair is in the audit log.

Exit status: 0 when nothing is left to repair and nothing is damaged, 4 when something is
(a dry run that found leftovers, or damage a repair did not remove), 1 on an error.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import click
from sqlalchemy.orm import Session

from tipbox import instance
from tipbox.config import Config
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import PublicKeys
from tipbox.db import make_engine
from tipbox.directory import NotInitialised
from tipbox.fsck import FsckResult, ItemRef, Repaired, Report, default_min_age, run_fsck
from tipbox.storage import blob_store_for

# fsck(8)'s "errors left uncorrected".
EXIT_PROBLEMS_LEFT = 4
# At most this many ids of each finding in the human report (--json lists every one).
SHOWN = 20


@click.command("fsck")
@click.option("--repair", is_flag=True, help="Remove leftovers (default: only report).")
@click.option(
    "--delete-unreadable",
    is_flag=True,
    help="With --repair: also delete items whose blob or content key is gone.",
)
@click.option(
    "--apps-stopped",
    is_flag=True,
    help="Every app process of the instance is stopped: judge files of any age.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def fsck_command(
    ctx: click.Context, repair: bool, delete_unreadable: bool, apps_stopped: bool, as_json: bool
) -> None:
    """Check the database against the blob store; with --repair, remove what a crash left."""
    if delete_unreadable and not repair:
        raise click.UsageError("--delete-unreadable needs --repair")
    config = ctx.find_object(Config)
    assert config is not None  # the `tipbox` group puts it there
    min_age = 0.0 if apps_stopped else default_min_age(config)

    def identity_of(session: Session) -> PublicKeys:
        return instance.check_identity_file(session, config.keys_dir)

    engine = make_engine(config)
    try:
        result = run_fsck(
            engine,
            blob_store_for(config),
            identity_of,
            min_age_seconds=min_age,
            repair_leftovers=repair,
            delete_unreadable=delete_unreadable,
        )
    except (NotInitialised, Rejected, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps(_as_json(result), indent=2, sort_keys=True))
    else:
        click.echo("\n".join(_human(result)))
    if not result.remaining.clean:
        ctx.exit(EXIT_PROBLEMS_LEFT)


def _as_json(result: FsckResult) -> dict[str, object]:
    return {
        "found": result.found.as_dict(),
        "repaired": None if result.repaired is None else _repaired_dict(result.repaired),
        "remaining": result.remaining.as_dict(),
        "clean": result.remaining.clean,
    }


def _repaired_dict(done: Repaired) -> dict[str, int]:
    return {
        "orphan_blobs": done.orphan_blobs,
        "temp_files": done.temp_files,
        "retired_wraps": done.retired_wraps,
        "unreadable_items": done.unreadable_items,
    }


def _ids(values: Sequence[str]) -> str:
    shown = ", ".join(values[:SHOWN])
    more = len(values) - SHOWN
    return shown + (f", and {more:,} more" if more > 0 else "")


def _count(count: int, what: str) -> list[str]:
    return [f"  {count:,} {what}"] if count else []


def _listed(what: str, ids: Sequence[str]) -> list[str]:
    return [*_count(len(ids), what), f"      {_ids(ids)}"] if ids else []


def _items(rows: Sequence[ItemRef]) -> list[str]:
    return [f"{row.kind} {row.item_id}" for row in rows]


def _findings(report: Report) -> list[str]:
    hours = report.min_age_seconds / 3600
    judged = (
        f"files younger than {hours:g} h are not judged"
        if report.min_age_seconds
        else "the apps are stopped: files of any age are judged"
    )
    lines = [f"Checked {report.items:,} items and {report.blobs:,} blobs ({judged})."]
    leftovers = [
        *_listed("blobs no item names", report.orphan_blobs),
        *_listed("unfinished temporary files", report.stale_temp_files),
        *_listed(
            "wraps to retired keys, beside a readable wrap",
            [f"{w.item_id} (key {w.key})" for w in report.retired_wraps],
        ),
    ]
    if leftovers:
        lines += ["Leftovers (--repair removes them; nothing readable goes):", *leftovers]
    damage = [
        *_listed("items whose blob is missing", _items(report.missing_blobs)),
        *_listed(
            "items whose blob has the wrong size", _items([w.item for w in report.wrong_size])
        ),
        *_listed("items with no wrap at all", _items(report.no_wraps)),
        *_listed(
            "items wrapped only to retired keys (never deleted: docs/fsck.md)",
            _items(report.retired_only),
        ),
        *_listed("items wrapped to no newsroom key", _items(report.no_newsroom_wrap)),
        *_listed("directory entries that do not verify", report.unverified_keys),
    ]
    if damage:
        lines += ["Damage (the newsroom cannot read these):", *damage]
        if report.unreadable:
            lines.append(
                f"  {len(report.unreadable):,} of these items are lost for good: "
                "`--repair --delete-unreadable` deletes them."
            )
    info = [
        *_count(report.young_blobs, "blobs no item names yet (uploads in progress?)"),
        *_count(report.young_temp_files, "temporary files being written"),
        *_count(
            report.rewrap_pending,
            "wraps to retiring keys: a re-wrap to finish with `tipbox keys rewrap`",
        ),
    ]
    if info:
        lines += ["Information (not damage):", *info]
    return lines


def _human(result: FsckResult) -> list[str]:
    lines = _findings(result.found)
    done = result.repaired
    if done is not None:
        lines.append(
            f"Repaired: removed {done.orphan_blobs:,} blobs, {done.temp_files:,} temporary "
            f"files, {done.retired_wraps:,} wraps and {done.unreadable_items:,} items."
        )
    remaining = result.remaining
    if remaining.clean:
        lines.append("Clean: nothing to repair, nothing damaged.")
    elif done is None:
        lines.append(
            f"{remaining.leftovers:,} leftovers and {remaining.damage:,} damaged: "
            "see docs/fsck.md; `tipbox fsck --repair` removes the leftovers."
        )
    else:
        lines.append(
            f"Left: {remaining.leftovers:,} leftovers and {remaining.damage:,} damaged "
            "(see docs/fsck.md)."
        )
    return lines
