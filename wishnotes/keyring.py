"""A user's unlocked key material for one request, and the partner keys they pinned.

`unlock(user=..., user_key=...)` is the one place private keys are unwrapped. The returned Keyring
also holds the user's pins (see keyring_store for the stored form), so someone who can only read
or write the database can neither read the pins nor change them unnoticed.

No pin is taken on trust. Every user has a keyring from registration on; a missing, unreadable
or replaced keyring opens nothing from a partner and seals nothing to one (KeyChanged), it is
never read as "no pins yet". A pin is taken only:
- at pairing, checked with the invite link's secret, which reaches the partner outside the
  server. The inviter's keyring keeps a key derived from that secret; the invite row carries a
  MAC of the inviter's public keys under it, which the joiner checks before pinning them; the
  pair row carries the joiner's MAC of their own keys and the pair id, which the inviter checks
  the next time they use their keys. A MAC that does not verify pins nothing;
- or after the two compared safety numbers and said so (`trust_partner`), e.g. after a fresh
  start gave one of them new keys.
Pins name their pair. From then on, partner keys in the users table that differ from the pin
raise KeyChanged, and nothing is opened or sealed. Earlier pins stay in the keyring, so notes
signed before a legitimate key change still verify.

Putting back an older copy of a keyring: a copy from before the current pair holds no pin for it
and is caught like a missing one. Each write moves a counter in the keyring forward, and the
browser keeps a mark of the newest counter it saw, MACed under a key derived from the user key
(`mark`, `check_mark`, used by wishnotes.web.keys): a browser that saw a newer keyring refuses an
older one. A browser that never did cannot tell; such a copy holds only keys that were
authenticated when pinned, or the key of an earlier invite (README, "What Wishnotes protects
against").
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from wishnotes import crypto, keyring_store, recovery
from wishnotes.accounts import PURPOSE_PRIVATE_KEYS
from wishnotes.errors import (
    DecryptionFailed,
    EarlierKeysLocked,
    KeyChanged,
    KeyringRolledBack,
    NotPaired,
)
from wishnotes.extensions import db
from wishnotes.keyring_store import PendingInvite, Pin
from wishnotes.models import Pair, User

PURPOSE_KEYRING = keyring_store.PURPOSE_KEYRING


@dataclass(frozen=True)
class Safety:
    """What the safety-number page shows."""

    partner: User
    number: str
    pinned: Pin | None  # the current pin for this pair, if any
    matches: bool  # the partner's keys in the database are the pinned ones
    intact: bool  # False: the keyring was missing, unreadable or put back; nothing is trusted


def public_keys(user: User) -> crypto.PublicKeys | None:
    """Return a user's public keys as the users table has them, or None if they are malformed."""
    try:
        return crypto.load_public_keys(bytes(user.hpke_public), bytes(user.sign_public))
    except (TypeError, ValueError):
        return None


