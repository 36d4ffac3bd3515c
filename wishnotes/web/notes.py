"""Notes: inbox, writing, opening, answering, deleting, and the notes of past pairs.

Whatever happens to a POST from the compose page (keys locked meanwhile, a wrong password, a
stale form, too many tries, a changed partner key) the page comes back with the words still in
it: a note being written is never lost.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import TooManyRequests

from wishnotes import accounts, cards, notes, pairing, program
from wishnotes.clock import now
from wishnotes.errors import (
    DecryptionFailed,
    EarlierKeysLocked,
    InvalidCredentials,
    InvalidInput,
    KeyChanged,
    Locked,
    NoteNotFound,
    NotPaired,
    StoredKdfRefused,
)
from wishnotes.extensions import login_manager
from wishnotes.i18n import _l
from wishnotes.web import keys
from wishnotes.web.errors import CSRF_MESSAGE, MESSAGES, render_error
from wishnotes.web.forms import ActionForm, AnswerForm, ComposeForm, DeletePastNotesForm
from wishnotes.web.limits import password_checks, signed_in_email
from wishnotes.web.navigation import form_error, render_form

bp = Blueprint("notes", __name__, url_prefix="/notes")

# As the reader chooses them, and as the writer reads them: "later" is a gentle hold.
ANSWER_CHOICES = {
    "yes": _l("Yes, let's"),
    "later": _l("Maybe later"),
    "talk": _l("Let's talk about it"),
}
# Filled in with the reader's name by the page: `answer_for_writer[code] % {"name": ...}`.
ANSWER_FOR_WRITER = {
    "yes": _l("%(name)s answered: Yes, let's."),
    "later": _l("%(name)s is keeping this one for later. It is on their mind, just not for now."),
    "talk": _l("%(name)s would like to talk about it with you."),
}
LOCKED_WHILE_WRITING = _l(
    "Your notes locked themselves while you were writing. Your words are still here: "
    "enter your password and send again."
)
PAIR_ENDED_WHILE_WRITING = _l(
    "Your pair ended while you were writing, so the note was not sent. Your words are still "
    "here, for you to keep."
)
UNREADABLE = _l(
    "This note could not be opened, so nothing of it is shown. It may have been changed after "
    "it was written."
)


@bp.app_context_processor
def notes_context() -> dict:
    """Let templates ask, only where they need it, whether a note is waiting."""

    def notes_waiting() -> int:
        return notes.unread_count(user=current_user) if current_user.is_authenticated else 0

    return {"notes_waiting": notes_waiting}


@bp.errorhandler(NoteNotFound)
def _not_found(exc: NoteNotFound):
    return render_error(404, exc.message)


@bp.errorhandler(DecryptionFailed)
def _unreadable(exc: DecryptionFailed):
    message = exc.message if isinstance(exc, EarlierKeysLocked) else UNREADABLE
    page = render_template("notes/problem.html", title=_("This note stays closed"), message=message)
    return page, 422


@bp.errorhandler(KeyChanged)
def _key_changed(exc: KeyChanged):
    page = render_template(
        "notes/problem.html",
        title=_("Your partner's key has changed"),
        message=exc.message,
        key=True,
    )
    return page, 409


@bp.errorhandler(CSRFError)
def _stale_form(exc: CSRFError):
    if request.endpoint == "notes.compose":
        return _compose_again(_("%(message)s Your note is still here.", message=CSRF_MESSAGE), 400)
    return render_error(400, CSRF_MESSAGE)


@bp.errorhandler(TooManyRequests)
def _too_many(exc: TooManyRequests):
    if request.endpoint == "notes.compose":
        message = MESSAGES[429][1]
        return _compose_again(_("%(message)s Your note is still here.", message=message), 429)
    return render_error(429)


@bp.get("/")
@login_required
def inbox():
    # A malformed or outdated cursor (or an old ?page= link) simply shows the newest notes.
    page = notes.inbox(user=current_user, before=request.args.get("before"))
    return render_template(
        "notes/inbox.html",
        page=page,
        ended=pairing.ended_pair(current_user),
        **_list_labels(page),
    )


@bp.get("/sent")
@login_required
def sent():
    page = notes.sent(user=current_user, before=request.args.get("before"))
    return render_template("notes/sent.html", page=page, **_list_labels(page))


def _list_labels(rows) -> dict:
    """What tells listed notes apart without their words: prompt titles and the answers.

    Answers are sealed, so they show only while the notes are unlocked.
    """
    answered = [row.id for row in rows if row.answered_at is not None]
    try:
        user_key = keys.user_key() if answered else None
    except Locked:
        user_key = None
    answers = (
        notes.answers_of(user=current_user, user_key=user_key, note_ids=answered, now=now())
        if user_key
        else {}
    )
    return {"answers": answers, "prompt_title": _prompt_title, "answer_choices": _answer_choices()}


@bp.route("/new", methods=["GET", "POST"])
@password_checks(signed_in_email, exempt_when=lambda: not request.form.get("password"))
def compose():
    if not current_user.is_authenticated:
        # Signed out in another tab while writing: hand the words back instead of dropping them.
        if request.method == "POST":
            return _compose_again("", 401)
        return login_manager.unauthorized()
    if current_user.pair_id is None:
        flash(NotPaired.message)
        return redirect(url_for("pairing.index"))
    form = ComposeForm(prompt_key=request.args.get("prompt", ""))
    _apply_starter(form)
    if form.validate_on_submit() and _send(form):
        flash(_("Your note is on its way. It waits quietly until your partner opens it."))
        return _with_key_cookie(redirect(url_for("notes.sent")))
    return _with_key_cookie(make_response(_render_compose(form)))


def _apply_starter(form: ComposeForm) -> None:
    """Fill the body with a prompt's sentence starter chosen by link (works without script)."""
    if form.is_submitted():
        return
    if wish := cards.find(request.args.get("wish")):
        form.body.data = f"{wish.text}. "
        return
    found = program.find_starter(
        prompt_key=request.args.get("prompt"), index=request.args.get("starter", "")
    )
    if found is None:
        if not program.find_prompt(form.prompt_key.data):
            form.prompt_key.data = ""
        return
    prompt, starter = found
    form.prompt_key.data = prompt.key
    form.body.data = starter.rstrip("…").rstrip() + " "


