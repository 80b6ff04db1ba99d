"""The ``teachfile`` command: a Flask ``FlaskGroup`` with the operator's commands."""

from __future__ import annotations

import multiprocessing
import os
import secrets
import signal
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, routes_command, shell_command, with_appcontext
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import PROJECT_ROOT, casefmt, create_app, textscan
from app.db import get_db, upgrade_database
from app.errors import TeachfileError
from app.models import Case, CaseStatus, Institution, Role
from app.services import accounts, library, search, sources
from app.services.intake import IntakeConfig, make_config

SAMPLE_CASES = PROJECT_ROOT / "cases"
P = ParamSpec("P")
R = TypeVar("R")


def _one_line_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Domain errors become one line on stderr and exit status 1."""

    @wraps(command)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except TeachfileError as err:
            raise click.ClickException(err.message) from None

    return wrapped


def _make_app() -> Flask:
    from app.config import ConfigError

    # Only ``teachfile init`` may create the data directory and secrets in production.
    context = click.get_current_context(silent=True)
    creating = context is not None and context.info_name == "init"
    try:
        return create_app({"CREATING": True} if creating else None)
    except ConfigError as err:
        # A bad database URL, an unreachable database, an unwritable data directory,
        # a missing secret in production: one line, exit 1.
        click.echo(f"Error: {err}", err=True)
        sys.exit(1)
    except OSError as err:
        click.echo(
            f"Error: cannot prepare the data directory: {err.strerror}: {err.filename}", err=True
        )
        sys.exit(1)


cli = FlaskGroup(
    name="teachfile",
    create_app=_make_app,
    add_default_commands=False,
    help="Teachfile: radiology teaching files and continuing education.",
)
cli.add_command(shell_command)
cli.add_command(routes_command)


def prepare(app: Flask) -> tuple[str, str] | None:
    """First-run work, idempotent: migrate, create the first admin if none exists, and load
    the shipped cases into an empty library so a newcomer sees a working teaching file."""
    database = get_db(app)
    upgrade_database(database.engine)
    # Staging files older than an hour were left by a crash (DESIGN.md: tmp/ is swept).
    intake_config(app).store.sweep_tmp()
    try:
        with database.sessionmaker.begin() as session:
            credentials = accounts.ensure_first_admin(session)
            empty = library.library_is_empty(session)
    except IntegrityError:
        # Several processes starting at once on one database (web workers, the
        # receiver, other hosts): another one created the first admin meanwhile.
        credentials = None
        with database.sessionmaker() as session:
            empty = library.library_is_empty(session)
    if empty and app.config["LOAD_SAMPLE_CASES"] and SAMPLE_CASES.is_dir():
        loaded = _import_folders(app, SAMPLE_CASES, institution_name=None)
        sets = _import_sets(app, SAMPLE_CASES, institution_name=None)
        click.echo(f"Loaded {loaded} sample cases and {sets} case sets from {SAMPLE_CASES}.")
    search.reconcile_index(database.sessionmaker, app.config["DATA_DIR"])
    return credentials


def _import_institution(session: Session, institution_name: str | None) -> Institution:
    """The institution imported cases and sets belong to: the sample library's, or a named one."""
    if institution_name is None:
        return library.sample_institution(session)
    return accounts.get_institution_by_name(session, institution_name)


def _import_folders(app: Flask, root: Path, institution_name: str | None) -> int:
    """Import every case folder under ``root``, each in its own transaction; a bad folder
    is reported on stderr and the others still load."""
    loaded = 0
    for folder in casefmt.iter_case_folders(root):
        try:
            with get_db(app).sessionmaker.begin() as session:
                institution = _import_institution(session, institution_name)
                case = library.import_case_folder(
                    session, folder, institution=institution, config=intake_config(app)
                )
                _say_if_held(case)
            loaded += 1
        except TeachfileError as err:
            click.echo(f"Error: {err.message}", err=True)
    return loaded


def _import_sets(app: Flask, root: Path, institution_name: str | None) -> int:
    """Import every ``root/_sets/*.yaml`` (after the cases they list), each in its own
    transaction; a bad file is reported on stderr and the others still load."""
    loaded = 0
    try:
        paths = list(casefmt.iter_set_files(root))
    except TeachfileError as err:
        click.echo(f"Error: {err.message}", err=True)
        return 0
    for path in paths:
        try:
            with get_db(app).sessionmaker.begin() as session:
                institution = _import_institution(session, institution_name)
                library.import_set_file(session, path, institution=institution)
            loaded += 1
        except TeachfileError as err:
            click.echo(f"Error: {err.message}", err=True)
    return loaded


