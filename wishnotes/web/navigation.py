"""Small view-layer pieces shared by the blueprints: safe redirects and form errors."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, render_template, request
from flask_wtf import FlaskForm

from wishnotes.errors import InvalidInput


def config_limit(name: str):
    """Return a callable that reads a Flask-Limiter limit from the app config at request time."""

    def limit() -> str:
        return current_app.config[name]

    limit.__name__ = limit.__qualname__ = f"limit_{name.lower()}"
    return limit


def safe_next(target: str | None) -> str | None:
    """Return `target` if it is a path on this site, else None (no open redirects)."""
    if not target or len(target) > 2000 or not target.startswith("/"):
        return None
    if target.startswith(("//", "/\\")) or any(ch in target for ch in "\r\n\t\\"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def form_error(form: FlaskForm, exc: InvalidInput) -> None:
    """Attach a service's InvalidInput to the form field it names (or the form as a whole)."""
    field = getattr(form, exc.field, None) if exc.field else None
    if field is not None:
        field.errors = [*field.errors, exc.message]
    else:
        form.form_errors.append(exc.message)


def render_form(template: str, form: FlaskForm, **context):
    """Render a form page: 422 when a submitted form came back with errors, else 200."""
    failed = request.method == "POST" and bool(form.errors)
    return render_template(template, form=form, **context), 422 if failed else 200