def _send(form: ComposeForm) -> bool:
    """Send the composed note; on failure put the reason on the form and return False."""
    try:
        notes.write_note(
            user=current_user,
            user_key=_user_key_or_password(form.password.data),
            text=form.body.data,
            title=form.title.data,
            sealed=form.sealed.data,
            prompt_key=form.prompt_key.data or None,
            submission_key=form.submission_key.data,
            now=now(),
        )
    except Locked:
        form.password.errors.append(LOCKED_WHILE_WRITING)
    except NotPaired:
        form.form_errors.append(PAIR_ENDED_WHILE_WRITING)
    except InvalidCredentials:
        form.password.errors.append(_("That password does not match."))
    except InvalidInput as exc:
        form_error(form, exc)
    except KeyChanged as exc:
        form.form_errors.append(exc.message)
        g.key_changed = True
    except StoredKdfRefused as exc:
        form.form_errors.append(exc.message)
    return not form.errors


def _user_key_or_password(password: str | None) -> bytes:
    """Return the unlocked user key, or unlock with the password typed on the compose page."""
    try:
        return keys.user_key()
    except Locked:
        if not password:
            raise
    unlocked = accounts.authenticate(email=current_user.email, password=password, kdf=keys.kdf())
    g.new_key_cookie = keys.open_session(unlocked.user_key)
    return unlocked.user_key


def _with_key_cookie(response):
    if "new_key_cookie" in g:
        keys.set_cookie(response, g.new_key_cookie)
    return response


def _render_compose(form: ComposeForm, status: int | None = None):
    body, default_status = render_form(
        "notes/compose.html",
        form,
        needs_password=not keys.is_unlocked(),
        prompt=program.find_prompt(form.prompt_key.data),
        key_changed=g.get("key_changed", False),
    )
    return body, status or default_status


