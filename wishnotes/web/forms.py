"""Flask-WTF forms. Validation of meaning lives in the services; these check shape."""

from __future__ import annotations

import functools

from babel import support
from flask import current_app
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
from wtforms.i18n import messages_path
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from wishnotes import i18n, submissions
from wishnotes.accounts import EMAIL_MAX, NAME_MAX, PASSWORD_MAX, PASSWORD_MIN
from wishnotes.agreements import TEXT_MAX as AGREEMENT_MAX
from wishnotes.i18n import _l, _nl
from wishnotes.notes import BODY_MAX, PROMPT_KEY_MAX, REPLY_MAX, TITLE_MAX
from wishnotes.places import NAME_MAX as PLACE_NAME_MAX
from wishnotes.places import TURN_MAX
from wishnotes.rituals import TEXT_MAX as RITUAL_MAX

_EMAIL_KW = {"autocomplete": "email", "inputmode": "email", "maxlength": EMAIL_MAX}


def _password_kw(autocomplete: str) -> dict:
    return {"autocomplete": autocomplete, "maxlength": PASSWORD_MAX}


@functools.cache
def _wtforms_catalog(language: str) -> support.Translations:
    return support.Translations.load(messages_path(), [language], domain="wtforms")


class _WTFormsMessages:
    """WTForms' own messages ("Field cannot be longer than ...") in the page's language.

    Flask-WTF reads WTForms' catalog from disk again on every request that makes a form; each
    language's catalog is read here once per process.
    """

    def gettext(self, string: str) -> str:
        return _wtforms_catalog(i18n.current()).ugettext(string)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return _wtforms_catalog(i18n.current()).ungettext(singular, plural, n)


_WTFORMS_MESSAGES = _WTFormsMessages()


class Form(FlaskForm):
    """The base of every form here: Flask-WTF's, with WTForms' messages looked up cheaply."""

    class Meta(FlaskForm.Meta):
        def get_translations(self, form):
            if not current_app.config.get("WTF_I18N_ENABLED", True):
                return super().get_translations(form)
            return _WTFORMS_MESSAGES


class OnceForm(Form):
    """A form that creates something: a second post of the same form creates nothing more.

    The key is minted with the form and posted back with it (see wishnotes.submissions); a
    form shown again after an error keeps the key it was posted with.
    """

    submission_key = HiddenField(
        default=submissions.mint, validators=[Length(max=submissions.KEY_LENGTH)]
    )


class RegisterForm(OnceForm):
    email = EmailField(
        _l("Email"),
        validators=[DataRequired(_l("Please enter your email address."))],
        render_kw=_EMAIL_KW,
    )
    display_name = StringField(
        _l("Your name, as your partner knows you"),
        validators=[DataRequired(_l("Please enter a name.")), Length(max=NAME_MAX)],
        render_kw={"autocomplete": "name", "maxlength": NAME_MAX},
    )
    password = PasswordField(
        _l("Password"),
        description=_l(
            "At least %(num)d characters. A few unrelated words work well.", num=PASSWORD_MIN
        ),
        validators=[InputRequired(_l("Please choose a password."))],
        render_kw={**_password_kw("new-password"), "minlength": PASSWORD_MIN},
    )
    # Filled by the script with this device's zone; empty without it (the zone stays UTC).
    browser_timezone = HiddenField(validators=[Length(max=64)])


class LoginForm(Form):
    email = EmailField(
        _l("Email"),
        validators=[DataRequired(_l("Please enter your email address."))],
        render_kw=_EMAIL_KW,
    )
    password = PasswordField(
        _l("Password"),
        validators=[InputRequired(_l("Please enter your password."))],
        render_kw=_password_kw("current-password"),
    )
    remember = BooleanField(_l("Keep me signed in on this device"))


class UnlockForm(Form):
    password = PasswordField(
        _l("Password"),
        validators=[InputRequired(_l("Please enter your password."))],
        render_kw=_password_kw("current-password"),
    )


class ActionForm(Form):
    """A button that changes something: it carries only the CSRF token."""


class LanguageForm(Form):
    """The language of the pages (and, once signed in, of the emails too)."""

    language = SelectField(
        _l("Language"),
        choices=[SelectChoice(code, name) for code, name in i18n.LANGUAGES.items()],
        validate_choice=False,
    )
    next = HiddenField()


class InviteForm(OnceForm):
    """The button that makes an invite link."""


class UnpairForm(Form):
    confirm = BooleanField(
        _l("Yes, end our pair"), validators=[DataRequired(_l("Please tick the box to confirm."))]
    )


