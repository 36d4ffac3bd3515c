"""Notes: write, list, open, answer and delete; only the two members of a pair reach a note.

What is stored in clear is metadata the pages need without keys: who wrote to whom in which pair,
when, whether it was read or answered. The title and text live only in the envelope, as the
JSON `{"b": text, "t": title or null}`; an answer is its own envelope (kind "answer", written by
the reader to the writer, sealed to both) whose body is the choice code, e.g. b"later". With
"talk", the reader may add a few words: one more envelope of kind "reply", made the same way.

Access: every function that takes a note id raises NoteNotFound, never a different error, for a
malformed id, a note of another pair, a note the user neither wrote nor received, or one outside
the place asked for (the current pair, or an ended pair for `past`). Opening checks the signature
with the key the viewer pinned (see keyring), then the header against the row, then the viewer's
stanza: KeyChanged when the partner's key moved, DecryptionFailed for anything else.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from flask_babel import format_number
from sqlalchemy import bindparam, delete, func, insert, literal, select, tuple_
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached

from wishnotes import crypto, envelopes, keyring, outbox, pairing, submissions, texts
from wishnotes.errors import DecryptionFailed, InvalidInput, KeyChanged, NoteNotFound, NotPaired
from wishnotes.extensions import db
from wishnotes.i18n import _l
from wishnotes.models import Note, Pair, User

BODY_MAX = 4000
REPLY_MAX = 500
TITLE_MAX = 120
PROMPT_KEY_MAX = 64
# A phone screen or two of cards: a page costs about what an inbox of ten notes costs.
PAGE_SIZE = 25
PAST_LIMIT = 200  # the past notes page lists this many of each kind, without paging
ANSWERS = ("yes", "later", "talk")

_NOTE_ID = re.compile(r"[0-9a-f]{32}")
# A page cursor: the created_at second and id of the last note shown, base64url-encoded.
_CURSOR = re.compile(r"(\d{1,12})\.([0-9a-f]{32})")
_CURSOR_MAX = 64
_CURSOR_LATEST = 253402300799  # 9999-12-31T23:59:59Z, the last second a datetime can hold
_PROMPT_KEY = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# Embeddings, overrides and isolates can make a title read as something else (as in names);
# other format characters stay, since emoji need the zero-width joiner.
_DIRECTION_CONTROLS = frozenset(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]))


@dataclass(frozen=True)
class Opened:
    """A note as its viewer may see it. `text` is None when the writer views a sealed note."""

    note: Note
    sender: User
    recipient: User
    viewer_is_writer: bool
    title: str | None
    text: str | None
    answer: str | None
    reply: str | None = None  # the reader's few words with "let's talk about it"


class Page(list):
    """One page of a note list (its rows); `next_cursor` asks for the older notes, if any."""

    def __init__(self, rows: list[Row], *, next_cursor: str | None, first: bool) -> None:
        super().__init__(rows)
        self.next_cursor = next_cursor
        self.first = first  # no cursor was given (or it was malformed): the newest notes


@dataclass(frozen=True)
class Past:
    """Notes of the user's ended pairs: those received (still theirs) and those they wrote."""

    received: list[Row]
    written: list[Row]


# --- writing ------------------------------------------------------------------------------


def write_note(
    *,
    user: User,
    user_key: bytes,
    text: str,
    title: str | None = None,
    sealed: bool = False,
    prompt_key: str | None = None,
    submission_key: str | None = None,
    now: datetime,
) -> Note:
    """Seal a note to the user's partner (and to the user unless `sealed`) and store it.

    A `submission_key` (see wishnotes.submissions) that already made a note returns that note
    instead of a second one. NotPaired also when the pair ends, or the partner's account goes,
    while the note is being sent: the caller still holds the words.
    """
    text = _check_text(text)
    title = _check_title(title)
    prompt_key = _check_prompt_key(prompt_key)
    submission_key = submissions.checked(submission_key)
    partner = pairing.partner_of(user)
    if partner is None:
        raise NotPaired()
    ring = keyring.unlock(user=user, user_key=user_key)
    created = envelopes.whole_second(now)
    note_id = uuid.uuid4().hex
    body = json.dumps({"b": text, "t": title}, ensure_ascii=False, separators=(",", ":"))
    note = Note(
        id=note_id,
        pair_id=user.pair_id,
        sender_id=user.id,
        recipient_id=partner.id,
        created_at=created,
        sealed=bool(sealed),
        prompt_key=prompt_key,
        submission_key=submission_key,
        envelope=envelopes.seal(
            ring=ring,
            reader=partner,
            item_id=note_id,
            pair_id=user.pair_id,
            kind="note",
            body=body.encode("utf-8"),
            at=created,
            now=now,
            sealed=bool(sealed),
        ),
    )
    if (stored := _store_if_still_paired(note, user=user, partner=partner)) is not note:
        return stored  # the same form, posted before or at the same moment: its note
    db.session.commit()
    # After the commit: sends to one person must not wait on their row (see the outbox).
    outbox.queue_note_notice(recipient=partner, now=now)
    return note


