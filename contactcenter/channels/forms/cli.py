"""``contactcenter forms ...``: load web form definitions from a file, list them.

``forms load FILE`` creates or updates every form of a JSON file (a list of
definitions, or ``{"forms": [...]}``; see ``config/forms.example.json`` and
``contactcenter.channels.forms.schema``), all or none, and prints one JSON line
per form. Loading the same file again changes nothing. The file named by
``CONTACTCENTER_FORMS_FILE`` is loaded the same way when the web app starts.
"""

from __future__ import annotations

import json
from typing import Any

import click


def _db() -> Any:
    from contactcenter.cli import _db as database
    from contactcenter.cli import _settings

    return database(_settings())


@click.group("forms")
def cli() -> None:
    """Web forms: definitions from a file, and the list of forms."""


@cli.command("load")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def load_cmd(path: str) -> None:
    """Create or update the forms defined in a JSON file."""
    from contactcenter.channels.forms.schema import DefinitionError
    from contactcenter.channels.forms.service import load_forms_file

    db = _db()
    try:
        with db.session() as session:
            forms = load_forms_file(session, path)
            for form in forms:
                click.echo(json.dumps({"slug": form.slug, "title": form.title,
                                       "enabled": form.enabled, "fields": len(form.fields)},
                                      ensure_ascii=False))
    except DefinitionError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db.dispose()


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per form.")
def list_cmd(as_json: bool) -> None:
    """List the forms, enabled or not."""
    from contactcenter.channels.forms.service import form_definition, list_forms

    db = _db()
    try:
        with db.session() as session:
            for form in list_forms(session):
                if as_json:
                    click.echo(json.dumps(form_definition(session, form), ensure_ascii=False))
                else:
                    state = "enabled" if form.enabled else "disabled"
                    click.echo(f"{form.slug:<24} {state:<9} {form.title}")
    finally:
        db.dispose()
