"""A user's unlocked key material for one request, and the partner keys they pinned.

`unlock(user=..., user_key=...)` is the one place private keys are unwrapped. The returned Keyring
also holds the user's pins: the public keys of partners they trust, kept in `users.keyring` as
JSON wrapped under their user key (purpose "keyring"), so someone who can only read or write the
database can neither read the pins nor change them unnoticed.

When a pin is taken (trust on first use, right after pairing):
- The partner who accepts an invite has their keys unlocked at that moment, so
  `pairing.accept_invite(user_key=...)` pins the inviter's keys in the same transaction.
- The inviter is usually not online then. Their keyring pins the joiner's keys the first time
  they use notes with keys unlocked (write, open, answer, safety number) and find no pin.
From then on, partner keys in the users table that differ from the pin raise KeyChanged, and
nothing is opened or sealed, until the user compares safety numbers and chooses to trust the new
keys (`trust_partner`). Earlier pins stay in the keyring, so notes signed before a legitimate key
change still verify.

Limit: a database writer who also puts back an older keyring blob (say, one from before pairing)
reopens the first-use window. Comparing safety numbers is the check that catches it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

from sqlalchemy import select

from wishnotes import crypto, recovery
from wishnotes.accounts import PURPOSE_PRIVATE_KEYS
from wishnotes.errors import DecryptionFailed, EarlierKeysLocked, KeyChanged, NotPaired
from wishnotes.extensions import db
from wishnotes.models import User

PURPOSE_KEYRING = "keyring"
_FORMAT = 1


@dataclass(frozen=True)
class Pin:
    """A partner's public keys as this user trusted them, and since when."""

    keys: crypto.PublicKeys
    pinned_at: datetime


@dataclass(frozen=True)
class Safety:
    """What the safety-number page shows."""

    partner: User
    number: str
    pinned: Pin | None  # the current pin, if any
    matches: bool  # the partner's keys in the database are the pinned ones


def public_keys(user: User) -> crypto.PublicKeys | None:
    """Return a user's public keys as the users table has them, or None if they are malformed."""
    try:
        return crypto.load_public_keys(bytes(user.hpke_public), bytes(user.sign_public))
    except (TypeError, ValueError):
        return None


class Keyring:
    """A user's private keys and pins, unlocked for the length of one request."""

    def __init__(self, user: User, user_key: bytes, keys: crypto.UserKeys, pins: dict) -> None:
        self.user = user
        self.keys = keys
        self.changed = False  # a pin was added: the caller's transaction has a write to commit
        self._user_key = user_key
        self._pins: dict[int, list[Pin]] = pins

    def __repr__(self) -> str:
        return f"<Keyring of user {self.user.id}>"

    @cached_property
    def own_public(self) -> crypto.PublicKeys:
        """Return the user's public keys, derived from the private ones (not from the table)."""
        return self.keys.public()

    def keys_for(self, key_id: str) -> crypto.UserKeys:
        """Return the private keys named `key_id`, current or from before a fresh start.

        Earlier keys open only once restored (recovery.restore_retired); else EarlierKeysLocked.
        """
        if key_id == self.user.key_id:
            return self.keys
        earlier = recovery.retired_private_keys(
            user=self.user, user_key=self._user_key, key_id=key_id
        )
        if earlier is None:
            raise EarlierKeysLocked()
        return earlier

    def current_pin(self, partner_id: int) -> Pin | None:
        """Return the keys most recently trusted for this partner, if any."""
        history = self._pins.get(partner_id)
        return history[-1] if history else None

    def trusted(self, partner: User, *, now: datetime) -> crypto.PublicKeys:
        """Return the partner's keys to seal to: pinned on first use, KeyChanged if they moved."""
        table = public_keys(partner)
        pin = self.current_pin(partner.id)
        if pin is None:
            if table is None:
                raise DecryptionFailed()
            self._add(partner.id, table, now=now)
            return table
        if table != pin.keys:
            raise KeyChanged()
        return pin.keys

    def signer(
        self, sender: User, *, key_id: str, now: datetime, strict: bool = True
    ) -> crypto.PublicKeys:
        """Return the public keys to verify something `sender` signed with key `key_id`.

        Strict (a current partner): KeyChanged while their keys in the table differ from the pin.
        Not strict (an ended pair, where there is nobody to compare numbers with any more): any
        key that was pinned for them verifies, and only an unpinned one is refused.
        """
        if sender.id == self.user.id:
            return self.own_public if key_id == self.user.key_id else self.keys_for(key_id).public()
        if strict or self.current_pin(sender.id) is None:
            self.trusted(sender, now=now)
        for pin in reversed(self._pins[sender.id]):
            if pin.keys.key_id == key_id:
                return pin.keys
        raise DecryptionFailed()

    def trust(self, partner: User, *, now: datetime) -> None:
        """Trust the partner's keys as the users table has them now (after comparing numbers)."""
        table = public_keys(partner)
        if table is None:
            raise DecryptionFailed()
        if self.current_pin(partner.id) is None or self.current_pin(partner.id).keys != table:
            self._add(partner.id, table, now=now)

    def _add(self, partner_id: int, keys: crypto.PublicKeys, *, now: datetime) -> None:
        self._pins.setdefault(partner_id, []).append(Pin(keys=keys, pinned_at=now))
        self.changed = True
        # Written into the session only; the calling service commits its unit of work.
        self.user.keyring = crypto.wrap(
            self._user_key, _encode(self._pins), purpose=PURPOSE_KEYRING, user_id=self.user.id
        )