def _store_if_still_paired(note: Note, *, user: User, partner: User) -> Note:
    """Insert `note` only if both people are still members of its pair, in one statement.

    The check rides inside the INSERT (INSERT ... SELECT ... WHERE), so it costs no round trip
    and sees the rows as they are when the note is written: a pair ended or an account deleted
    a moment ago (SQLite: before this writer got the lock; PostgreSQL: committed before this
    statement) means NotPaired; an end still being committed meanwhile orders after this note,
    which then simply belongs to the pair's past. A second post of the same form hits the
    unique submission key, and the note the first one stored is returned instead.
    """
    columns = [c for c in Note.__table__.columns if getattr(note, c.key) is not None]
    members = (
        select(func.count())
        .select_from(User)
        .where(User.id.in_([user.id, partner.id]), User.pair_id == note.pair_id)
        .scalar_subquery()
    )
    row = select(*(literal(getattr(note, c.key), c.type) for c in columns)).where(members == 2)
    table = Note.__table__
    try:
        # RETURNING, not rowcount: psycopg reports no count for an INSERT ... SELECT here.
        stored = db.session.execute(
            insert(table).from_select(columns, row).returning(table.c.id)
        ).scalar()
    except IntegrityError:
        db.session.rollback()
        if (earlier := _submitted(user, note.submission_key)) is not None:
            return earlier
        if pairing.partner_of(user) is None:  # deleted while this statement waited for it
            raise NotPaired() from None
        raise
    if stored is None:
        db.session.rollback()
        raise NotPaired()
    # Written exactly as this object says: the session may hold it without reading it back.
    make_transient_to_detached(note)
    db.session.add(note)
    return note


def _submitted(user: User, submission_key: str | None) -> Note | None:
    return submissions.made_by(Note, Note.sender_id, user.id, submission_key)


def answer_note(
    *,
    user: User,
    user_key: bytes,
    note_id: str,
    choice: str,
    now: datetime,
    reply: str | None = None,
) -> Note:
    """Answer a note the user received in their pair, or change the answer they gave.

    With "talk" the answer can carry a short written reply; any other answer carries none (an
    earlier reply goes when the answer changes).
    """
    if choice not in ANSWERS:
        raise InvalidInput(_l("Please choose one of the answers."), field="choice")
    reply = _check_reply(reply, choice=choice)
    note = _find(user, note_id, current=True)
    if note.recipient_id != user.id:
        raise NoteNotFound()
    writer = db.session.get(User, note.sender_id)
    ring = keyring.unlock(user=user, user_key=user_key)
    answered = envelopes.whole_second(now)
    note.answer_envelope = envelopes.seal(
        ring=ring,
        reader=writer,
        item_id=note.id,
        pair_id=note.pair_id,
        kind="answer",
        body=choice.encode("ascii"),
        at=answered,
        now=now,
    )
    note.reply_envelope = None
    if reply is not None:
        note.reply_envelope = envelopes.seal(
            ring=ring,
            reader=writer,
            item_id=note.id,
            pair_id=note.pair_id,
            kind="reply",
            body=reply.encode("utf-8"),
            at=answered,
            now=now,
        )
    note.answered_at = answered
    note.read_at = note.read_at or now
    db.session.commit()
    return note


# --- reading ------------------------------------------------------------------------------


def inbox(*, user: User, before: str | None = None) -> Page:
    """Return a page of notes the user received in their current pair, newest first.

    `before` is the cursor of the page before (Page.next_cursor); a malformed one gives the
    first page. Metadata only, never the envelopes.
    """
    if user.pair_id is None:
        return Page([], next_cursor=None, first=True)
    return _page(user, before, received=True)


