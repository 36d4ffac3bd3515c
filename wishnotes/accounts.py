"""Accounts: register, authenticate, and the rules for emails, names and passwords."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from wishnotes import (
    crypto,
    i18n,
    keyring_store,
    keysessions,
    locks,
    logins,
    lookalikes,
    preferences,
    submissions,
    timezones,
)
from wishnotes.errors import (
    EmailTaken,
    InvalidCredentials,
    InvalidInput,
    StoredKdfRefused,
)
from wishnotes.extensions import db
from wishnotes.i18n import _l
from wishnotes.kdf import KdfRunner
from wishnotes.models import Pair, User, WishDeck, WishKey

PASSWORD_MIN = 10
# Long enough for any passphrase, short enough that nobody makes the KDF hash megabytes.
PASSWORD_MAX = 256
NAME_MAX = 60
EMAIL_MAX = 254

PURPOSE_UK_PASSWORD = "user-key/password"  # noqa: S105 - a label, not a secret
PURPOSE_UK_RECOVERY = "user-key/recovery"
PURPOSE_PRIVATE_KEYS = "private-keys"

_log = logging.getLogger(__name__)


@dataclass(frozen=True, repr=False)
class Unlocked:
    """A user together with their user key, for the length of one request."""

    user: User
    user_key: bytes


@dataclass(frozen=True, repr=False)
class Registration(Unlocked):
    # None when the same registration form was posted again: the key went to the first post.
    recovery_key: bytes | None


@functools.cache
def _common_passwords() -> frozenset[str]:
    text = resources.files("wishnotes").joinpath("passwords/common.txt").read_text("utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def normalize_email(raw: str) -> str:
    """Return the canonical lower-case form of an email address, or raise InvalidInput.

    NFKC first, so full-width and other compatibility forms of an address name the same
    account as the plain address. Lower case, not case folding: "ß" and "ss" may be different
    mailboxes, and the address is also where emails go.
    """
    raw = unicodedata.normalize("NFKC", raw or "").strip()
    if not raw:
        raise InvalidInput(_l("Please enter your email address."), field="email")
    if len(raw) > EMAIL_MAX:
        raise InvalidInput(_l("That email address is too long."), field="email")
    try:
        result = validate_email(raw, check_deliverability=False)
    except EmailNotValidError:
        raise InvalidInput(_l("That does not look like an email address."), field="email") from None
    return result.normalized.lower()


def _check_look_alike(email: str) -> None:
    """Refuse an address that could pass for another one (see wishnotes.lookalikes)."""
    if lookalikes.mixes_alphabets(email):
        raise InvalidInput(
            _l(
                "This address mixes letters from different alphabets that look alike. "
                "Please type it in one alphabet."
            ),
            field="email",
        )
    twin = lookalikes.latin_twin(email)
    if twin and db.session.scalar(select(User.id).where(User.email == twin)) is not None:
        raise InvalidInput(
            _l("This address looks the same as one already in use. Please check it."),
            field="email",
        )


def account_key(raw: str | None) -> str:
    """Return a digest naming the account an email address reaches, for per-account limits.

    Every spelling that signs in to one account (case, spaces, full-width letters) gives one
    key; the digest keeps the address itself out of rate-limit storage and logs.
    """
    try:
        email = normalize_email(raw or "")
    except InvalidInput:
        email = (raw or "").strip()[:EMAIL_MAX]
    folded = unicodedata.normalize("NFKC", email).casefold()
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()[:32]


def check_display_name(raw: str) -> str:
    """Return a cleaned display name, or raise InvalidInput."""
    name = " ".join((raw or "").split())
    if not name:
        raise InvalidInput(_l("Please enter a name your partner will know."), field="display_name")
    if len(name) > NAME_MAX:
        raise InvalidInput(
            _l("Please keep the name under %(num)d characters.", num=NAME_MAX),
            field="display_name",
        )
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co"} for ch in name):
        raise InvalidInput(
            _l("The name contains characters that cannot be shown."), field="display_name"
        )
    return name


def check_password(password: str, *, email: str | None = None, field: str = "password") -> None:
    """Raise InvalidInput unless the password is long enough, not too long and not common."""
    password = password or ""
    if len(password) < PASSWORD_MIN:
        raise InvalidInput(
            _l("Please use at least %(num)d characters.", num=PASSWORD_MIN), field=field
        )
    if len(password) > PASSWORD_MAX:
        raise InvalidInput(
            _l("Please use at most %(num)d characters.", num=PASSWORD_MAX), field=field
        )
    folded = unicodedata.normalize("NFKC", password).lower()
    if folded in _common_passwords() or (email and folded == email.lower()):
        raise InvalidInput(
            _l("That password is too easy to guess. A few unrelated words work well."),
            field=field,
        )


def register(
    *,
    email: str,
    display_name: str,
    password: str,
    kdf: KdfRunner,
    now: datetime,
    timezone: str | None = None,
    language: str | None = None,
    submission_key: str | None = None,
) -> Registration:
    """Create an account with fresh keys; return it with its user key and recovery key.

    `timezone` is the person's IANA zone as their browser reported it; a missing or unknown
    one leaves UTC (the email settings page changes it), it never stops a registration.
    `language` is the one the registration page was shown in (English when unknown).

    A `submission_key` (see wishnotes.submissions) that already made an account, posted again
    with the same address and password (a double click, or a form resent when its answer
    never arrived), returns that account unlocked, with `recovery_key` None: the key went to
    the first post only and is never stored. Any other form with a taken address: EmailTaken.
    """
    email = normalize_email(email)
    display_name = check_display_name(display_name)
    check_password(password, email=email)
    submission_key = submissions.checked(submission_key)
    if db.session.scalar(select(User.id).where(User.email == email)) is not None:
        return _registered_before(email, password=password, key=submission_key, kdf=kdf)
    _check_look_alike(email)

    user_key = crypto.new_key()
    keys = crypto.generate_user_keys()
    public = keys.public()
    salt = crypto.new_salt()
    user = User(
        email=email,
        display_name=display_name,
        created_at=now,
        kdf_salt=salt,
        kdf_memory_kib=kdf.params.memory_kib,
        kdf_iterations=kdf.params.iterations,
        kdf_lanes=kdf.params.lanes,
        auth_digest=b"",
        uk_by_password=b"",
        uk_by_recovery=b"",
        private_keys=b"",
        hpke_public=public.hpke_public,
        sign_public=public.sign_public,
        key_id=public.key_id,
        timezone=_zone_or_default(timezone),
        language=i18n.normalize(language) or i18n.DEFAULT,
        submission_key=submission_key,
    )
    db.session.add(user)
    try:
        db.session.flush()  # the id is bound into every wrapped key
    except IntegrityError:  # the address was taken meanwhile, perhaps by this same form
        db.session.rollback()
        return _registered_before(email, password=password, key=submission_key, kdf=kdf)
    user.weekly_weekday, user.weekly_hour = preferences.default_slot(user.id)
    user.daily_hour = user.weekly_hour

    auth_value, kek = kdf.derive(password, salt=salt, params=kdf.params)
    user.auth_digest = crypto.auth_digest(auth_value)
    user.uk_by_password = crypto.wrap(kek, user_key, purpose=PURPOSE_UK_PASSWORD, user_id=user.id)
    user.private_keys = crypto.wrap(
        user_key, crypto.serialize_private(keys), purpose=PURPOSE_PRIVATE_KEYS, user_id=user.id
    )
    # A keyring from the first moment: a missing one later can only mean tampering.
    user.keyring = keyring_store.empty(user_key=user_key, user_id=user.id, now=now)
    recovery_key = set_recovery_key(user=user, user_key=user_key, pepper=kdf.pepper)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return _registered_before(email, password=password, key=submission_key, kdf=kdf)
    return Registration(user=user, user_key=user_key, recovery_key=recovery_key)


def _registered_before(
    email: str, *, password: str, key: str | None, kdf: KdfRunner
) -> Registration:
    """Return the account this same form made, unlocked by its password; else EmailTaken.

    The key alone never signs anyone in: the post must also carry that account's password,
    so it opens nothing a login with the same address and password would not.
    """
    user = db.session.scalar(select(User).where(User.email == email)) if key else None
    if user is None or user.submission_key is None:
        raise EmailTaken()
    if not hmac.compare_digest(user.submission_key.encode(), key.encode()):
        raise EmailTaken()
    try:
        unlocked = authenticate(email=email, password=password, kdf=kdf)
    except InvalidCredentials:
        raise EmailTaken() from None
    return Registration(user=unlocked.user, user_key=unlocked.user_key, recovery_key=None)


def _zone_or_default(name: str | None) -> str:
    try:
        return timezones.check(name)
    except InvalidInput:
        return timezones.DEFAULT


def authenticate(*, email: str, password: str, kdf: KdfRunner) -> Unlocked:
    """Check a password with one KDF run and return the user with their unwrapped user key."""
    try:
        normalized = normalize_email(email)
    except InvalidInput:
        normalized = None
    user = None
    if normalized and password and len(password) <= PASSWORD_MAX:
        user = db.session.scalar(select(User).where(User.email == normalized))
    if user is None:
        kdf.burn(password[:PASSWORD_MAX] if password else "")
        raise InvalidCredentials()

    auth_value, kek = kdf.derive(password, salt=user.kdf_salt, params=kdf_params_of(user))
    if not crypto.auth_matches(auth_value, user.auth_digest):
        raise InvalidCredentials()
    user_key = crypto.unwrap(kek, user.uk_by_password, purpose=PURPOSE_UK_PASSWORD, user_id=user.id)
    if kdf_params_of(user) != kdf.params:
        # Upgrade to the current cost while the password is at hand; costs one more run, once.
        set_password(user=user, user_key=user_key, password=password, kdf=kdf)
        db.session.commit()
    return Unlocked(user=user, user_key=user_key)


def kdf_params_of(user: User) -> crypto.KdfParams:
    """Return the KDF parameters a user's password was last wrapped with (StoredKdfRefused)."""
    return stored_kdf_params(
        memory_kib=user.kdf_memory_kib, iterations=user.kdf_iterations, lanes=user.kdf_lanes
    )