class Keyring:
    """A user's private keys and pins, unlocked for the length of one request."""

    def __init__(
        self,
        user: User,
        user_key: bytes,
        keys: crypto.UserKeys,
        contents: keyring_store.Contents,
        *,
        intact: bool,
    ) -> None:
        self.user = user
        self.keys = keys
        self.intact = intact  # False: missing or unreadable, treated as tampering
        self.changed = False  # something was pinned: the caller's transaction has a write
        self._user_key = user_key
        self._contents = contents

    def __repr__(self) -> str:
        return f"<Keyring of user {self.user.id}>"

    @crypto.once
    def own_public(self) -> crypto.PublicKeys:
        """Return the user's public keys, derived from the private ones (not from the table)."""
        return self.keys.public()

    @property
    def counter(self) -> int:
        """Return the keyring's write counter (0 for a missing or pre-counter keyring)."""
        return self._contents.counter

    @property
    def pending_invite(self) -> PendingInvite | None:
        """Return the invite whose joiner is still to be pinned, if any."""
        return self._contents.invite

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

    def current_pin(self, partner: User, *, now: datetime, settle: bool = True) -> Pin | None:
        """Return the keys trusted for this partner in the user's current pair, if any.

        An inviter whose partner joined since they last used their keys pins them here (unless
        `settle` is False), once the joiner's MAC made with the invite's secret verifies.
        """
        pair_id = self.user.pair_id
        if pair_id is None:
            return None
        partner_id = partner.id
        for pin in reversed(self._contents.pins):
            if pin.pair_id == pair_id and pin.partner_id == partner_id:
                return pin
        return self._pin_joiner(partner, now=now) if settle else None

    def trusted(self, partner: User, *, now: datetime) -> crypto.PublicKeys:
        """Return the partner's keys to seal to; KeyChanged unless they are the pinned ones."""
        pin = self.current_pin(partner, now=now)
        if pin is None or public_keys(partner) != pin.keys:
            raise KeyChanged()
        return pin.keys

    def signer(
        self, sender: User, *, key_id: str, now: datetime, strict: bool = True
    ) -> crypto.PublicKeys:
        """Return the public keys to verify something `sender` signed with key `key_id`.

        Strict (a current partner): KeyChanged unless their keys in the table are the pinned
        ones. Not strict (an ended pair, where there is nobody to compare numbers with any more):
        any key that was pinned for them verifies, and only an unpinned one is refused.
        """
        if not self.intact:
            raise KeyChanged()  # tampering: not even the user's own notes open
        sender_id = sender.id
        if sender_id == self.user.id:
            return self.own_public if key_id == self.user.key_id else self.keys_for(key_id).public()
        if strict:
            self.trusted(sender, now=now)
        for pin in reversed(self._contents.pins):
            if pin.partner_id == sender_id and pin.keys.key_id == key_id:
                return pin.keys
        raise DecryptionFailed()

    def pin(
        self, *, pair_id: int, partner: User, keys: crypto.PublicKeys, how: str, now: datetime
    ) -> None:
        """Pin keys for a partner in a pair (already checked by the caller)."""
        self._contents.pins.append(
            Pin(keys=keys, pinned_at=now, pair_id=pair_id, partner_id=partner.id, how=how)
        )
        self._save(now)

    def trust(self, partner: User, *, now: datetime) -> None:
        """Trust the partner's keys as the users table has them now (after comparing numbers).

        Always written, even for keys already pinned: the write moves the counter past any
        mark of a keyring that had been put back.
        """
        table = public_keys(partner)
        if table is None:
            raise DecryptionFailed()
        self.pin(pair_id=self.user.pair_id, partner=partner, keys=table, how="compared", now=now)

    def remember_invite(self, *, invite_id: int, key: bytes, now: datetime) -> None:
        """Keep the key of the user's new invite (it replaces any earlier one)."""
        self._contents.invite = PendingInvite(invite_id=invite_id, key=key)
        self._save(now)

    def _pin_joiner(self, partner: User, *, now: datetime) -> Pin | None:
        invite = self._contents.invite
        pair = db.session.get(Pair, self.user.pair_id)
        table = public_keys(partner)
        if invite is None or pair is None or table is None or pair.joiner_mac is None:
            return None
        if pair.invite_id != invite.invite_id or pair.first_user_id != self.user.id:
            return None
        expected = crypto.joiner_mac(
            invite.key, invite_id=invite.invite_id, pair_id=pair.id, user_id=partner.id, keys=table
        )
        if pair.second_user_id != partner.id or not crypto.macs_match(expected, pair.joiner_mac):
            return None
        self._contents.invite = None  # used: the pin is what is kept
        self.pin(pair_id=pair.id, partner=partner, keys=table, how="invite", now=now)
        return self._contents.pins[-1]

    def _save(self, now: datetime) -> None:
        self._contents.counter = keyring_store.next_counter(self._contents.counter, now)
        self.intact = True
        self.changed = True
        # Written into the session only; the calling service commits its unit of work.
        self.user.keyring = keyring_store.seal(
            self._contents, user_key=self._user_key, user_id=self.user.id
        )


