"""Flask-WTF forms. Validation of meaning lives in the services; these check shape."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, IntegerField, PasswordField, StringField
from wtforms.validators import DataRequired, InputRequired, Length
from wtforms.widgets import HiddenInput

from wishnotes.accounts import EMAIL_MAX, NAME_MAX, PASSWORD_MAX, PASSWORD_MIN

_EMAIL_KW = {"autocomplete": "email", "inputmode": "email", "maxlength": EMAIL_MAX}


def _password_kw(autocomplete: str) -> dict:
    return {"autocomplete": autocomplete, "maxlength": PASSWORD_MAX}


class RegisterForm(FlaskForm):
    email = EmailField(
        "Email",
        validators=[DataRequired("Please enter your email address.")],
        render_kw=_EMAIL_KW,
    )
    display_name = StringField(
        "Your name, as your partner knows you",
        validators=[DataRequired("Please enter a name."), Length(max=NAME_MAX)],
        render_kw={"autocomplete": "name", "maxlength": NAME_MAX},
    )
    password = PasswordField(
        "Password",
        description=f"At least {PASSWORD_MIN} characters. A few unrelated words work well.",
        validators=[InputRequired("Please choose a password.")],
        render_kw={**_password_kw("new-password"), "minlength": PASSWORD_MIN},
    )


class LoginForm(FlaskForm):
    email = EmailField(
        "Email", validators=[DataRequired("Please enter your email address.")], render_kw=_EMAIL_KW
    )
    password = PasswordField(
        "Password",
        validators=[InputRequired("Please enter your password.")],
        render_kw=_password_kw("current-password"),
    )
    remember = BooleanField("Keep me signed in on this device")


class UnlockForm(FlaskForm):
    password = PasswordField(
        "Password",
        validators=[InputRequired("Please enter your password.")],
        render_kw=_password_kw("current-password"),
    )


class ActionForm(FlaskForm):
    """A button that changes something: it carries only the CSRF token."""


class UnpairForm(FlaskForm):
    confirm = BooleanField(
        "Yes, end our pair", validators=[DataRequired("Please tick the box to confirm.")]
    )


class RecoveryConfirmForm(FlaskForm):
    # The kit rides along in the page that shows it, so the server never has to store it.
    kit = HiddenField(validators=[DataRequired()])
    index = IntegerField(widget=HiddenInput(), validators=[InputRequired()])
    next = HiddenField()
    typed = StringField(
        "Type group number",
        validators=[InputRequired("Please type the group from your kit.")],
        render_kw={
            "autocomplete": "off",
            "autocapitalize": "characters",
            "spellcheck": "false",
            "maxlength": 9,
        },
    )


class PasswordConfirmForm(FlaskForm):
    """An action that needs the current password (new recovery key, delete account)."""

    password = PasswordField(
        "Your password",
        validators=[InputRequired("Please enter your password.")],
        render_kw=_password_kw("current-password"),
    )