def stored_kdf_params(*, memory_kib: object, iterations: object, lanes: object) -> crypto.KdfParams:
    """Return KDF parameters read from a row, or raise StoredKdfRefused outside floor and ceiling.

    Checked before any Argon2id run: a row edited to ask for 64 GiB must cost nothing.
    """
    params = crypto.KdfParams(memory_kib=memory_kib, iterations=iterations, lanes=lanes)
    if not (crypto.kdf_params_bounded(params) and crypto.kdf_params_ok(params)):
        _log.warning("Refused stored KDF parameters outside the floor and ceiling")
        raise StoredKdfRefused()
    return params


def set_password(*, user: User, user_key: bytes, password: str, kdf: KdfRunner) -> None:
    """Wrap the user key under a new password with a fresh salt at the current KDF cost."""
    salt = crypto.new_salt()
    auth_value, kek = kdf.derive(password, salt=salt, params=kdf.params)
    user.kdf_salt = salt
    user.kdf_memory_kib = kdf.params.memory_kib
    user.kdf_iterations = kdf.params.iterations
    user.kdf_lanes = kdf.params.lanes
    user.auth_digest = crypto.auth_digest(auth_value)
    user.uk_by_password = crypto.wrap(kek, user_key, purpose=PURPOSE_UK_PASSWORD, user_id=user.id)