class RecoveryConfirmForm(Form):
    # Which group is asked, and what it must be, stay in the key session (never in the form).
    next = HiddenField()
    typed = StringField(
        _l("Type group number"),
        validators=[InputRequired(_l("Please type the group from your kit."))],
        render_kw={
            "autocomplete": "off",
            "autocapitalize": "characters",
            "spellcheck": "false",
            "maxlength": 9,
        },
    )


class PasswordConfirmForm(Form):
    """An action that needs the current password (new recovery key, delete account)."""

    password = PasswordField(
        _l("Your password"),
        validators=[InputRequired(_l("Please enter your password."))],
        render_kw=_password_kw("current-password"),
    )


# --- forgot password -----------------------------------------------------------------------

_RECOVERY_KW = {
    "autocomplete": "off",
    "autocapitalize": "characters",
    "spellcheck": "false",
    "maxlength": 80,
}


def _new_password_field(label: str = _l("New password")) -> PasswordField:
    return PasswordField(
        label,
        description=_l("At least %(num)d characters.", num=PASSWORD_MIN),
        validators=[InputRequired(_l("Please choose a new password."))],
        render_kw={**_password_kw("new-password"), "minlength": PASSWORD_MIN},
    )


class ForgotForm(Form):
    email = EmailField(
        _l("Email"),
        validators=[DataRequired(_l("Please enter your email address."))],
        render_kw=_EMAIL_KW,
    )


class ResetWithKeyForm(Form):
    recovery_key = StringField(
        _l("Recovery key"),
        description=_l("The 32 characters from your recovery kit. Dashes and spaces are fine."),
        validators=[InputRequired(_l("Please enter your recovery key."))],
        render_kw=_RECOVERY_KW,
    )
    password = _new_password_field()


class FreshStartForm(Form):
    password = _new_password_field()
    understood = BooleanField(
        _l(
            "I understand that my earlier notes stay locked until my old password or recovery "
            "key turns up"
        )
    )


class RestoreForm(Form):
    secret = PasswordField(
        _l("Old password or old recovery key"),
        validators=[InputRequired(_l("Please enter an old password or recovery key."))],
        render_kw={"autocomplete": "off", "maxlength": PASSWORD_MAX},
    )


# --- appearance ----------------------------------------------------------------------------


class AppearanceForm(Form):
    # The service checks the look (validate_choice off), so a forged value gets our own message.
    app_look = RadioField(
        _l("How the app shows itself"),
        validators=[InputRequired(_l("Please choose one of the two looks."))],
        validate_choice=False,
    )
    blur_notes = BooleanField(
        _l("Blur notes until I tap them"),
        description=_l("Someone glancing at your screen sees only soft shapes, not words."),
    )


# --- notes ---------------------------------------------------------------------------------


class ComposeForm(OnceForm):
    title = StringField(
        _l("A title, if you like"),
        render_kw={"maxlength": TITLE_MAX, "autocomplete": "off"},
    )
    body = TextAreaField(
        _l("Your note"),
        description=_l("Only your partner can read it. Up to 4,000 characters."),
        validators=[InputRequired(_l("Please write your note first."))],
        render_kw={"maxlength": BODY_MAX, "rows": 8, "autocomplete": "off"},
    )
    sealed = BooleanField(
        _l("Sealed: keep no copy for me"),
        description=_l("Even you will not be able to open it again once it is sent."),
    )
    # Set by the week's compose screen; the service checks it is a prompt key.
    prompt_key = HiddenField(validators=[Length(max=PROMPT_KEY_MAX)])
    # Asked for only when the notes locked while the note was being written.
    password = PasswordField(
        _l("Your password, to unlock and send"),
        render_kw=_password_kw("current-password"),
    )


class AnswerForm(Form):
    # Filled by the answer button pressed (name="choice"), so not a hidden field.
    choice = StringField()
    reply = TextAreaField(
        _l("A few words, if you like"),
        description=_l(
            "Sent with “Let's talk about it”. Up to %(num)d characters, sealed like a note.",
            num=REPLY_MAX,
        ),
        render_kw={"maxlength": REPLY_MAX, "rows": 3, "autocomplete": "off"},
    )


class DeletePastNotesForm(Form):
    confirm = BooleanField(
        _l("Yes, delete the notes I wrote in past pairs"),
        validators=[DataRequired(_l("Please tick the box to confirm."))],
    )


class UnpairChoiceForm(UnpairForm):
    delete_my_notes = BooleanField(
        _l("Also delete the notes I wrote"),
        description=_l(
            "They disappear for both of you. Notes your partner wrote are theirs to keep or delete."
        ),
    )
    delete_my_practices = BooleanField(
        _l("Also delete what I wrote together: at our table, in our places, in our agreements"),
        description=_l("What your partner wrote there is theirs to keep or delete."),
    )


# --- account -------------------------------------------------------------------------------