def unlock(*, user: User, user_key: bytes) -> Keyring:
    """Unwrap a user's private keys and pins.

    DecryptionFailed if the private keys were tampered with. A missing or unreadable keyring
    gives a Keyring that trusts nobody (`intact` False): every partner key raises KeyChanged.
    """
    user_id = user.id
    try:
        keys = crypto.deserialize_private(
            crypto.unwrap(
                user_key, user.private_keys, purpose=PURPOSE_PRIVATE_KEYS, user_id=user_id
            )
        )
    except (TypeError, ValueError):
        raise DecryptionFailed() from None
    blob = user.keyring
    if blob is not None:
        try:
            contents = keyring_store.open_blob(
                blob, user_key=user_key, user_id=user_id, legacy_pair=lambda: _legacy_pair(user)
            )
        except DecryptionFailed:
            pass
        else:
            return Keyring(user, user_key, keys, contents, intact=True)
    return Keyring(user, user_key, keys, keyring_store.Contents(), intact=False)


def mark(*, user: User, user_key: bytes) -> tuple[int, str] | None:
    """Return the keyring's counter and a mark of it for the browser; None if not intact."""
    ring = unlock(user=user, user_key=user_key)
    if not ring.intact:
        return None
    tag = crypto.keyring_mark(user_key, user_id=user.id, counter=ring.counter)
    return ring.counter, f"{ring.counter}.{base64.urlsafe_b64encode(tag).decode('ascii')}"


def marked_counter(*, user: User, user_key: bytes, mark: str | None) -> int:
    """Return the counter a browser's mark vouches for, or 0 if it is not a mark of this user's."""
    counter_text, _, tag_text = (mark or "").partition(".")
    if not counter_text.isdigit() or len(counter_text) > 20:
        return 0
    try:
        tag = base64.urlsafe_b64decode(tag_text.encode("ascii"))
    except (ValueError, binascii.Error):
        return 0
    counter = int(counter_text)
    expected = crypto.keyring_mark(user_key, user_id=user.id, counter=counter)
    return counter if crypto.macs_match(expected, tag) else 0


def check_mark(*, user: User, user_key: bytes, mark: str | None) -> None:
    """Raise KeyringRolledBack if the keyring is older than the one the browser's mark names."""
    floor = marked_counter(user=user, user_key=user_key, mark=mark)
    if floor and unlock(user=user, user_key=user_key).counter < floor:
        raise KeyringRolledBack()


def safety(*, user: User, user_key: bytes, now: datetime, rolled_back: bool = False) -> Safety:
    """Return the pair's safety number and whether the partner's keys match the pin.

    Both partners see the same number when neither key was swapped: it is computed from this
    user's own keys (derived from the private ones) and the partner's keys in the users table.
    """
    partner = _partner(user)
    keyring = unlock(user=user, user_key=user_key)
    table = public_keys(partner)
    if table is None:
        raise DecryptionFailed()
    # A keyring put back pins nothing by itself, not even through an invite it still holds.
    pin = keyring.current_pin(partner, now=now, settle=not rolled_back)
    if keyring.changed:
        db.session.commit()
    return Safety(
        partner=partner,
        number=crypto.safety_number(keyring.own_public, table),
        pinned=pin,
        matches=pin is not None and pin.keys == table and not rolled_back,
        intact=keyring.intact and not rolled_back,
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


def _legacy_pair(user: User) -> tuple[int, int] | None:
    """Return (pair id, partner id) for reading a keyring written before pins named pairs."""
    if user.pair_id is None:
        return None
    partner = db.session.scalar(
        select(User.id).where(User.pair_id == user.pair_id, User.id != user.id)
    )
    return None if partner is None else (user.pair_id, partner)