def set_recovery_key(*, user: User, user_key: bytes, pepper: bytes) -> bytes:
    """Wrap the user key under a new random recovery key and return that key (shown once)."""
    recovery_key = crypto.new_recovery_key()
    kek = crypto.recovery_kek(recovery_key, user_id=user.id, pepper=pepper)
    user.uk_by_recovery = crypto.wrap(kek, user_key, purpose=PURPOSE_UK_RECOVERY, user_id=user.id)
    user.recovery_confirmed_at = None
    return recovery_key


@dataclass(frozen=True, repr=False)
class KitCheck:
    """What confirming a recovery kit needs, and no more: never the whole key.

    `index` names the group to type back and `group` is that group as printed; `kit` is the
    SHA-256 of the wrapped user key this kit opens, so only the newest kit can be confirmed.
    """

    index: int
    group: str
    kit: bytes

    def to_bytes(self) -> bytes:
        """Return the check as bytes, to be kept sealed in the key session."""
        data = {"i": self.index, "g": self.group, "k": self.kit.hex()}
        return json.dumps(data, separators=(",", ":")).encode("ascii")

    @classmethod
    def from_bytes(cls, data: bytes) -> KitCheck | None:
        """Rebuild a check from to_bytes(); None if it does not parse."""
        try:
            parsed = json.loads(data.decode("ascii"))
            check = cls(index=parsed["i"], group=parsed["g"], kit=bytes.fromhex(parsed["k"]))
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        if not isinstance(check.index, int) or not isinstance(check.group, str):
            return None
        return check


