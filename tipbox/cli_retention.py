"""``tipbox retention run [--dry-run]``: apply the instance's retention (``tipbox.retention``).

Meant for a daily timer (docs/settings.md), run as the journalist app's user. No admin
unlocks it: it only deletes what the settings an admin chose say is due, and deleting
needs no key.
"""

from __future__ import annotations

import click

from tipbox.config import Config
from tipbox.db import make_engine
from tipbox.directory import NotInitialised
from tipbox.retention import RetentionResult, run_retention
from tipbox.storage import blob_store_for


@click.group("retention")
def retention_group() -> None:
    """Delete sources that have had no activity for too long."""


@retention_group.command("run")
@click.option("--dry-run", is_flag=True, help="Only count the sources that are due.")
@click.pass_context
def retention_run(ctx: click.Context, dry_run: bool) -> None:
    """Delete every source with no activity for the configured number of days."""
    config = ctx.find_object(Config)
    assert config is not None  # the `tipbox` group puts it there
    engine = make_engine(config)
    try:
        result = run_retention(engine, blob_store_for(config), config, dry_run=dry_run)
    except NotInitialised as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    click.echo(_summary(result))


def _summary(result: RetentionResult) -> str:
    spam = "" if result.dry_run else f" Deleted {result.spam} source(s) marked spam."
    if result.days is None or result.cutoff is None:
        return "Retention is off: no source is deleted for inactivity." + spam
    due = f"source(s) last active before {result.cutoff.isoformat()}"
    if result.dry_run:
        return f"{result.sources} {due} would be deleted (retention: {result.days} days; dry run)."
    return f"Deleted {result.sources} {due} (retention: {result.days} days)." + spam
