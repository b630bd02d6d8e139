"""``tipbox db roles``: set up the source and journalist database roles (``tipbox.db_roles``).

Run it as the tables' owner (the journalist app's user, with its configuration) after
``tipbox init`` and after every ``tipbox db upgrade``; it is safe to run again.
"""

from __future__ import annotations

import click

from tipbox.config import Config
from tipbox.db import make_engine
from tipbox.db_roles import DEFAULT_JOURNALIST_ROLE, DEFAULT_SOURCE_ROLE, apply_roles, roles_sql


@click.command("roles")
@click.option(
    "--source-role",
    default=DEFAULT_SOURCE_ROLE,
    show_default=True,
    help="The PostgreSQL role the source app connects as.",
)
@click.option(
    "--journalist-role",
    default=DEFAULT_JOURNALIST_ROLE,
    show_default=True,
    help="The PostgreSQL role the journalist app and the CLI connect as.",
)
@click.option("--print", "print_only", is_flag=True, help="Print the SQL; change nothing.")
@click.pass_context
def db_roles(ctx: click.Context, source_role: str, journalist_role: str, print_only: bool) -> None:
    """Grant the source app's role only what it needs (PostgreSQL; the roles must exist)."""
    try:
        statements = roles_sql(source_role, journalist_role)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if print_only:
        for statement in statements:
            click.echo(f"{statement};")
        return
    config = ctx.find_object(Config)
    assert config is not None  # the `tipbox` group puts it there
    if config.is_sqlite:
        click.echo("Database roles do not apply to SQLite: nothing to do.")
        return
    engine = make_engine(config)
    try:
        with engine.begin() as conn:
            apply_roles(conn, source_role, journalist_role)
    finally:
        engine.dispose()
    click.echo(f"Privileges set: source role {source_role}, journalist role {journalist_role}.")


def register(db_group: click.Group) -> None:
    """Add ``roles`` to the ``tipbox db`` group."""
    db_group.add_command(db_roles)