def kit_check(*, user: User, recovery_key: bytes) -> KitCheck:
    """Pick which group of a new recovery kit the user types back, and what it must be."""
    groups = crypto.recovery_key_groups(recovery_key)
    index = secrets.randbelow(len(groups))
    return KitCheck(index=index, group=groups[index], kit=_kit_id(user))


def _kit_id(user: User) -> bytes:
    return hashlib.sha256(bytes(user.uk_by_recovery)).digest()


def confirm_recovery_kit(*, user: User, check: KitCheck, typed: str, now: datetime) -> None:
    """Mark the recovery kit as saved once the user typed its asked-for group back correctly."""
    if not hmac.compare_digest(check.kit, _kit_id(user)):
        # A kit made before the newest one (in another tab or browser): only the newest counts.
        raise InvalidInput(_l("This recovery kit is no longer valid. Please make a new one."))
    # The same tolerance as a whole key typed in: case, spaces, 0/O, 1/I and 8/B.
    if not crypto.recovery_group_matches(typed or "", check.group):
        raise InvalidInput(
            _l(
                "Not quite: that is not the group with this number. Have another look and try "
                "again; nothing is lost."
            ),
            field="typed",
        )
    user.recovery_confirmed_at = now
    db.session.commit()


def new_recovery_key(*, user: User, user_key: bytes, pepper: bytes) -> bytes:
    """Replace the user's recovery key (the old one stops working) and return the new one."""
    recovery_key = set_recovery_key(user=user, user_key=user_key, pepper=pepper)
    db.session.commit()
    return recovery_key


# --- password change and account deletion (settings) --------------------------------------


def change_password(
    *,
    user: User,
    current_password: str,
    new_password: str,
    kdf: KdfRunner,
    keep_login_id: int | None = None,
    keep_key_session: str | None = None,
) -> None:
    """Re-wrap the user key under a new password; end every other login and key session.

    Only the user's row changes: no note is re-encrypted. Every login but `keep_login_id` ends
    in the same transaction, so no copied cookie outlives the old password.
    """
    check_password(new_password, email=user.email, field="new_password")
    try:
        unlocked = authenticate(email=user.email, password=current_password, kdf=kdf)
    except InvalidCredentials:
        raise InvalidInput(_l("That password does not match."), field="current_password") from None
    set_password(user=user, user_key=unlocked.user_key, password=new_password, kdf=kdf)
    logins.end_all(user_id=user.id, keep_login_id=keep_login_id)
    db.session.commit()
    keysessions.close_all(user_id=user.id, keep_cookie=keep_key_session)


def delete_account(*, user: User, password: str, kdf: KdfRunner, now: datetime) -> None:
    """Delete the account for good and end its pair, so the partner sees the pair has ended.

    The database cascades take the user's logins, key sessions, invites and every note they
    wrote or received with the row; their keys and wrapped keys are columns of the row itself.
    """
    try:
        authenticate(email=user.email, password=password, kdf=kdf)
    except InvalidCredentials:
        raise InvalidInput(_l("That password does not match."), field="password") from None
    # Lock the user and the partner first, in id order (see locks): a note the partner is
    # sending at this moment either lands before or finds the pair ended, never half of each.
    partner_id = user.pair_id and db.session.scalar(
        select(User.id).where(User.pair_id == user.pair_id, User.id != user.id)
    )
    locks.lock_users([user.id, partner_id])
    if user.pair_id is not None:
        pair_id = user.pair_id
        db.session.execute(update(Pair).where(Pair.id == pair_id).values(ended_at=now))
        # As pairing.forget_wishes (which this module cannot import: keyring needs accounts).
        db.session.execute(delete(WishDeck).where(WishDeck.pair_id == pair_id))
        db.session.execute(delete(WishKey).where(WishKey.pair_id == pair_id))
        db.session.execute(
            update(User)
            .where(User.pair_id == pair_id)
            .values(pair_id=None)
            .execution_options(synchronize_session=False)
        )
    db.session.delete(user)
    db.session.commit()
