"""Rate limits on every form that checks a password: one budget per account, one per address.

Sign-in, unlock, a new recovery kit, a password change, deleting the account, recovery with the
recovery key, opening earlier keys and sending with the password all draw from the same two
buckets, so together they give a guesser no more tries than the sign-in form alone. The account
bucket is named by `accounts.account_key`, the normalised email, whichever form it comes from.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import request
from flask_login import current_user

from wishnotes import accounts, recovery
from wishnotes.clock import now
from wishnotes.errors import ResetLinkInvalid
from wishnotes.extensions import db, limiter
from wishnotes.models import User
from wishnotes.web.navigation import config_limit


def typed_email() -> str | None:
    """The account a sign-in form names: the email typed into it."""
    return request.form.get("email")


def signed_in_email() -> str | None:
    """The account of the person signed in."""
    return current_user.email if current_user.is_authenticated else None


def reset_link_email() -> str | None:
    """The account a password-reset link belongs to."""
    try:
        reset = recovery.find_reset(token=(request.view_args or {}).get("token", ""), now=now())
    except ResetLinkInvalid:
        return None
    user = db.session.get(User, reset.user_id)
    return user.email if user is not None else None


def password_checks(account: Callable[[], str | None], exempt_when=None):
    """Count a POST that checks a password against its account's and its address's budget."""

    def account_bucket() -> str:
        return "account:" + accounts.account_key(account())

    def decorate(view):
        view = limiter.shared_limit(
            config_limit("LOGIN_LIMIT_PER_ACCOUNT"),
            scope="password-check-account",
            key_func=account_bucket,
            methods=["POST"],
            exempt_when=exempt_when,
        )(view)
        return limiter.shared_limit(
            config_limit("LOGIN_LIMIT_PER_ADDRESS"),
            scope="password-check-address",
            methods=["POST"],
            exempt_when=exempt_when,
        )(view)

    return decorate
