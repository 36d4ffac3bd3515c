"""Database tables. Behaviour lives in the service modules, not here."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    false,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from wishnotes.extensions import db


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Store naive UTC, hand out aware UTC: SQLite keeps no time zone, PostgreSQL would shift it."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=UTC)


class User(db.Model):
    __tablename__ = "users"
    # Ids are never reused on SQLite either: a pinned key or an ended pair must not point elsewhere.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # normalised, lower-case
    display_name: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # One Argon2id run per login (DESIGN §4): parameters are stored per user and upgraded.
    kdf_salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    kdf_memory_kib: Mapped[int] = mapped_column(Integer)
    kdf_iterations: Mapped[int] = mapped_column(Integer)
    kdf_lanes: Mapped[int] = mapped_column(Integer)
    auth_digest: Mapped[bytes] = mapped_column(LargeBinary(32))

    # The random user key UK, wrapped twice; the private keys wrapped under UK.
    uk_by_password: Mapped[bytes] = mapped_column(LargeBinary)
    uk_by_recovery: Mapped[bytes] = mapped_column(LargeBinary)
    private_keys: Mapped[bytes] = mapped_column(LargeBinary)
    hpke_public: Mapped[bytes] = mapped_column(LargeBinary)
    sign_public: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(32))
    # Pins and the live invite's key, encrypted under UK (wishnotes.keyring_store); written at
    # registration. NULL only in rows from before that, and then it trusts nobody.
    keyring: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    recovery_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The registration form's one-time key (wishnotes.submissions): that form posted again, with
    # the same address and password, signs in to this account instead of failing on the
    # address. The unique address is what keeps it to one account.
    submission_key: Mapped[str | None] = mapped_column(String(64), nullable=True)

    # Appearance (wishnotes.appearance): server defaults so existing rows get the discreet choices.
    blur_notes: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    app_look: Mapped[str] = mapped_column(String(16), default="discreet", server_default="discreet")

    # Email settings (wishnotes.preferences): the scheduler filters on these, see the indexes
    # under "week and email". Hours are local to `timezone`; weekdays count Monday=0..Sunday=6.
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    # The person's language (wishnotes.i18n): their pages and every email to them.
    language: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    weekly_email: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    weekly_weekday: Mapped[int] = mapped_column(Integer, default=6, server_default="6")
    weekly_hour: Mapped[int] = mapped_column(Integer, default=18, server_default="18")
    daily_email: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    daily_hour: Mapped[int] = mapped_column(Integer, default=18, server_default="18")
    note_notice: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    discreet_subjects: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    last_notice_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    pair_id: Mapped[int | None] = mapped_column(
        ForeignKey("pairs.id", ondelete="SET NULL"), nullable=True, index=True
    )
    pair: Mapped[Pair | None] = relationship(foreign_keys=[pair_id])

    # flask-login's user interface. The id it keeps in the session is the token of the login
    # (wishnotes.logins) this request runs under, so ending that login row ends the cookie.
    login_token = None  # set per request by wishnotes.web.logins; never stored
    is_active = True
    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str | None:
        return self.login_token

    def __repr__(self) -> str:
        return f"<User {self.id}>"


class Pair(db.Model):
    """Two partners. A user belongs to at most one live pair (users.pair_id)."""

    __tablename__ = "pairs"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Plain ids, no foreign key: users point at pairs, and this history must outlive a deletion.
    first_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    second_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The invite that made the pair (a plain id: invites are cleaned up) and the joiner's MAC of
    # their public keys and this pair's id under the invite's secret, which the inviter checks.
    invite_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    joiner_mac: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)

    def __repr__(self) -> str:
        return f"<Pair {self.id}>"


class Invite(db.Model):
    """A single-use pairing link; only the SHA-256 of its token is stored."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inviter_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The inviter's MAC of their public keys under the link's secret; the joiner checks it.
    inviter_mac: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)

    inviter: Mapped[User] = relationship(foreign_keys=[inviter_id])


class Login(db.Model):
    """One signed-in browser (wishnotes.logins); deleting the row signs that browser out.

    The cookies hold random tokens; the row keeps only their SHA-256. No address is kept: the
    device label is the browser and system read from the User-Agent, nothing finer.
    """

    __tablename__ = "logins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    # The remember-me cookie's rotating secret; the previous one is accepted for a moment after
    # a rotation, so tabs restored together after a restart do not sign each other out.
    remember_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    previous_remember_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    remember: Mapped[bool] = mapped_column(Boolean, default=False)
    device: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_on: Mapped[date] = mapped_column(Date)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    def __repr__(self) -> str:
        return f"<Login {self.id}>"