def sent(*, user: User, before: str | None = None) -> Page:
    """Return a page of notes the user wrote in their current pair, newest first."""
    if user.pair_id is None:
        return Page([], next_cursor=None, first=True)
    return _page(user, before, received=False)


def answers_of(*, user: User, user_key: bytes, note_ids: list[str], now: datetime) -> dict:
    """Return {note id: answer code} for answered notes of the current pair among `note_ids`.

    For lists that tell notes apart; a note whose answer cannot be opened is simply left out
    (its own page says why).
    """
    if user.pair_id is None or not note_ids:
        return {}
    rows = db.session.scalars(
        select(Note).where(
            Note.id.in_(note_ids),
            Note.pair_id == user.pair_id,
            (Note.sender_id == user.id) | (Note.recipient_id == user.id),
            Note.answer_envelope.is_not(None),
        )
    )
    ring = keyring.unlock(user=user, user_key=user_key)
    found = {}
    for note in rows:
        sender, recipient = _members(note)
        try:
            plain = _open_envelope(
                note.answer_envelope,
                ring,
                note=note,
                kind="answer",
                writer=recipient,
                reader=sender,
                at=note.answered_at,
                sealed=False,
                now=now,
                strict=True,
            )
        except (DecryptionFailed, KeyChanged):
            continue
        answer = plain.decode("ascii", "replace")
        if answer in ANSWERS:
            found[note.id] = answer
    return found


def _members(note: Note) -> tuple[User, User]:
    return db.session.get(User, note.sender_id), db.session.get(User, note.recipient_id)


def unread_count(*, user: User) -> int:
    """Return how many notes in the current pair the user has not opened yet."""
    if user.pair_id is None:
        return 0
    return db.session.scalar(
        select(func.count())
        .select_from(Note)
        .where(Note.pair_id == user.pair_id, Note.recipient_id == user.id, Note.read_at.is_(None))
    )


def answer_waiting(*, user: User) -> bool:
    """Return whether the partner answered a note of the user's that they have not looked at."""
    if user.pair_id is None:
        return False
    return (
        db.session.scalar(
            select(Note.id)
            .where(Note.pair_id == user.pair_id, Note.sender_id == user.id)
            .where(Note.answered_at.is_not(None))
            .where((Note.answer_seen_at.is_(None)) | (Note.answer_seen_at < Note.answered_at))
            .limit(1)
        )
        is not None
    )


def open_note(*, user: User, user_key: bytes, note_id: str, now: datetime) -> Opened:
    """Open a note of the user's current pair; its reader marks it read, its writer the answer."""
    note = _find(user, note_id, current=True)
    ring = keyring.unlock(user=user, user_key=user_key)
    opened = _open(note, ring, now=now)
    first_read = note.recipient_id == user.id and note.read_at is None
    if first_read:
        note.read_at = now
    new_answer = (
        note.sender_id == user.id
        and note.answered_at is not None
        and (note.answer_seen_at is None or note.answer_seen_at < note.answered_at)
    )
    if new_answer:
        note.answer_seen_at = now
    if first_read or new_answer or ring.changed:
        # Only then: a commit expires what the page is about to show, and reloading costs reads.
        db.session.commit()
    return opened


def past(*, user: User) -> Past:
    """Return the notes of the user's ended pairs that still exist, newest first."""
    ended = select(Pair.id).where(Pair.ended_at.is_not(None))
    received = _listing(Note.sender_id).where(Note.recipient_id == user.id, Note.pair_id.in_(ended))
    written = _listing(Note.recipient_id).where(Note.sender_id == user.id, Note.pair_id.in_(ended))
    return Past(received=_first_page(received), written=_first_page(written))


def open_past_note(*, user: User, user_key: bytes, note_id: str, now: datetime) -> Opened:
    """Open a note of one of the user's ended pairs (read only: no answers any more)."""
    note = _find(user, note_id, current=False)
    ring = keyring.unlock(user=user, user_key=user_key)
    opened = _open(note, ring, now=now, strict=False)
    if ring.changed:
        db.session.commit()
    return opened


# --- deleting -----------------------------------------------------------------------------


