"""Database tables. Behaviour lives in the service modules, not here."""

from __future__ import annotations

from datetime import UTC, datetime

from flask_login import UserMixin
from sqlalchemy import (
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    TypeDecorator,
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


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # normalised, lower-case
    display_name: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Bumped to end every login session (password change, recovery); part of get_id().
    session_version: Mapped[int] = mapped_column(Integer, default=1)

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
    # The partner's pinned public keys, encrypted under UK (set at pairing).
    keyring: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    recovery_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    pair_id: Mapped[int | None] = mapped_column(
        ForeignKey("pairs.id", ondelete="SET NULL"), nullable=True, index=True
    )
    pair: Mapped[Pair | None] = relationship(foreign_keys=[pair_id])

    def get_id(self) -> str:
        # The version makes old session and remember-me cookies stop working after a reset.
        return f"{self.id}:{self.session_version}"

    def __repr__(self) -> str:
        return f"<User {self.id}>"


class Pair(db.Model):
    """Two partners. A user belongs to at most one live pair (users.pair_id)."""

    __tablename__ = "pairs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Plain ids, no foreign key: users point at pairs, and this history must outlive a deletion.
    first_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    second_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

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

    inviter: Mapped[User] = relationship(foreign_keys=[inviter_id])


class KeySession(db.Model):
    """UK wrapped under a session key that only the browser's cookie holds (DESIGN §4)."""

    __tablename__ = "key_sessions"

    # SHA-256 of the random session id: the row alone does not even name the cookie.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    wrapped_user_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