class KeySession(db.Model):
    """UK wrapped under a session key that only the browser's cookie holds (DESIGN §4)."""

    __tablename__ = "key_sessions"

    # SHA-256 of the random session id: the row alone does not even name the cookie.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The login that unlocked these keys: ending the login ends its keys too.
    login_id: Mapped[int] = mapped_column(ForeignKey("logins.id", ondelete="CASCADE"), index=True)
    wrapped_user_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What the recovery-kit check needs (which group, and that group), wrapped under the session
    # key: it stays on the server side of this browser's session, never in a form.
    kit_check: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class PasswordReset(db.Model):
    """An emailed single-use link that proves the mailbox; only the token's SHA-256 is stored.

    The token is minted when the email is handed to the relay (`token_hash` is NULL until then),
    so the link never rests in the outbox.
    """

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RetiredKeys(db.Model):
    """A user's earlier keys, kept after a reset without the recovery key (nothing destroyed).

    They stay locked under the old password and the old recovery key. If either turns up, the old
    user key is wrapped under the current one (`uk_by_current`) and the earlier notes open again.
    """

    __tablename__ = "retired_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    retired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kdf_salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    kdf_memory_kib: Mapped[int] = mapped_column(Integer)
    kdf_iterations: Mapped[int] = mapped_column(Integer)
    kdf_lanes: Mapped[int] = mapped_column(Integer)
    auth_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    uk_by_password: Mapped[bytes] = mapped_column(LargeBinary)
    uk_by_recovery: Mapped[bytes] = mapped_column(LargeBinary)
    private_keys: Mapped[bytes] = mapped_column(LargeBinary)
    hpke_public: Mapped[bytes] = mapped_column(LargeBinary)
    sign_public: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(32), index=True)
    uk_by_current: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    restored_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# --- notes --------------------------------------------------------------------------------