def written_note(*, user: User, note_id: str) -> Note:
    """Return a note the user wrote in their current pair (to confirm deleting it)."""
    note = _find(user, note_id, current=True)
    if note.sender_id != user.id:
        raise NoteNotFound()
    return note


def delete_note(*, user: User, note_id: str) -> None:
    """Delete a note the user wrote in their current pair, for both of them."""
    db.session.delete(written_note(user=user, note_id=note_id))
    db.session.commit()


def delete_past_written(*, user: User) -> int:
    """Delete every note the user wrote in an ended pair; return how many."""
    ended = select(Pair.id).where(Pair.ended_at.is_not(None))
    count = db.session.execute(
        delete(Note).where(Note.sender_id == user.id, Note.pair_id.in_(ended))
    ).rowcount
    db.session.commit()
    return count


# --- checks -------------------------------------------------------------------------------


def _check_text(text: str | None) -> str:
    # Browsers send a textarea's line breaks as CRLF; count them as one character, as typed.
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise InvalidInput(_l("Please write your note first."), field="body")
    if len(text) > BODY_MAX:
        raise InvalidInput(
            _l(
                "Please keep the note under %(max)s characters; it has %(count)s.",
                max=format_number(BODY_MAX),
                count=format_number(len(text)),
            ),
            field="body",
        )
    _check_characters(text, field="body")
    return text


def _check_reply(reply: str | None, *, choice: str) -> str | None:
    reply = (reply or "").replace("\r\n", "\n").replace("\r", "\n")
    if not reply.strip():
        return None
    if choice != "talk":
        raise InvalidInput(_l("A written reply goes with “Let's talk about it”."), field="reply")
    if len(reply) > REPLY_MAX:
        raise InvalidInput(
            _l(
                "Please keep the reply under %(max)s characters; it has %(count)s.",
                max=format_number(REPLY_MAX),
                count=format_number(len(reply)),
            ),
            field="reply",
        )
    _check_characters(reply, field="reply")
    return reply


def _check_title(title: str | None) -> str | None:
    title = " ".join((title or "").split())
    if not title:
        return None
    if len(title) > TITLE_MAX:
        raise InvalidInput(
            _l("Please keep the title under %(max)s characters.", max=format_number(TITLE_MAX)),
            field="title",
        )
    _check_characters(title, field="title")
    if not _DIRECTION_CONTROLS.isdisjoint(title):
        raise InvalidInput(
            _l(
                "The title contains characters that change the direction of text. "
                "Please remove them."
            ),
            field="title",
        )
    return title


def _check_characters(value: str, *, field: str) -> None:
    texts.check_characters(value, field=field)


def _check_prompt_key(prompt_key: str | None) -> str | None:
    if not prompt_key:
        return None
    if len(prompt_key) > PROMPT_KEY_MAX or not _PROMPT_KEY.fullmatch(prompt_key):
        raise InvalidInput(_l("This prompt is not known. Please write the note without it."))
    return prompt_key


# --- internals ----------------------------------------------------------------------------


def _listing(other_id):
    """Select the clear metadata of notes plus the other person's name; never the envelopes."""
    return (
        select(
            Note.id,
            Note.created_at,
            Note.read_at,
            Note.sealed,
            Note.answered_at,
            Note.prompt_key,
            User.display_name.label("name"),
        )
        .join(User, User.id == other_id)
        # Both descending, so one index (ix_notes_inbox, ix_notes_sent) read backwards serves.
        .order_by(Note.created_at.desc(), Note.id.desc())
    )


def _first_page(query) -> list[Row]:
    return list(db.session.execute(query.limit(PAST_LIMIT)))


def _page(user: User, before: str | None, *, received: bool) -> Page:
    """Read one page after the cursor (keyset paging: no OFFSET, no count of what came before)."""
    position = _decode_cursor(before)
    parameters = {"pair_id": user.pair_id, "user_id": user.id}
    if position is not None:
        parameters["before_at"], parameters["before_id"] = position
    query = _page_query(received=received, after=position is not None)
    rows = list(db.session.execute(query, parameters))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return Page(
        rows, next_cursor=_encode_cursor(rows[-1]) if more else None, first=position is None
    )