def _compose_again(message: str, status: int):
    if not current_user.is_authenticated:
        return render_template("notes/signed_out.html", text=request.form.get("body", "")), 401
    form = ComposeForm()
    form.form_errors.append(message)
    return _render_compose(form, status)


@bp.get("/<note_id>")
@login_required
def show(note_id: str):
    opened = notes.open_note(
        user=current_user, user_key=keys.user_key(), note_id=note_id, now=now()
    )
    # Just answered: the note stays as it was on screen, not blurred again.
    shown = session.pop("note_shown", None) == note_id
    return render_template(
        "notes/note.html", opened=opened, form=AnswerForm(), shown=shown, **_labels()
    )


@bp.post("/<note_id>/answer")
@login_required
def answer(note_id: str):
    form = AnswerForm()
    try:
        notes.answer_note(
            user=current_user,
            user_key=keys.user_key(),
            note_id=note_id,
            choice=form.choice.data or "",
            reply=form.reply.data,
            now=now(),
        )
    except InvalidInput as exc:
        # Back to the note with the words still in the box and the reason next to them.
        form_error(form, exc)
        opened = notes.open_note(
            user=current_user, user_key=keys.user_key(), note_id=note_id, now=now()
        )
        page = render_template("notes/note.html", opened=opened, form=form, shown=True, **_labels())
        return page, 422
    except Locked:
        # Back to the note after unlocking: the answer URL itself takes only POSTs.
        return redirect(url_for("auth.unlock", next=url_for("notes.show", note_id=note_id)))
    flash(_("Your answer is sent. You can change it whenever you like."))
    session["note_shown"] = note_id
    return redirect(url_for("notes.show", note_id=note_id))


@bp.route("/<note_id>/delete", methods=["GET", "POST"])
@login_required
def delete(note_id: str):
    form = ActionForm()
    if form.validate_on_submit():
        keys.user_key()  # destroying needs unlocked keys, not only a sign-in cookie
        notes.delete_note(user=current_user, note_id=note_id)
        flash(_("The note is deleted, for both of you."))
        return redirect(url_for("notes.sent"))
    note = notes.written_note(user=current_user, note_id=note_id)
    return render_template("notes/delete.html", note=note, form=form)


@bp.get("/past")
@login_required
def past():
    return render_template(
        "notes/past.html", past=notes.past(user=current_user), form=DeletePastNotesForm()
    )


@bp.get("/past/<note_id>")
@login_required
def show_past(note_id: str):
    opened = notes.open_past_note(
        user=current_user, user_key=keys.user_key(), note_id=note_id, now=now()
    )
    return render_template("notes/note.html", opened=opened, form=None, past=True, **_labels())


@bp.post("/past/delete")
@login_required
def delete_past():
    form = DeletePastNotesForm()
    if form.validate_on_submit():
        if not keys.is_unlocked():  # destroying needs unlocked keys, not only a sign-in cookie
            return redirect(url_for("auth.unlock", next=url_for("notes.past")))
        count = notes.delete_past_written(user=current_user)
        flash(
            _("The notes you wrote in past pairs are deleted.")
            if count
            else _("Nothing to delete.")
        )
        return redirect(url_for("notes.past"))
    return render_form("notes/past.html", form, past=notes.past(user=current_user))


def _labels() -> dict:
    return {
        "answer_choices": _answer_choices(),
        "answer_for_writer": ANSWER_FOR_WRITER,
        "prompt_title": _prompt_title,
    }


def _answer_choices() -> dict[str, str]:
    # Worded now, as plain text: the page escapes it like any other text.
    return {code: str(label) for code, label in ANSWER_CHOICES.items()}


def _prompt_title(prompt_key: str | None) -> str | None:
    """The title of the week prompt a note answered (shipped text, never the note's)."""
    prompt = program.find_prompt(prompt_key)
    return prompt.title if prompt else None