class Note(db.Model):
    """One note between the two members of a pair; its words exist only inside `envelope`.

    The id is random (not a counter) and chosen before sealing, because the signed header binds it.
    Everything in clear here is metadata the pages need without keys: who, when, read or not.
    """

    __tablename__ = "notes"
    __table_args__ = (
        # The inbox and the sent list read one side of one pair, newest first, a page at a time
        # from a cursor (notes.inbox): each page costs the same however long the history is.
        # Both lead with pair_id, so they also serve what an index on pair_id alone would.
        Index("ix_notes_inbox", "pair_id", "recipient_id", "created_at", "id"),
        Index("ix_notes_sent", "pair_id", "sender_id", "created_at", "id"),
        # Only unread notes: the unread count and the notice's check grow with what is unread.
        Index(
            "ix_notes_unread",
            "recipient_id",
            "pair_id",
            sqlite_where=text("read_at IS NULL"),
            postgresql_where=text("read_at IS NULL"),
        ),
        # A resent compose form finds its note (wishnotes.submissions).
        Index("uq_notes_submission", "sender_id", "submission_key", unique=True),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Ended pairs keep their rows (history), so a note outlives its pair unless someone deletes it.
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id", ondelete="CASCADE"))
    sender_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    recipient_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sealed: Mapped[bool] = mapped_column(Boolean, default=False)
    # The signed envelope: header, a data-key stanza per reader, ciphertext (crypto.seal_envelope).
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Which week prompt the note answered, if any (a key from the prompt library, not user text).
    prompt_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The reader's gentle answer, itself a signed envelope (kind "answer") sealed to both.
    answer_envelope: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The compose form's one-time key (wishnotes.submissions): a resent form finds this note.
    submission_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # With "let's talk about it", a short written reply: its own envelope (kind "reply").
    reply_envelope: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # When the writer last looked at the answer, so Home can say gently that one is new.
    answer_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    def __repr__(self) -> str:
        return f"<Note {self.id}>"


# --- week and email -----------------------------------------------------------------------

# The scheduler asks "who in this time zone wants an email at this local weekday and hour".
# The scheduler reads each slot in id order, a batch at a time (keyset): with `id` last, every
# batch starts where the previous one ended instead of sorting the whole slot again.
Index("ix_users_weekly_slot", User.timezone, User.weekly_weekday, User.weekly_hour, User.id)
Index("ix_users_daily_slot", User.timezone, User.daily_hour, User.id)


class ProgramWeek(db.Model):
    """A pair's themed week of seven daily prompts (DESIGN §5); see wishnotes.program."""

    __tablename__ = "program_weeks"
    __table_args__ = (
        # At most one unfinished week per pair, even when both partners press "start" at once.
        Index(
            "uq_program_weeks_current",
            "pair_id",
            unique=True,
            sqlite_where=text("finished_at IS NULL"),
            postgresql_where=text("finished_at IS NULL"),
        ),
        Index("uq_program_weeks_submission", "started_by_id", "submission_key", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id", ondelete="CASCADE"), index=True)
    theme_key: Mapped[str] = mapped_column(String(64))  # a week key of the prompt library
    start_date: Mapped[date] = mapped_column(Date)  # day 1, in `timezone`
    timezone: Mapped[str] = mapped_column(String(64))
    started_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    # A week is proposed by one partner and runs once the other accepts it.
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    paused_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The start form's one-time key (wishnotes.submissions): a resent form finds this week.
    submission_key: Mapped[str | None] = mapped_column(String(64), nullable=True)

    def __repr__(self) -> str:
        return f"<ProgramWeek {self.id}>"


class OutboxVariant(db.Model):
    """The body of a bulk email as many recipients get it, with slots for name and link."""

    __tablename__ = "outbox_variants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboxEmail(db.Model):
    """One email, written in the same transaction as its cause and delivered by a job.

    `idempotency_key` ("kind:user:period") is unique, so a cause replayed or a schedule run twice
    queues one row. Status: pending -> sending (claimed until `next_attempt_at`, the lease) ->
    sent | pending again (retry) | failed (given up, `last_error` says why) | skipped.
    """

    __tablename__ = "outbox_emails"
    __table_args__ = (Index("ix_outbox_emails_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    period: Mapped[str] = mapped_column(String(40))
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    to_address: Mapped[str] = mapped_column(String(254))
    message_id: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(200))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    unsubscribe_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # Bulk emails (weekly, daily) share one body: empty bodies here, the recipient's name and
    # unsubscribe link filled into the variant at delivery.
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_variants.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # tries that reached this message
    # Permanent refusals of this message (5xx to RCPT TO or DATA): EMAIL_MAX_ATTEMPTS gives up.
    refusals: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When temporary failures of this message began (cleared when sent): EMAIL_GIVE_UP_AFTER.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    def __repr__(self) -> str:
        return f"<OutboxEmail {self.id} {self.kind} {self.status}>"


class ScheduleMark(db.Model):
    """How far the email scheduler has looked, so each pass covers only newly passed hours."""

    __tablename__ = "schedule_marks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    scanned_until: Mapped[datetime] = mapped_column(UTCDateTime)


class MailRelay(db.Model):
    """The SMTP relay's refusals of whole sessions, so every worker backs off together.

    One row per relay name; `failures` counts refused sessions in a row and is reset by the
    first session that takes a message.
    """

    __tablename__ = "mail_relays"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)


class PepperCheck(db.Model):
    """A check value derived from the pepper (never the pepper), to notice a changed one."""

    __tablename__ = "pepper_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    check_value: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- mutual wishes --------------------------------------------------------------------------


class WishKey(db.Model):
    """The pair's matching secret, sealed to both partners and signed by whoever made it.

    The server keeps only this envelope (kind "wishkey"); without a partner's keys the secret,
    and so every tag in `wish_decks`, stays unreadable.
    """

    __tablename__ = "wish_keys"

    pair_id: Mapped[int] = mapped_column(
        ForeignKey("pairs.id", ondelete="CASCADE"), primary_key=True
    )
    envelope_id: Mapped[str] = mapped_column(String(32), unique=True)
    sender_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    recipient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    envelope: Mapped[bytes] = mapped_column(LargeBinary)


class WishDeck(db.Model):
    """One partner's answers to the wish cards, in a form the server cannot read.

    `state` (the answers, what was revealed, when answers changed) is wrapped under the user
    key. `tags` holds two keyed tags per card for every card, sorted: a "yes" or "maybe" gives
    tags the partner's matching answer reproduces, anything else gives random bytes, so the
    rows do not tell a "yes" from a "not for me". `next_tags` is the set that takes effect at
    `next_from`: changed answers count for matching only after a delay.
    """

    __tablename__ = "wish_decks"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id", ondelete="CASCADE"), index=True)
    state: Mapped[bytes] = mapped_column(LargeBinary)
    tags: Mapped[bytes] = mapped_column(LargeBinary)
    next_tags: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    next_from: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The person's own choice for the intimate theme; its cards show only when both chose it.
    intimate: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


# --- practices around the notes -----------------------------------------------------------
# What partners write here lives only in envelopes (wishnotes.envelopes), one kind per text.
# Days and times are in clear: the pages sort and show them without keys.


class RitualItem(db.Model):
    """One "I miss…" line of a pair's Table of Trust; see wishnotes.rituals."""

    __tablename__ = "ritual_items"
    __table_args__ = (
        Index("ix_ritual_items_pair_activity", "pair_id", "activity_at"),
        # A resent "add" form finds its item (wishnotes.submissions).
        Index("uq_ritual_items_submission", "author_id", "submission_key", unique=True),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Kind "ritual": the author's words, sealed to the partner and the author.
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    # The other partner's "Let's bring it back" (there is no "no": an item can simply wait).
    welcomed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    planned_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Newest activity first on the table, and "something new" on the home page.
    activity_at: Mapped[datetime] = mapped_column(UTCDateTime)
    activity_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    # The add form's one-time key (wishnotes.submissions): a resent form finds this item.
    submission_key: Mapped[str | None] = mapped_column(String(64), nullable=True)


class RitualDone(db.Model):
    """A day a ritual happened again; the item keeps these as a small history."""

    __tablename__ = "ritual_done"

    item_id: Mapped[str] = mapped_column(
        ForeignKey("ritual_items.id", ondelete="CASCADE"), primary_key=True
    )
    done_on: Mapped[date] = mapped_column(Date, primary_key=True)


class Place(db.Model):
    """An imagined place a pair describes in turns; see wishnotes.places."""

    __tablename__ = "places"
    __table_args__ = (
        # One open place per pair, even when both partners start one at the same moment.
        Index(
            "uq_places_open",
            "pair_id",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
        # A resent start form finds its place (wishnotes.submissions).
        Index("uq_places_submission", "started_by_id", "submission_key", unique=True),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id", ondelete="CASCADE"), index=True)
    started_by_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Kind "place": the optional name, sealed by the one who started it.
    name_envelope: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The start form's one-time key (wishnotes.submissions): a resent form finds this place.
    submission_key: Mapped[str | None] = mapped_column(String(64), nullable=True)


class PlaceTurn(db.Model):
    """The lines one partner added to a place; `seq` orders the turns and is sealed in."""

    __tablename__ = "place_turns"
    __table_args__ = (
        Index("uq_place_turns_seq", "place_id", "seq", unique=True),
        # A resent turn form finds its turn (wishnotes.submissions).
        Index("uq_place_turns_submission", "writer_id", "submission_key", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    place_id: Mapped[str] = mapped_column(ForeignKey("places.id", ondelete="CASCADE"))
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id", ondelete="CASCADE"), index=True)
    writer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Kind "place-turn", item id "<place id>/<seq>": a turn cannot move to another place or slot.
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    # The turn form's one-time key (wishnotes.submissions): a resent form finds this turn.
    submission_key: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Agreement(db.Model):
    """An agreement for a set time, proposed by one partner; see wishnotes.agreements.

    Who ended it is not stored at all: the other partner sees "ended", never who.
    """

    __tablename__ = "agreements"
    __table_args__ = (
        Index("ix_agreements_pair_created", "pair_id", "created_at"),
        # A resent proposal form finds its agreement (wishnotes.submissions).
        Index("uq_agreements_submission", "proposer_id", "submission_key", unique=True),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id", ondelete="CASCADE"))
    proposer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Kind "agreement": the words (a shipped text or the proposer's own), sealed to both.
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The proposal form's one-time key (wishnotes.submissions): a resent form finds this one.
    submission_key: Mapped[str | None] = mapped_column(String(64), nullable=True)


class PracticeSeen(db.Model):
    """When a user last looked at one practice, so home can say gently what is new."""

    __tablename__ = "practice_seen"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    practice: Mapped[str] = mapped_column(String(16), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
