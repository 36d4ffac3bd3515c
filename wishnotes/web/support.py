"""Help beyond the app: when to look for a therapist, parting as a valid outcome, safety."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("support", __name__)


@bp.get("/support")
def index():
    # Open to everyone, signed in or not: someone may need it before or after an account.
    return render_template("support/index.html")
