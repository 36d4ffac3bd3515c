"""Flask-WTF forms. Validation of meaning lives in the services; these check shape."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from wishnotes import i18n, submissions
from wishnotes.accounts import EMAIL_MAX, NAME_MAX, PASSWORD_MAX, PASSWORD_MIN
from wishnotes.agreements import TEXT_MAX as AGREEMENT_MAX
from wishnotes.notes import BODY_MAX, PROMPT_KEY_MAX, REPLY_MAX, TITLE_MAX
from wishnotes.places import NAME_MAX as PLACE_NAME_MAX
from wishnotes.places import TURN_MAX
from wishnotes.rituals import TEXT_MAX as RITUAL_MAX

_EMAIL_KW = {"autocomplete": "email", "inputmode": "email", "maxlength": EMAIL_MAX}


def _password_kw(autocomplete: str) -> dict:
    return {"autocomplete": autocomplete, "maxlength": PASSWORD_MAX}


class OnceForm(FlaskForm):
    """A form that creates something: a second post of the same form creates nothing more.

    The key is minted with the form and posted back with it (see wishnotes.submissions); a
    form shown again after an error keeps the key it was posted with.
    """

    submission_key = HiddenField(
        default=submissions.mint, validators=[Length(max=submissions.KEY_LENGTH)]
    )


class RegisterForm(OnceForm):
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
    # Filled by the script with this device's zone; empty without it (the zone stays UTC).
    browser_timezone = HiddenField(validators=[Length(max=64)])


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


class LanguageForm(FlaskForm):
    """The language of the pages (and, once signed in, of the emails too)."""

    language = SelectField(
        i18n._l("Language"), choices=list(i18n.LANGUAGES.items()), validate_choice=False
    )
    next = HiddenField()


class InviteForm(OnceForm):
    """The button that makes an invite link."""


class UnpairForm(FlaskForm):
    confirm = BooleanField(
        "Yes, end our pair", validators=[DataRequired("Please tick the box to confirm.")]
    )


class RecoveryConfirmForm(FlaskForm):
    # Which group is asked, and what it must be, stay in the key session (never in the form).
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


# --- forgot password -----------------------------------------------------------------------

_RECOVERY_KW = {
    "autocomplete": "off",
    "autocapitalize": "characters",
    "spellcheck": "false",
    "maxlength": 80,
}


def _new_password_field(label: str = "New password") -> PasswordField:
    return PasswordField(
        label,
        description=f"At least {PASSWORD_MIN} characters.",
        validators=[InputRequired("Please choose a new password.")],
        render_kw={**_password_kw("new-password"), "minlength": PASSWORD_MIN},
    )


class ForgotForm(FlaskForm):
    email = EmailField(
        "Email", validators=[DataRequired("Please enter your email address.")], render_kw=_EMAIL_KW
    )


class ResetWithKeyForm(FlaskForm):
    recovery_key = StringField(
        "Recovery key",
        description="The 32 characters from your recovery kit. Dashes and spaces are fine.",
        validators=[InputRequired("Please enter your recovery key.")],
        render_kw=_RECOVERY_KW,
    )
    password = _new_password_field()


class FreshStartForm(FlaskForm):
    password = _new_password_field()
    understood = BooleanField(
        "I understand that my earlier notes stay locked until my old password or recovery key "
        "turns up"
    )


class RestoreForm(FlaskForm):
    secret = PasswordField(
        "Old password or old recovery key",
        validators=[InputRequired("Please enter an old password or recovery key.")],
        render_kw={"autocomplete": "off", "maxlength": PASSWORD_MAX},
    )


# --- appearance ----------------------------------------------------------------------------


class AppearanceForm(FlaskForm):
    # The service checks the look (validate_choice off), so a forged value gets our own message.
    app_look = RadioField(
        "How the app shows itself",
        validators=[InputRequired("Please choose one of the two looks.")],
        validate_choice=False,
    )
    blur_notes = BooleanField(
        "Blur notes until I tap them",
        description="Someone glancing at your screen sees only soft shapes, not words.",
    )


# --- notes ---------------------------------------------------------------------------------


class ComposeForm(OnceForm):
    title = StringField(
        "A title, if you like",
        render_kw={"maxlength": TITLE_MAX, "autocomplete": "off"},
    )
    body = TextAreaField(
        "Your note",
        description="Only your partner can read it. Up to 4,000 characters.",
        validators=[InputRequired("Please write your note first.")],
        render_kw={"maxlength": BODY_MAX, "rows": 8, "autocomplete": "off"},
    )
    sealed = BooleanField(
        "Sealed: keep no copy for me",
        description="Even you will not be able to open it again once it is sent.",
    )
    # Set by the week's compose screen; the service checks it is a prompt key.
    prompt_key = HiddenField(validators=[Length(max=PROMPT_KEY_MAX)])
    # Asked for only when the notes locked while the note was being written.
    password = PasswordField(
        "Your password, to unlock and send",
        render_kw=_password_kw("current-password"),
    )


class AnswerForm(FlaskForm):
    # Filled by the answer button pressed (name="choice"), so not a hidden field.
    choice = StringField()
    reply = TextAreaField(
        "A few words, if you like",
        description=f"Sent with “Let's talk about it”. Up to {REPLY_MAX} characters, sealed "
        "like a note.",
        render_kw={"maxlength": REPLY_MAX, "rows": 3, "autocomplete": "off"},
    )


class DeletePastNotesForm(FlaskForm):
    confirm = BooleanField(
        "Yes, delete the notes I wrote in past pairs",
        validators=[DataRequired("Please tick the box to confirm.")],
    )


class UnpairChoiceForm(UnpairForm):
    delete_my_notes = BooleanField(
        "Also delete the notes I wrote",
        description="They disappear for both of you. Notes your partner wrote are theirs to keep "
        "or delete.",
    )
    delete_my_practices = BooleanField(
        "Also delete what I wrote together: at our table, in our places, in our agreements",
        description="What your partner wrote there is theirs to keep or delete.",
    )


# --- account -------------------------------------------------------------------------------


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        "Current password",
        validators=[InputRequired("Please enter your current password.")],
        render_kw=_password_kw("current-password"),
    )
    new_password = PasswordField(
        "New password",
        description=f"At least {PASSWORD_MIN} characters. A few unrelated words work well.",
        validators=[InputRequired("Please choose a new password.")],
        render_kw={**_password_kw("new-password"), "minlength": PASSWORD_MIN},
    )


class DeleteAccountForm(PasswordConfirmForm):
    confirm = BooleanField(
        "Yes, delete my account and every note in it",
        validators=[DataRequired("Please tick the box to confirm.")],
    )


class TrustKeysForm(FlaskForm):
    confirm = BooleanField(
        "We compared our safety numbers and they are the same",
        validators=[DataRequired("Please tick the box once you have compared them.")],
    )


# --- week and email -----------------------------------------------------------------------
# Choices are checked by the services (wishnotes.program, wishnotes.preferences), which say
# what is wrong in plain words; these fields only turn the submitted text into values. Time
# zone choices are set by the views: a few hundred zones would make a page too heavy.


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _theme_choices():
    from wishnotes import program

    return [SelectChoice(week.key, week.title) for week in program.prompt_library().weeks]


_HOURS = [SelectChoice(hour, f"{hour:02d}:00") for hour in range(24)]
_WEEKDAYS = [
    SelectChoice(number, name)
    for number, name in enumerate(
        ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    )
]


class StartWeekForm(OnceForm):
    theme = SelectField("Theme", choices=_theme_choices, validate_choice=False)
    start_date = DateField(
        "First day",
        validators=[InputRequired("Please choose the first day.")],
        render_kw={"autocomplete": "off"},
    )
    timezone = SelectField(
        "Time zone for the week",
        description="Each day of the week begins at midnight here.",
        validate_choice=False,
    )


class EmailSettingsForm(FlaskForm):
    timezone = SelectField("Your time zone", validate_choice=False)
    weekly_email = BooleanField("Send me a weekly summary")
    weekly_weekday = SelectField(
        "On", choices=_WEEKDAYS, coerce=_int_or_none, validate_choice=False
    )
    weekly_hour = SelectField("At", choices=_HOURS, coerce=_int_or_none, validate_choice=False)
    daily_email = BooleanField("During a week, send me each day's prompt")
    daily_hour = SelectField("At", choices=_HOURS, coerce=_int_or_none, validate_choice=False)
    note_notice = BooleanField(
        "Email me when I have a new note",
        description="At most once every six hours, and never for a note you already opened.",
    )
    discreet_subjects = BooleanField(
        "Discreet emails",
        description="Subjects and text that say nothing about what the emails are for.",
    )


# --- practices around the notes ------------------------------------------------------------


class RitualForm(OnceForm):
    text = TextAreaField(
        "I miss…",
        description="A small ritual or tradition you shared. Up to 300 characters.",
        validators=[InputRequired("Please write what you miss first.")],
        render_kw={"maxlength": RITUAL_MAX, "rows": 3, "autocomplete": "off"},
    )


class RitualDayForm(FlaskForm):
    """A day for an item: planned, or the day it was done."""

    day = DateField("Day", validators=[Optional()], render_kw={"autocomplete": "off"})


class PlaceStartForm(OnceForm):
    name = StringField(
        "A name for the place, if you like",
        render_kw={"maxlength": PLACE_NAME_MAX, "autocomplete": "off"},
    )


class PlaceTurnForm(OnceForm):
    text = TextAreaField(
        "Your lines",
        description="Up to 600 characters. Then it is your partner's turn.",
        validators=[InputRequired("Please write a line first.")],
        render_kw={"maxlength": TURN_MAX, "rows": 5, "autocomplete": "off"},
    )


class AgreementForm(OnceForm):
    shipped = RadioField("What would you like to agree on?", validate_choice=False)
    text = TextAreaField(
        "In your own words",
        description="Leave it empty to use the words above, or write your own.",
        render_kw={"maxlength": AGREEMENT_MAX, "rows": 4, "autocomplete": "off"},
    )
    starts_on = DateField(
        "From",
        validators=[InputRequired("Please choose the first day.")],
        render_kw={"autocomplete": "off"},
    )
    ends_on = DateField(
        "Until (optional)", validators=[Optional()], render_kw={"autocomplete": "off"}
    )


class ListenForm(FlaskForm):
    """The listening timer's choices: read from the address, stored nowhere."""

    class Meta:
        csrf = False  # a GET form that changes nothing

    minutes = RadioField(
        "How long",
        choices=[SelectChoice(str(m), f"{m} minutes") for m in (5, 10, 15)],
    )
    speaker = RadioField(
        "Who speaks", choices=[SelectChoice("me", "Me"), SelectChoice("partner", "My partner")]
    )