def unlock(*, user: User, user_key: bytes) -> Keyring:
    """Unwrap a user's private keys and pins; DecryptionFailed if either was tampered with."""
    try:
        keys = crypto.deserialize_private(
            crypto.unwrap(
                user_key, user.private_keys, purpose=PURPOSE_PRIVATE_KEYS, user_id=user.id
            )
        )
    except (TypeError, ValueError):
        raise DecryptionFailed() from None
    pins: dict[int, list[Pin]] = {}
    if user.keyring is not None:
        blob = crypto.unwrap(user_key, user.keyring, purpose=PURPOSE_KEYRING, user_id=user.id)
        pins = _decode(blob)
    return Keyring(user, user_key, keys, pins)


def pin_partner(*, user: User, user_key: bytes, partner: User, now: datetime) -> None:
    """Pin the partner's current keys unless a pin exists; part of the caller's transaction."""
    keyring = unlock(user=user, user_key=user_key)
    if keyring.current_pin(partner.id) is None:
        keyring.trusted(partner, now=now)


def safety(*, user: User, user_key: bytes, now: datetime) -> Safety:
    """Return the pair's safety number and whether the partner's keys match the pin.

    Both partners see the same number when neither key was swapped: it is computed from this
    user's own keys (derived from the private ones) and the partner's keys in the users table.
    A first visit with no pin yet pins the partner's keys (and commits).
    """
    partner = _partner(user)
    keyring = unlock(user=user, user_key=user_key)
    table = public_keys(partner)
    if table is None:
        raise DecryptionFailed()
    if keyring.current_pin(partner.id) is None:
        keyring.trusted(partner, now=now)
        db.session.commit()
    pin = keyring.current_pin(partner.id)
    return Safety(
        partner=partner,
        number=crypto.safety_number(keyring.own_public, table),
        pinned=pin,
        matches=pin.keys == table,
    )


def trust_partner(*, user: User, user_key: bytes, now: datetime) -> None:
    """Trust the partner's current keys after the two compared their safety numbers."""
    partner = _partner(user)
    keyring = unlock(user=user, user_key=user_key)
    keyring.trust(partner, now=now)
    db.session.commit()


def _partner(user: User) -> User:
    # Not pairing.partner_of: pairing imports this module to pin keys when an invite is accepted.
    partner = None
    if user.pair_id is not None:
        partner = db.session.scalar(
            select(User).where(User.pair_id == user.pair_id, User.id != user.id)
        )
    if partner is None:
        raise NotPaired()
    return partner


def _encode(pins: dict[int, list[Pin]]) -> bytes:
    data = {
        "v": _FORMAT,
        "pins": {
            str(partner_id): [
                {
                    "hpke": base64.b64encode(pin.keys.hpke_public).decode("ascii"),
                    "sign": base64.b64encode(pin.keys.sign_public).decode("ascii"),
                    "at": int(pin.pinned_at.timestamp()),
                }
                for pin in history
            ]
            for partner_id, history in pins.items()
        },
    }
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _decode(blob: bytes) -> dict[int, list[Pin]]:
    # The blob was authenticated under UK, so a failure here is a bug, still never a silent one.
    try:
        data = json.loads(blob.decode("utf-8"))
        if data.get("v") != _FORMAT:
            raise ValueError("unknown keyring format")
        return {
            int(partner_id): [
                Pin(
                    keys=crypto.load_public_keys(
                        base64.b64decode(entry["hpke"], validate=True),
                        base64.b64decode(entry["sign"], validate=True),
                    ),
                    pinned_at=datetime.fromtimestamp(entry["at"], UTC),
                )
                for entry in history
            ]
            for partner_id, history in data["pins"].items()
        }
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error):
        raise DecryptionFailed() from None