class ChangePasswordForm(Form):
    current_password = PasswordField(
        _l("Current password"),
        validators=[InputRequired(_l("Please enter your current password."))],
        render_kw=_password_kw("current-password"),
    )
    new_password = PasswordField(
        _l("New password"),
        description=_l(
            "At least %(num)d characters. A few unrelated words work well.", num=PASSWORD_MIN
        ),
        validators=[InputRequired(_l("Please choose a new password."))],
        render_kw={**_password_kw("new-password"), "minlength": PASSWORD_MIN},
    )


class DeleteAccountForm(PasswordConfirmForm):
    confirm = BooleanField(
        _l("Yes, delete my account and every note in it"),
        validators=[DataRequired(_l("Please tick the box to confirm."))],
    )


class TrustKeysForm(Form):
    confirm = BooleanField(
        _l("We compared our safety numbers and they are the same"),
        validators=[DataRequired(_l("Please tick the box once you have compared them."))],
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
        (
            _l("Monday"),
            _l("Tuesday"),
            _l("Wednesday"),
            _l("Thursday"),
            _l("Friday"),
            _l("Saturday"),
            _l("Sunday"),
        )
    )
]


class StartWeekForm(OnceForm):
    theme = SelectField(_l("Theme"), choices=_theme_choices, validate_choice=False)
    start_date = DateField(
        _l("First day"),
        validators=[InputRequired(_l("Please choose the first day."))],
        render_kw={"autocomplete": "off"},
    )
    timezone = SelectField(
        _l("Time zone for the week"),
        description=_l("Each day of the week begins at midnight here."),
        validate_choice=False,
    )


class EmailSettingsForm(Form):
    timezone = SelectField(_l("Your time zone"), validate_choice=False)
    weekly_email = BooleanField(_l("Send me a weekly summary"))
    weekly_weekday = SelectField(
        _l("On"), choices=_WEEKDAYS, coerce=_int_or_none, validate_choice=False
    )
    weekly_hour = SelectField(_l("At"), choices=_HOURS, coerce=_int_or_none, validate_choice=False)
    daily_email = BooleanField(_l("During a week, send me each day's prompt"))
    daily_hour = SelectField(_l("At"), choices=_HOURS, coerce=_int_or_none, validate_choice=False)
    note_notice = BooleanField(
        _l("Email me when I have a new note"),
        description=_l("At most once every six hours, and never for a note you already opened."),
    )
    discreet_subjects = BooleanField(
        _l("Discreet emails"),
        description=_l("Subjects and text that say nothing about what the emails are for."),
    )


# --- practices around the notes ------------------------------------------------------------


class RitualForm(OnceForm):
    text = TextAreaField(
        _l("I miss…"),
        description=_l("A small ritual or tradition you shared. Up to 300 characters."),
        validators=[InputRequired(_l("Please write what you miss first."))],
        render_kw={"maxlength": RITUAL_MAX, "rows": 3, "autocomplete": "off"},
    )


class RitualDayForm(Form):
    """A day for an item: planned, or the day it was done."""

    day = DateField(_l("Day"), validators=[Optional()], render_kw={"autocomplete": "off"})


class PlaceStartForm(OnceForm):
    name = StringField(
        _l("A name for the place, if you like"),
        render_kw={"maxlength": PLACE_NAME_MAX, "autocomplete": "off"},
    )


class PlaceTurnForm(OnceForm):
    text = TextAreaField(
        _l("Your lines"),
        description=_l("Up to 600 characters. Then it is your partner's turn."),
        validators=[InputRequired(_l("Please write a line first."))],
        render_kw={"maxlength": TURN_MAX, "rows": 5, "autocomplete": "off"},
    )


class AgreementForm(OnceForm):
    shipped = RadioField(_l("What would you like to agree on?"), validate_choice=False)
    text = TextAreaField(
        _l("In your own words"),
        description=_l("Leave it empty to use the words above, or write your own."),
        render_kw={"maxlength": AGREEMENT_MAX, "rows": 4, "autocomplete": "off"},
    )
    starts_on = DateField(
        _l("From"),
        validators=[InputRequired(_l("Please choose the first day."))],
        render_kw={"autocomplete": "off"},
    )
    ends_on = DateField(
        _l("Until (optional)"), validators=[Optional()], render_kw={"autocomplete": "off"}
    )


class ListenForm(Form):
    """The listening timer's choices: read from the address, stored nowhere."""

    class Meta:
        csrf = False  # a GET form that changes nothing

    minutes = RadioField(
        _l("How long"),
        choices=[
            SelectChoice(str(m), _nl("%(num)d minute", "%(num)d minutes", m)) for m in (5, 10, 15)
        ],
    )
    speaker = RadioField(
        _l("Who speaks"),
        choices=[SelectChoice("me", _l("Me")), SelectChoice("partner", _l("My partner"))],
    )