def _say_if_held(case: Case) -> None:
    if case.status is CaseStatus.DRAFT:
        click.echo(
            f"{case.slug}: kept as a draft: some passages look like patient identifiers; "
            "an author checks them and publishes the case.",
            err=True,
        )


def _announce_admin(credentials: tuple[str, str] | None) -> None:
    if credentials:
        email, password = credentials
        click.echo(
            "\n  First run: created the admin account\n"
            f"    e-mail:   {email}\n    password: {password}\n"
            "  This password is shown once. Log in and keep it safe.\n"
        )


@cli.command("init")
@with_appcontext
@_one_line_errors
def init_command() -> None:
    """Create or upgrade the database and the first admin account."""
    _announce_admin(prepare(current_app._get_current_object()))  # type: ignore[attr-defined]
    click.echo(f"Data directory ready: {current_app.config['DATA_DIR']}")


@cli.command("run")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--debug/--no-debug", default=False, help="Reload on change, show debugger.")
@with_appcontext
@_one_line_errors
def run_command(host: str, port: int, debug: bool) -> None:
    """Prepare the data directory on first run, then serve the library."""
    from werkzeug.serving import run_simple

    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    _announce_admin(prepare(app))
    click.echo(f"Teachfile is serving on http://{host}:{port}/ (Ctrl+C to stop)")
    run_simple(host, port, app, threaded=True, use_reloader=debug, use_debugger=debug)


@cli.group("db")
def db_group() -> None:
    """Database schema commands."""


@db_group.command("upgrade")
@with_appcontext
def db_upgrade_command() -> None:
    """Apply every pending migration."""
    upgrade_database(get_db().engine)
    click.echo("Database is at the migration head.")


@cli.command("create-user")
@click.argument("email")
@click.option("--name", "display_name", required=True, help="Name as colleagues know it.")
@click.option(
    "--role", type=click.Choice([r.value for r in Role]), default="learner", show_default=True
)
@click.option("--institution", default=None, help="Existing institution's name.")
@click.option("--password", default=None, help="Leave out to generate one (printed once).")
@with_appcontext
@_one_line_errors
def create_user_command(
    email: str, display_name: str, role: str, institution: str | None, password: str | None
) -> None:
    """Create an account with a role, optionally in an institution."""
    generated = password is None
    password = password or secrets.token_urlsafe(15)
    with get_db().sessionmaker.begin() as session:
        user = accounts.create_user(
            session,
            email=email,
            display_name=display_name,
            password=password,
            role=Role(role),
            institution_name=institution,
        )
        click.echo(f"Created {user.email} ({role}).")
    if generated:
        click.echo(f"Password (shown once): {password}")


@cli.group("institutions")
def institutions_group() -> None:
    """Hospitals that accounts and DICOM sources belong to."""


@institutions_group.command("add")
@click.argument("name")
@with_appcontext
@_one_line_errors
def institutions_add(name: str) -> None:
    """Add an institution."""
    with get_db().sessionmaker.begin() as session:
        institution = accounts.create_institution(session, name, actor=None)
        click.echo(f"Added institution {institution.name} (id {institution.id}).")


@institutions_group.command("list")
@with_appcontext
def institutions_list() -> None:
    """List institutions."""
    with get_db().sessionmaker() as session:
        for institution in accounts.list_institutions(session):
            click.echo(f"{institution.id}\t{institution.name}")


def intake_config(app: Flask) -> IntakeConfig:
    """Where received objects go and the key that de-identifies them."""
    return make_config(app.config["DATA_DIR"], app.config["DEID_SECRET"])