@functools.cache
def _page_query(*, received: bool, after: bool):
    """The statement of a page of notes received or written, built once per process (each
    list a signed-in person opens runs it): the pair, the person and the cursor are bound."""
    mine, other = (
        (Note.recipient_id, Note.sender_id) if received else (Note.sender_id, Note.recipient_id)
    )
    query = _listing(other).where(
        Note.pair_id == bindparam("pair_id"), mine == bindparam("user_id")
    )
    if after:
        cursor = tuple_(
            bindparam("before_at", type_=Note.created_at.type),
            bindparam("before_id", type_=Note.id.type),
        )
        query = query.where(tuple_(Note.created_at, Note.id) < cursor)
    return query.limit(PAGE_SIZE + 1)


def _encode_cursor(row: Row) -> str:
    raw = f"{int(row.created_at.timestamp())}.{row.id}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    """Return (created_at, id) from a cursor, or None for a missing or malformed one."""
    if not cursor or len(cursor) > _CURSOR_MAX:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (ValueError, binascii.Error):
        return None
    match = _CURSOR.fullmatch(raw)
    if match is None:
        return None
    seconds = int(match.group(1))
    if seconds > _CURSOR_LATEST:
        return None
    return datetime.fromtimestamp(seconds, UTC), match.group(2)


def _find(user: User, note_id: str, *, current: bool) -> Note:
    if not isinstance(note_id, str) or not _NOTE_ID.fullmatch(note_id):
        raise NoteNotFound()
    note = db.session.get(Note, note_id)
    if note is None or user.id not in (note.sender_id, note.recipient_id):
        raise NoteNotFound()
    if current:
        if user.pair_id is None or note.pair_id != user.pair_id:
            raise NoteNotFound()
    elif db.session.get(Pair, note.pair_id).ended_at is None:
        raise NoteNotFound()
    return note


def _open(note: Note, ring: keyring.Keyring, *, now: datetime, strict: bool = True) -> Opened:
    viewer = ring.user
    sender = db.session.get(User, note.sender_id)
    recipient = db.session.get(User, note.recipient_id)
    title = text = answer = None
    if not (note.sealed and note.sender_id == viewer.id):
        plain = _open_envelope(
            note.envelope,
            ring,
            note=note,
            kind="note",
            writer=sender,
            reader=recipient,
            at=note.created_at,
            sealed=note.sealed,
            now=now,
            strict=strict,
        )
        title, text = _decode_body(plain)
    if note.answer_envelope is not None:
        plain = _open_envelope(
            note.answer_envelope,
            ring,
            note=note,
            kind="answer",
            writer=recipient,
            reader=sender,
            at=note.answered_at,
            sealed=False,
            now=now,
            strict=strict,
        )
        answer = plain.decode("ascii", "replace")
        if answer not in ANSWERS:
            raise DecryptionFailed()
    reply = None
    if note.reply_envelope is not None:
        plain = _open_envelope(
            note.reply_envelope,
            ring,
            note=note,
            kind="reply",
            writer=recipient,
            reader=sender,
            at=note.answered_at,
            sealed=False,
            now=now,
            strict=strict,
        )
        try:
            reply = plain.decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptionFailed() from None
    return Opened(
        note=note,
        sender=sender,
        recipient=recipient,
        viewer_is_writer=note.sender_id == viewer.id,
        title=title,
        text=text,
        answer=answer,
        reply=reply,
    )


def _open_envelope(
    envelope: bytes,
    ring: keyring.Keyring,
    *,
    note: Note,
    kind: str,
    writer: User,
    reader: User,
    at: datetime | None,
    sealed: bool,
    now: datetime,
    strict: bool,
) -> bytes:
    """Open one envelope of a note row; the row's columns are what the header must say."""
    return envelopes.unseal(
        envelope,
        ring=ring,
        item_id=note.id,
        pair_id=note.pair_id,
        kind=kind,
        writer=writer,
        reader=reader,
        at=at,
        now=now,
        sealed=sealed,
        strict=strict,
    )


def _decode_body(plain: bytes) -> tuple[str | None, str]:
    try:
        data = crypto.json_value(plain.decode("utf-8"))
        title, text = data["t"], data["b"]
    except (ValueError, TypeError, KeyError):
        raise DecryptionFailed() from None
    if not isinstance(text, str) or not (title is None or isinstance(title, str)):
        raise DecryptionFailed()
    return title, text
