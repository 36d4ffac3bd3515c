"""The stored form of a user's keyring: pins and the pending invite, sealed under the user key.

Kept apart from `keyring` (which unlocks and uses it) so that registration and a fresh start can
write a user's first keyring without importing the keys service.

A keyring is JSON wrapped under the user key UK (ChaCha20-Poly1305, purpose "keyring", bound to
the user id), so nobody without UK can read it or write one that opens. It holds:
- `n`, a counter that only grows (milliseconds of the last write, or one more), so two copies of
  one user's keyring can be ordered;
- the pins: a partner's public keys as this user trusted them, each naming its pair, the partner,
  when, and how (`invite`: checked with the invite link's secret; `compared`: the two compared
  safety numbers; `earlier`: kept from a keyring written before pins named pairs);
- the live invite this user made, if any: its id and the key derived from its secret, with which
  the joiner's keys are checked when the inviter next uses their keys.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

from wishnotes import crypto
from wishnotes.errors import DecryptionFailed

PURPOSE_KEYRING = "keyring"
FORMAT = 2
LEGACY_FORMAT = 1
HOW = ("invite", "compared", "earlier")


@dataclass(frozen=True)
class Pin:
    """A partner's public keys as this user trusted them: in which pair, since when, and how."""

    keys: crypto.PublicKeys
    pinned_at: datetime
    pair_id: int
    partner_id: int
    how: str


@dataclass(frozen=True, repr=False)
class PendingInvite:
    """The user's live invite: its id and the MAC key derived from the link's secret."""

    invite_id: int
    key: bytes

    def __repr__(self) -> str:
        return f"PendingInvite({self.invite_id}, <key>)"


@dataclass
class Contents:
    """What one keyring holds."""

    counter: int = 0
    pins: list[Pin] = field(default_factory=list)
    invite: PendingInvite | None = None


def next_counter(previous: int, now: datetime) -> int:
    """Return a counter above `previous` and, when the clock allows, the time in milliseconds.

    Tying it to the clock lets a keyring started afresh still count above every older copy.
    """
    return max(previous + 1, int(now.timestamp() * 1000))


def seal(contents: Contents, *, user_key: bytes, user_id: int) -> bytes:
    """Return the keyring wrapped under the user key."""
    return crypto.wrap(user_key, _encode(contents), purpose=PURPOSE_KEYRING, user_id=user_id)


def empty(*, user_key: bytes, user_id: int, now: datetime) -> bytes:
    """Return a new keyring with nothing in it yet (written at registration and fresh start)."""
    return seal(Contents(counter=next_counter(0, now)), user_key=user_key, user_id=user_id)


def open_blob(
    blob: bytes,
    *,
    user_key: bytes,
    user_id: int,
    legacy_pair: Callable[[], tuple[int, int] | None],
) -> Contents:
    """Unwrap and decode a keyring; DecryptionFailed if it does not open or does not parse.

    `legacy_pair()` gives (pair id, partner id): the pair a format-1 pin for that partner
    belongs to; format-1 pins for anyone else are kept for past notes only.
    """
    data = crypto.unwrap(user_key, blob, purpose=PURPOSE_KEYRING, user_id=user_id)
    try:
        parsed = crypto.json_value(data.decode("utf-8"))
        if parsed.get("v") == LEGACY_FORMAT:
            return _decode_legacy(parsed, legacy_pair())
        if parsed.get("v") != FORMAT:
            raise ValueError("unknown keyring format")
        return _decode(parsed)
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error):
        raise DecryptionFailed() from None


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _unb64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def _encode(contents: Contents) -> bytes:
    invite = contents.invite
    data = {
        "v": FORMAT,
        "n": contents.counter,
        "pins": [
            {
                "pair": pin.pair_id,
                "user": pin.partner_id,
                "hpke": _b64(pin.keys.hpke_public),
                "sign": _b64(pin.keys.sign_public),
                "at": int(pin.pinned_at.timestamp()),
                "how": pin.how,
            }
            for pin in contents.pins
        ],
        "invite": None if invite is None else {"id": invite.invite_id, "key": _b64(invite.key)},
    }
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")


@lru_cache(maxsize=512)
def _pinned_keys(hpke_text: str, sign_text: str) -> crypto.PublicKeys:
    """Return the public keys a pin holds, decoded from its base64 text once per process.

    Every request unlocks a keyring and reads its pins; the same pins come back each time.
    Public keys only: the cache holds nothing that is secret (the invite key is never here).
    Malformed text raises as before, and an error is not cached.
    """
    if type(hpke_text) is not str or type(sign_text) is not str:
        raise TypeError("expected base64 text")
    return crypto.load_public_keys(_unb64(hpke_text), _unb64(sign_text))


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("expected an int")
    return value


def _decode(data: dict) -> Contents:
    pins = []
    for entry in data["pins"]:
        if entry["how"] not in HOW:
            raise ValueError("unknown pin kind")
        pins.append(
            Pin(
                keys=_pinned_keys(entry["hpke"], entry["sign"]),
                pinned_at=datetime.fromtimestamp(_int(entry["at"]), UTC),
                pair_id=_int(entry["pair"]),
                partner_id=_int(entry["user"]),
                how=entry["how"],
            )
        )
    invite = data["invite"]
    pending = None
    if invite is not None:
        pending = PendingInvite(invite_id=_int(invite["id"]), key=_unb64(invite["key"]))
        if len(pending.key) != crypto.KEY_BYTES:
            raise ValueError("invite key has the wrong length")
    return Contents(counter=_int(data["n"]), pins=pins, invite=pending)


def _decode_legacy(data: dict, legacy_pair: tuple[int, int] | None) -> Contents:
    """Read a keyring written before pins named pairs (pins per partner, taken on first use)."""
    pins = []
    for partner_id, history in data["pins"].items():
        partner = int(partner_id)
        pair_id = legacy_pair[0] if legacy_pair and legacy_pair[1] == partner else 0
        for entry in history:
            pins.append(
                Pin(
                    keys=crypto.load_public_keys(_unb64(entry["hpke"]), _unb64(entry["sign"])),
                    pinned_at=datetime.fromtimestamp(_int(entry["at"]), UTC),
                    pair_id=pair_id,
                    partner_id=partner,
                    how="earlier",
                )
            )
    return Contents(counter=0, pins=pins, invite=None)