@cli.command("receive")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=11112, show_default=True, type=click.IntRange(1, 65535))
@click.option("--ae-title", default="TEACHFILE", show_default=True, help="Our AE title.")
@click.option(
    "--workers",
    default=min(4, os.cpu_count() or 1),
    show_default=True,
    type=click.IntRange(1, 64),
    help="Receiver processes sharing the port (de-identification is CPU-bound).",
)
@with_appcontext
@_one_line_errors
def receive_command(host: str, port: int, ae_title: str, workers: int) -> None:
    """Run the DICOM C-ECHO / C-STORE receiver for the allowed sources."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    prepare(app)
    title = sources.normalise_ae_title(ae_title)
    get_db(app).engine.dispose()  # children open their own connections
    click.echo(f"Receiving as {title} on {host}:{port} with {workers} processes (Ctrl+C to stop)")
    if workers == 1:
        _serve_receiver(host, port, title, shared_port=False)
        return
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(target=_serve_receiver, args=(host, port, title, True), daemon=True)
        for _ in range(workers)
    ]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    for child in children:
        child.start()
    try:
        while all(child.is_alive() for child in children):
            children[0].join(timeout=1)
    finally:
        for child in children:
            child.terminate()
    failed = [child.exitcode for child in children if child.exitcode not in (0, None, -15)]
    if failed:
        raise click.ClickException(f"a receiver process stopped (exit {failed[0]})")


def _serve_receiver(host: str, port: int, ae_title: str, shared_port: bool) -> None:
    """One receiver process: its own app, engine and association threads."""
    from app.dicom import receiver
    from app.services.receiving import ReceivingHooks

    app = create_app()
    hooks = ReceivingHooks(get_db(app).sessionmaker, intake_config(app))
    try:
        receiver.start(host, port, ae_title, hooks, block=True, shared_port=shared_port)
    except OSError as err:
        click.echo(f"Error: cannot listen on {host}:{port}: {err.strerror}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        pass


@cli.group("sources")
def sources_group() -> None:
    """DICOM senders (calling AE titles) allowed to send, each mapped to an institution."""


@sources_group.command("add")
@click.argument("ae_title")
@click.option("--institution", required=True, help="Institution the studies belong to.")
@click.option("--host", default=None, help="Only accept this sender from this IP address.")
@with_appcontext
@_one_line_errors
def sources_add(ae_title: str, institution: str, host: str | None) -> None:
    """Allow AE_TITLE to send studies for an institution."""
    with get_db().sessionmaker.begin() as session:
        source = sources.add_source(
            session, ae_title, institution_name=institution, host=host, actor=None
        )
        click.echo(f"Allowed {source.ae_title} for {source.institution.name}.")


@sources_group.command("list")
@with_appcontext
def sources_list() -> None:
    """List allowed senders."""
    with get_db().sessionmaker() as session:
        for source in sources.list_sources(session):
            click.echo(
                f"{source.ae_title}\t{source.host or 'any address'}\t{source.institution.name}"
            )


@sources_group.command("remove")
@click.argument("ae_title")
@with_appcontext
@_one_line_errors
def sources_remove(ae_title: str) -> None:
    """Stop accepting AE_TITLE."""
    with get_db().sessionmaker.begin() as session:
        sources.remove_source(session, ae_title, actor=None)
    click.echo(f"Removed {ae_title.strip()}.")


@cli.command("deid")
@click.argument("in_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--quarantine",
    "quarantine_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Hold objects that may carry burned-in text here instead of refusing them.",
)
@with_appcontext
def deid_command(in_dir: Path, out_dir: Path, quarantine_dir: Path | None) -> None:
    """De-identify every DICOM file under IN_DIR into OUT_DIR (PS3.15 Annex E), on every core."""
    from app.dicom.batch import REPORT_NAME, deidentify_tree

    with click.progressbar(length=1, label="De-identifying", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

        summary = deidentify_tree(
            in_dir,
            out_dir,
            secret=current_app.config["DEID_SECRET"],
            source="cli",
            quarantine_dir=quarantine_dir,
            progress=progress,
            find_identifiers=textscan.spans,
        )
    click.echo(summary.line())
    if summary.report:
        click.echo(f"Report: {out_dir / REPORT_NAME}", err=True)
    if not summary.ok:
        sys.exit(1)


@cli.command("import-cases")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--institution", required=True, help="Institution the cases belong to.")
@with_appcontext
@_one_line_errors
def import_cases_command(directory: Path, institution: str) -> None:
    """Import case folders (DIRECTORY/<slug>/case.md ...), de-identifying every DICOM file."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    if (directory / "case.md").is_file():  # one case folder given directly
        with get_db(app).sessionmaker.begin() as session:
            case = library.import_case_folder(
                session,
                directory,
                institution=accounts.get_institution_by_name(session, institution),
                config=intake_config(app),
            )
            _say_if_held(case)
        click.echo("Imported 1 case.")
        return
    count = _import_folders(app, directory, institution)
    sets = _import_sets(app, directory, institution)
    click.echo(f"Imported {count} case(s)" + (f" and {sets} case set(s)." if sets else "."))


@cli.command("export-case")
@click.argument("slug")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@with_appcontext
@_one_line_errors
def export_case_command(slug: str, directory: Path) -> None:
    """Write case SLUG as a folder DIRECTORY/SLUG (case.md, quiz.yaml, annotations.json, dicom/)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    with get_db(app).sessionmaker() as session:
        dest = library.export_case(session, slug, directory, config=intake_config(app))
    click.echo(f"Exported to {dest}")


@cli.command("export-set")
@click.argument("slug")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@with_appcontext
@_one_line_errors
def export_set_command(slug: str, directory: Path) -> None:
    """Write case set SLUG as DIRECTORY/_sets/SLUG.yaml (export its cases with export-case)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    with get_db(app).sessionmaker() as session:
        dest = library.export_set(session, slug, directory)
    click.echo(f"Exported to {dest}")


@cli.command("reindex")
@with_appcontext
@_one_line_errors
def reindex_command() -> None:
    """Rebuild the search index from the database (every published case)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    count = search.rebuild_index(get_db(app).sessionmaker, app.config["DATA_DIR"])
    click.echo(f"Indexed {count} published cases.")


@cli.command("digest")
@click.option(
    "--base-url",
    default="http://127.0.0.1:5000",
    show_default=True,
    help="The site's address, for the links in the e-mails.",
)
@with_appcontext
@_one_line_errors
def digest_command(base_url: str) -> None:
    """E-mail each user their unread notifications (run daily, e.g. from cron).

    Sends only where TEACHFILE_SMTP_HOST and TEACHFILE_SMTP_FROM are configured.
    """
    from app.services import notifications

    settings = notifications.smtp_settings(current_app.config)
    if settings is None:
        click.echo(
            "No SMTP server configured (TEACHFILE_SMTP_HOST, TEACHFILE_SMTP_FROM): nothing sent."
        )
        return
    try:
        with get_db().sessionmaker.begin() as session:
            sent = notifications.send_digests(session, settings, base_url=base_url)
    except OSError as err:  # smtplib.SMTPException is an OSError
        raise click.ClickException(
            f"the SMTP server refused or failed: {type(err).__name__}"
        ) from None
    click.echo(f"Sent {sent} digest e-mail{'s' if sent != 1 else ''}.")


@cli.command("verify")
@click.option("--repair", is_flag=True, help="Remove orphan files and stale staging files.")
@click.option(
    "--grace",
    default=3600.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds a new file may wait for its database row before it counts as an orphan.",
)
@with_appcontext
@_one_line_errors
def verify_command(repair: bool, grace: float) -> None:
    """Check every stored file against the database (exists, sha256); report orphans.

    Exits 1 when a file is missing or corrupt, or leftovers remain (run with --repair).
    """
    from app.services import integrity

    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    with get_db(app).sessionmaker() as session:
        report = integrity.verify(
            session, intake_config(app).store, repair=repair, grace_seconds=grace
        )
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        sys.exit(1)


@cli.command("backup")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@with_appcontext
@_one_line_errors
def backup_command(dest: Path) -> None:
    """Back up the database, secrets and object store into DEST, while the server runs.

    DEST is empty or an earlier backup (then only new files are copied).
    """
    from app.services import backup

    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    result = backup.backup(app.config["DATABASE_URL"], app.config["DATA_DIR"], dest)
    for path in result.missing:
        click.echo(f"MISSING  {path} (a database row points at it)", err=True)
    for path in result.corrupt:
        click.echo(f"CORRUPT  {path} (content does not match its sha256)", err=True)
    counts = result.manifest["counts"]
    click.echo(
        f"Backed up {counts['cases']} cases, {counts['instances']} images and "
        f"{counts['quarantine_held']} held objects to {result.dest}: {result.copied} files "
        f"copied, {result.kept} already there, {result.pruned} removed, "
        f"in {result.seconds:.1f} s."
    )
    if not result.ok:
        raise click.ClickException("the backup is incomplete: run teachfile verify")


@cli.command("restore", with_appcontext=False)
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_one_line_errors
def restore_command(source: Path) -> None:
    """Restore the backup in SOURCE into an empty data directory (and empty database)."""
    from app import config
    from app.services import backup

    settings = config.load(None)
    result = backup.restore(source, settings["DATABASE_URL"], settings["DATA_DIR"])
    app = create_app()
    upgrade_database(get_db(app).engine)
    indexed = search.rebuild_index(get_db(app).sessionmaker, app.config["DATA_DIR"])
    get_db(app).engine.dispose()
    click.echo(
        f"Restored {result.files} files and the {result.manifest['database']} database "
        f"from {source} (made {result.manifest['created_at']}) into {settings['DATA_DIR']}; "
        f"indexed {indexed} published cases. Run teachfile verify to check."
    )


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="teachfile")


if __name__ == "__main__":
    main()
