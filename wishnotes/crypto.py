"""The cryptographic core: login KDF, key wrapping, user key pairs and note envelopes.

Pure functions on bytes (DESIGN.md section 4): no Flask, no database, no I/O, no logging.
Every failure to unwrap, open or verify raises DecryptionFailed with one generic message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import struct
import unicodedata
from dataclasses import dataclass, fields
from functools import cache, lru_cache
from json.encoder import encode_basestring as _json_string

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from .errors import CryptoUnavailable, DecryptionFailed

try:  # Need cryptography>=50 and its bundled OpenSSL; self_test() turns a failure into a message.
    from cryptography.hazmat.primitives import hpke
    from cryptography.hazmat.primitives.asymmetric import mlkem
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
except ImportError as exc:
    hpke = mlkem = Argon2id = None
    _IMPORT_ERROR: str | None = str(exc)
else:
    _IMPORT_ERROR = None

SUITE_ID = "MLKEM768_X25519/HKDF_SHA256/CHACHA20_POLY1305"
ENVELOPE_VERSION = 1
PAD_BLOCK = 256
RECOVERY_KEY_BYTES = 20

KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_WRAP_VERSION = 1
_MLKEM_SEED_BYTES = 64
_MLKEM_PUBLIC_BYTES = 1184
_X25519_BYTES = 32
_ED25519_BYTES = 32
_SIGNATURE_BYTES = 64
HPKE_PRIVATE_BYTES = _MLKEM_SEED_BYTES + _X25519_BYTES
HPKE_PUBLIC_BYTES = _MLKEM_PUBLIC_BYTES + _X25519_BYTES
# HPKE single-shot output for a data key: ML-KEM-768 ciphertext + X25519 share, then key + tag.
_STANZA_BYTES = 1088 + _X25519_BYTES + KEY_BYTES + _TAG_BYTES

_ENVELOPE_MAGIC = b"WNEV"
_PRIVATE_MAGIC = b"WNPK\x01"
_MAX_HEADER_BYTES = 4096
_ROLE_RECIPIENT = 1
_ROLE_AUTHOR = 2
_ROLE_NAMES = {_ROLE_RECIPIENT: b"recipient", _ROLE_AUTHOR: b"author"}
_SIGNATURE_CONTEXT = b"wishnotes/envelope-signature/v1\x00"
_KEY_ID_RE = re.compile(r"[0-9a-f]{16}")


_U32 = struct.Struct(">I")


class once:
    """functools.cached_property without its lock: the value is kept in the instance's dict.

    On Python 3.11 cached_property takes one lock per property shared by every instance, so
    two requests building their own keys at once wait for each other. The objects here live
    for one request, or are public keys whose value is the same whoever computes it first.
    """

    def __init__(self, func) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        # Not a data descriptor: once stored, the instance's dict answers without a call here.
        value = instance.__dict__[self.name] = self.func(instance)
        return value


def _length_prefixed(*parts: bytes) -> bytes:
    """Join byte strings with 4-byte length prefixes so that no two inputs encode alike."""
    pack = _U32.pack
    return b"".join([pack(len(part)) + part for part in parts])


def _int_bytes(value: int) -> bytes:
    return str(value).encode("ascii")


def _require_int(name: str, value: object) -> None:
    if type(value) is int:  # the usual case, decided at once
        return
    # bool is an int subclass; True must never stand in for user 1.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int")


def _require_bytes(name: str, value: object, length: int | None = None) -> None:
    if not isinstance(value, bytes):
        raise TypeError(f"{name} must be bytes")
    if length is not None and len(value) != length:
        raise ValueError(f"{name} must be {length} bytes, not {len(value)}")


_JSON_DECODER = json.JSONDecoder()


def json_value(text: str) -> object:
    """Decode JSON that is one value with nothing around it, as json.dumps writes it.

    json.loads without its whitespace skipping on either side (refused here, not skipped):
    the headers, keyrings and bodies read on every open are all written by json.dumps.
    """
    value, end = _JSON_DECODER.raw_decode(text)
    if end != len(text):
        raise ValueError("extra data after the JSON value")
    return value


def _as_bytes(value: object) -> bytes:
    """Accept what a database driver hands back (bytes, memoryview, bytearray) for stored blobs."""
    if type(value) is bytes:  # the usual case: no copy, no union check
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError("expected bytes")


# --- login keys -------------------------------------------------------------------------


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost parameters, stored per user so they can be raised at the next login."""

    memory_kib: int = 65536
    iterations: int = 3
    lanes: int = 1


DEFAULT_KDF = KdfParams()
KDF_FLOOR = KdfParams(memory_kib=19456, iterations=2, lanes=1)


# Parameters come back from database rows: a writer must not make a sign-in allocate gigabytes.
KDF_CEILING = KdfParams(memory_kib=1024 * 1024, iterations=20, lanes=16)


def kdf_params_ok(params: KdfParams) -> bool:
    """Return True if the parameters are at or above the floor."""
    return (
        params.memory_kib >= KDF_FLOOR.memory_kib
        and params.iterations >= KDF_FLOOR.iterations
        and params.lanes >= KDF_FLOOR.lanes
    )


def kdf_params_bounded(params: KdfParams) -> bool:
    """Return True if every parameter is a plain int at or below the ceiling."""
    values = (params.memory_kib, params.iterations, params.lanes)
    if any(not isinstance(v, int) or isinstance(v, bool) for v in values):
        return False
    return (
        params.memory_kib <= KDF_CEILING.memory_kib
        and params.iterations <= KDF_CEILING.iterations
        and params.lanes <= KDF_CEILING.lanes
    )


def new_salt() -> bytes:
    """Return a fresh 16-byte salt."""
    return secrets.token_bytes(16)


def derive_login_keys(
    password: str, *, salt: bytes, params: KdfParams, pepper: bytes
) -> tuple[bytes, bytes]:
    """Derive (auth_value, key_encryption_key) from a password with one Argon2id run."""
    if not isinstance(password, str):
        raise TypeError("password must be a str")
    _require_bytes("salt", salt)
    _require_bytes("pepper", pepper)
    if not pepper:
        # An empty secret silently means "no pepper"; that is a configuration bug.
        raise ValueError("pepper must not be empty")
    if not kdf_params_bounded(params):
        raise ValueError("KDF parameters are above the ceiling")
    if not kdf_params_ok(params):
        raise ValueError("KDF parameters are below the floor")
    # NFKC so the same password typed on another keyboard or OS derives the same keys.
    normalised = unicodedata.normalize("NFKC", password).encode("utf-8")
    master = Argon2id(
        salt=salt,
        length=32,
        iterations=params.iterations,
        lanes=params.lanes,
        memory_cost=params.memory_kib,
        secret=pepper,
    ).derive(normalised)
    auth_value = _expand(master, b"wishnotes/login/auth/v1")
    key_encryption_key = _expand(master, b"wishnotes/login/kek/v1")
    return auth_value, key_encryption_key


def _expand(master: bytes, info: bytes) -> bytes:
    return HKDFExpand(algorithm=hashes.SHA256(), length=KEY_BYTES, info=info).derive(master)


def auth_digest(auth_value: bytes) -> bytes:
    """Return the SHA-256 of an auth value: the only form that is stored."""
    _require_bytes("auth_value", auth_value)
    return hashlib.sha256(auth_value).digest()


def auth_matches(auth_value: bytes, stored_digest: bytes) -> bool:
    """Return True if auth_value hashes to stored_digest, compared in constant time."""
    return hmac.compare_digest(auth_digest(auth_value), _as_bytes(stored_digest))


# --- recovery key -----------------------------------------------------------------------

_BASE32_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
# The kit prints upper case, where 0/O, 1/I and 8/B are the look-alikes; L does not look like 1.
_CONFUSABLES = str.maketrans({"0": "O", "1": "I", "8": "B"})
_SEPARATORS = re.compile(r"[\s\-_\u2010-\u2015\u2212]+")
_RECOVERY_CHARS = RECOVERY_KEY_BYTES * 8 // 5


def new_recovery_key() -> bytes:
    """Return a fresh 160-bit recovery key."""
    return secrets.token_bytes(RECOVERY_KEY_BYTES)


def recovery_key_groups(key: bytes) -> list[str]:
    """Return the recovery key as 8 groups of 4 base32 characters."""
    _require_bytes("recovery key", key, RECOVERY_KEY_BYTES)
    text = base64.b32encode(key).decode("ascii")  # 160 bits fill 32 characters: no padding
    return [text[i : i + 4] for i in range(0, len(text), 4)]


def format_recovery_key(key: bytes) -> str:
    """Return the recovery key as printed on the kit, e.g. "ABCD-EFGH-...-WXYZ"."""
    return "-".join(recovery_key_groups(key))


def normalise_recovery_text(text: str) -> str:
    """Return typed recovery-key text as printed: no separators, upper case, no look-alikes."""
    cleaned = _SEPARATORS.sub("", unicodedata.normalize("NFKC", text or "")).upper()
    return cleaned.translate(_CONFUSABLES)


def recovery_group_matches(typed: str, group: str) -> bool:
    """Return True if `typed` is the kit's `group`, forgiving case, spaces and look-alikes."""
    if not isinstance(typed, str):
        return False
    # Bounded before normalising: a form field must not make NFKC chew on megabytes.
    candidate = normalise_recovery_text(typed[:64]).encode("utf-8")
    return hmac.compare_digest(candidate, group.encode("ascii"))


def parse_recovery_key(text: str) -> bytes:
    """Parse a typed recovery key, forgiving case, spaces, dashes and look-alike digits."""
    if not isinstance(text, str):
        raise TypeError("recovery key must be a str")
    cleaned = normalise_recovery_text(text)
    # Messages name counts and positions only, never the characters: they may end up in a log.
    if len(cleaned) != _RECOVERY_CHARS:
        raise ValueError(
            f"A recovery key has {_RECOVERY_CHARS} letters and digits; this one has {len(cleaned)}."
        )
    for position, char in enumerate(cleaned, start=1):
        if char not in _BASE32_ALPHABET:
            raise ValueError(
                f"Character {position} of the recovery key is not a letter or a digit from 2 to 7."
            )
    return base64.b32decode(cleaned)


def recovery_kek(recovery_key: bytes, *, user_id: int, pepper: bytes) -> bytes:
    """Derive the key that wraps a user's UK from their recovery key."""
    _require_bytes("recovery_key", recovery_key, RECOVERY_KEY_BYTES)
    _require_bytes("pepper", pepper)
    _require_int("user_id", user_id)
    if not pepper:
        raise ValueError("pepper must not be empty")
    # 160 random bits need no stretching; HKDF only binds purpose, user and the server pepper.
    info = _length_prefixed(b"wishnotes/recovery-kek/v1", _int_bytes(user_id))
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=pepper, info=info).derive(
        recovery_key
    )


# --- wrapping ---------------------------------------------------------------------------


def new_key() -> bytes:
    """Return a fresh 32-byte symmetric key."""
    return secrets.token_bytes(KEY_BYTES)


@lru_cache(maxsize=4096)
def _wrap_ad(purpose: str, user_id: int) -> bytes:
    return _length_prefixed(
        b"wishnotes", bytes([_WRAP_VERSION]), purpose.encode("utf-8"), _int_bytes(user_id)
    )


def _check_purpose(purpose: object) -> None:
    if not isinstance(purpose, str) or not purpose:
        raise ValueError("purpose must be a non-empty str")


def wrap(key: bytes, plaintext: bytes, *, purpose: str, user_id: int) -> bytes:
    """Encrypt plaintext under key, bound to purpose and user_id: version || nonce || ciphertext."""
    _require_bytes("key", key, KEY_BYTES)
    _require_bytes("plaintext", plaintext)
    _check_purpose(purpose)
    _require_int("user_id", user_id)
    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = ChaCha20Poly1305(key).encrypt(nonce, plaintext, _wrap_ad(purpose, user_id))
    return bytes([_WRAP_VERSION]) + nonce + sealed


def unwrap(key: bytes, blob: bytes, *, purpose: str, user_id: int) -> bytes:
    """Decrypt a wrap() blob; raise DecryptionFailed if anything about it is wrong."""
    _check_purpose(purpose)
    _require_int("user_id", user_id)
    key, blob = _as_bytes(key), _as_bytes(blob)
    # A wrong-length key can come from a tampered cookie: that is a failed open, not a bug.
    if len(key) != KEY_BYTES or len(blob) < 1 + _NONCE_BYTES + _TAG_BYTES:
        raise DecryptionFailed()
    if blob[0] != _WRAP_VERSION:
        raise DecryptionFailed()
    nonce, sealed = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, sealed, _wrap_ad(purpose, user_id))
    except InvalidTag:
        raise DecryptionFailed() from None


# --- user keys --------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicKeys:
    """A user's public keys: HPKE for receiving data keys, Ed25519 for signing envelopes.

    The derived values (key id, library key objects) are computed once per instance: a request
    that seals or opens uses the same keys several times.
    """

    hpke_public: bytes  # ML-KEM-768 public raw (1184) || X25519 public raw (32)
    sign_public: bytes  # Ed25519 public raw (32)

    def __post_init__(self) -> None:
        _require_bytes("hpke_public", self.hpke_public, HPKE_PUBLIC_BYTES)
        _require_bytes("sign_public", self.sign_public, _ED25519_BYTES)

    @once
    def key_id(self) -> str:
        """Return 16 hex characters naming this key set."""
        material = _length_prefixed(b"wishnotes/key-id/v1", self.hpke_public, self.sign_public)
        return hashlib.sha256(material).hexdigest()[:16]

    @once
    def _hpke(self) -> hpke.MLKEM768X25519PublicKey:
        return hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(self.hpke_public[:_MLKEM_PUBLIC_BYTES]),
            x25519.X25519PublicKey.from_public_bytes(self.hpke_public[_MLKEM_PUBLIC_BYTES:]),
        )

    @once
    def _verifier(self) -> ed25519.Ed25519PublicKey:
        return ed25519.Ed25519PublicKey.from_public_bytes(self.sign_public)


@dataclass(frozen=True, repr=False)
class UserKeys:
    """A user's private keys; held in memory only while a request needs them.

    The library key objects are built from the raw bytes once per instance (building the
    ML-KEM key from its seed costs about as much as a decapsulation), and the public keys are
    derived once; an instance lives for one request (keyring.unlock).
    """

    hpke_private: bytes  # ML-KEM-768 seed (64) || X25519 private raw (32)
    sign_private: bytes  # Ed25519 private raw (32)

    def __post_init__(self) -> None:
        _require_bytes("hpke_private", self.hpke_private, HPKE_PRIVATE_BYTES)
        _require_bytes("sign_private", self.sign_private, _ED25519_BYTES)

    def __repr__(self) -> str:
        return "UserKeys(<secret>)"

    def public(self) -> PublicKeys:
        """Return the matching public keys."""
        return self._public

    @once
    def _public(self) -> PublicKeys:
        mlkem_public = self._mlkem().public_key()
        x_public = self._x25519().public_key()
        public = PublicKeys(
            hpke_public=mlkem_public.public_bytes_raw() + x_public.public_bytes_raw(),
            sign_public=self._signer().public_key().public_bytes_raw(),
        )
        # The key objects are at hand: no need to parse the bytes just made back into them.
        public.__dict__["_hpke"] = hpke.MLKEM768X25519PublicKey(mlkem_public, x_public)
        return public

    def _mlkem(self) -> mlkem.MLKEM768PrivateKey:
        return self._mlkem_key

    def _x25519(self) -> x25519.X25519PrivateKey:
        return self._x25519_key

    def _signer(self) -> ed25519.Ed25519PrivateKey:
        return self._signer_key

    def _hpke(self) -> hpke.MLKEM768X25519PrivateKey:
        return self._hpke_key

    # Each built on first use only: opening a note never needs the signing key, for one.
    @once
    def _mlkem_key(self) -> mlkem.MLKEM768PrivateKey:
        return mlkem.MLKEM768PrivateKey.from_seed_bytes(self.hpke_private[:_MLKEM_SEED_BYTES])

    @once
    def _x25519_key(self) -> x25519.X25519PrivateKey:
        return x25519.X25519PrivateKey.from_private_bytes(self.hpke_private[_MLKEM_SEED_BYTES:])

    @once
    def _signer_key(self) -> ed25519.Ed25519PrivateKey:
        return ed25519.Ed25519PrivateKey.from_private_bytes(self.sign_private)

    @once
    def _hpke_key(self) -> hpke.MLKEM768X25519PrivateKey:
        return hpke.MLKEM768X25519PrivateKey(self._mlkem_key, self._x25519_key)


@lru_cache(maxsize=512)
def load_public_keys(hpke_public: bytes, sign_public: bytes) -> PublicKeys:
    """Return the PublicKeys for these bytes, one object per process for the same keys.

    Public keys are no secret: parsing them and deriving their id then happen once per
    process, not once per request (a partner's keys are read on every note opened or sent).
    """
    return PublicKeys(hpke_public=hpke_public, sign_public=sign_public)


def _hpke_public(keys: PublicKeys) -> hpke.MLKEM768X25519PublicKey:
    return keys._hpke


@cache
def _suite() -> hpke.Suite:
    # Built on first use, not at import, so an old library fails in self_test() with a message.
    return hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


def generate_user_keys() -> UserKeys:
    """Return a fresh HPKE (ML-KEM-768+X25519) and Ed25519 key set."""
    seed = mlkem.MLKEM768PrivateKey.generate().private_bytes_raw()
    x_private = x25519.X25519PrivateKey.generate().private_bytes_raw()
    sign_private = ed25519.Ed25519PrivateKey.generate().private_bytes_raw()
    return UserKeys(hpke_private=seed + x_private, sign_private=sign_private)


def serialize_private(keys: UserKeys) -> bytes:
    """Return the private keys as bytes, to be wrap()ped under UK with purpose "private-keys"."""
    return _PRIVATE_MAGIC + keys.hpke_private + keys.sign_private


def deserialize_private(blob: bytes) -> UserKeys:
    """Rebuild UserKeys from serialize_private() output."""
    blob = _as_bytes(blob)
    magic_len = len(_PRIVATE_MAGIC)
    if len(blob) != magic_len + HPKE_PRIVATE_BYTES + _ED25519_BYTES:
        raise ValueError("not a serialized private key set")
    if blob[:magic_len] != _PRIVATE_MAGIC:
        raise ValueError("not a serialized private key set")
    hpke_end = magic_len + HPKE_PRIVATE_BYTES
    return UserKeys(hpke_private=blob[magic_len:hpke_end], sign_private=blob[hpke_end:])


def safety_number(a: PublicKeys, b: PublicKeys) -> str:
    """Return the pair's safety number, the same for both partners: "12345 67890 ..."."""
    # Sorting makes it independent of who computes it.
    first, second = sorted(_length_prefixed(k.hpke_public, k.sign_public) for k in (a, b))
    digest = hashlib.sha256(_length_prefixed(b"wishnotes/safety-number/v1", first, second)).digest()
    # 40 bits per group leave a negligible bias after mod 100000.
    groups = (int.from_bytes(digest[i * 5 : i * 5 + 5], "big") % 100000 for i in range(5))
    return " ".join(f"{group:05d}" for group in groups)


# --- pairing ----------------------------------------------------------------------------

PAIRING_MAC_BYTES = 32
_INVITER = b"inviter"
_JOINER = b"joiner"


def pairing_key(invite_secret: str) -> bytes:
    """Derive the key that authenticates both partners' public keys from an invite secret.

    The secret travels outside the server (the person hands the link over); the server keeps
    only its SHA-256, from which this key cannot be derived.
    """
    if not isinstance(invite_secret, str) or not invite_secret:
        raise ValueError("invite secret must be a non-empty str")
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=b"wishnotes/pairing-mac/v1"
    ).derive(invite_secret.encode("utf-8"))


def _pairing_message(
    role: bytes, *, invite_id: int, pair_id: int, user_id: int, keys: PublicKeys
) -> bytes:
    for name, value in (("invite_id", invite_id), ("pair_id", pair_id), ("user_id", user_id)):
        _require_int(name, value)
    return _length_prefixed(
        b"wishnotes/pairing/v1",
        role,
        _int_bytes(invite_id),
        _int_bytes(pair_id),
        _int_bytes(user_id),
        keys.hpke_public,
        keys.sign_public,
    )


def inviter_mac(key: bytes, *, invite_id: int, user_id: int, keys: PublicKeys) -> bytes:
    """MAC the inviter's public keys for the invite (no pair exists yet: pair id 0)."""
    _require_bytes("key", key, KEY_BYTES)
    message = _pairing_message(_INVITER, invite_id=invite_id, pair_id=0, user_id=user_id, keys=keys)
    return hmac.new(key, message, hashlib.sha256).digest()


def joiner_mac(
    key: bytes, *, invite_id: int, pair_id: int, user_id: int, keys: PublicKeys
) -> bytes:
    """MAC the joiner's public keys for the pair the invite made."""
    _require_bytes("key", key, KEY_BYTES)
    message = _pairing_message(
        _JOINER, invite_id=invite_id, pair_id=pair_id, user_id=user_id, keys=keys
    )
    return hmac.new(key, message, hashlib.sha256).digest()


def macs_match(expected: bytes, given: object) -> bool:
    """Compare two MACs in constant time; anything that is not 32 bytes does not match."""
    try:
        given = _as_bytes(given)
    except TypeError:
        return False
    return len(given) == PAIRING_MAC_BYTES and hmac.compare_digest(expected, given)


def keyring_mark(user_key: bytes, *, user_id: int, counter: int) -> bytes:
    """MAC a keyring's counter under a key derived from the user key.

    A browser keeps the newest one it saw; the database cannot forge a mark for a higher
    counter, so a keyring put back from an older copy shows as older than the mark.
    """
    _require_bytes("user_key", user_key, KEY_BYTES)
    _require_int("user_id", user_id)
    _require_int("counter", counter)
    context = _length_prefixed(b"wishnotes/keyring-mark/v1", _int_bytes(user_id))
    key = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=context).derive(
        user_key
    )
    return hmac.new(key, _length_prefixed(context, _int_bytes(counter)), hashlib.sha256).digest()


# --- note envelopes ---------------------------------------------------------------------

# One envelope format for every text a partner writes; the kind keeps them from standing in for
# each other (a place's turn cannot be shown as a note, nor an answer as an agreement).
_NOTE_KINDS = ("note", "answer", "reply", "wishkey", "ritual", "place", "place-turn", "agreement")
_HEADER_STRINGS = ("note_id", "sender_key_id", "recipient_key_id", "kind", "suite")
_HEADER_INTS = ("pair_id", "sender_id", "recipient_id", "created_at", "version")


@dataclass(frozen=True)
class NoteHeader:
    """What an envelope is about; bound to its ciphertext, stanzas and signature."""

    note_id: str
    pair_id: int
    sender_id: int
    recipient_id: int
    sender_key_id: str
    recipient_key_id: str
    created_at: int
    sealed: bool
    kind: str = "note"
    version: int = ENVELOPE_VERSION
    suite: str = SUITE_ID

    def __post_init__(self) -> None:
        # Checked on every envelope sealed or opened, so one pass over the values.
        values = self.__dict__
        for name in _HEADER_STRINGS:
            if type(values[name]) is not str:
                raise TypeError(f"{name} must be a str")
        for name in _HEADER_INTS:
            # Exactly int: bool is an int subclass, and True must never stand in for user 1.
            if type(values[name]) is not int:
                raise TypeError(f"{name} must be an int")
        if type(self.sealed) is not bool:
            raise TypeError("sealed must be a bool")
        if not self.note_id:
            raise ValueError("note_id must not be empty")
        if self.kind not in _NOTE_KINDS:
            raise ValueError(f"kind must be one of {_NOTE_KINDS}")
        for name in ("sender_key_id", "recipient_key_id"):
            if not _KEY_ID_RE.fullmatch(getattr(self, name)):
                raise ValueError(f"{name} must be 16 lowercase hex characters")

    def canonical(self) -> bytes:
        """Return the header as canonical JSON: sorted keys, no whitespace, UTF-8.

        Byte for byte what `json.dumps(asdict(header), sort_keys=True, separators=(",", ":"),
        ensure_ascii=False)` gives (tests/test_crypto.py compares the two), written out field
        by field: every header sealed or opened goes through here, and the fields are fixed.
        __post_init__ made every value exactly a str, int or bool, which JSON writes as
        json.encoder's string quoting, int.__repr__ and true/false.
        """
        v = self.__dict__
        quote = _json_string
        return (
            f'{{"created_at":{v["created_at"]!r},"kind":{quote(v["kind"])},'
            f'"note_id":{quote(v["note_id"])},"pair_id":{v["pair_id"]!r},'
            f'"recipient_id":{v["recipient_id"]!r},'
            f'"recipient_key_id":{quote(v["recipient_key_id"])},'
            f'"sealed":{"true" if v["sealed"] else "false"},"sender_id":{v["sender_id"]!r},'
            f'"sender_key_id":{quote(v["sender_key_id"])},"suite":{quote(v["suite"])},'
            f'"version":{v["version"]!r}}}'
        ).encode()


_HEADER_FIELDS = frozenset(f.name for f in fields(NoteHeader))


@dataclass(frozen=True)
class Envelope:
    """An envelope split into its parts (parse_envelope); nothing in it is verified yet."""

    header: NoteHeader
    header_bytes: bytes
    stanzas: dict[int, bytes]
    nonce: bytes
    ciphertext: bytes
    signed: bytes
    signature: bytes


def _hpke_info(header_bytes: bytes, role: int, user_id: int, key_id: str) -> bytes:
    # _length_prefixed(label, sha256(header), role name, user id, key id), with the parts
    # that never change (the label, the digest's length, the role names) framed once.
    user = _int_bytes(user_id)
    key = key_id.encode("ascii")
    return b"".join(
        (
            _HPKE_INFO_START,
            hashlib.sha256(header_bytes).digest(),
            _HPKE_INFO_ROLES[role],
            _U32.pack(len(user)),
            user,
            _U32.pack(len(key)),
            key,
        )
    )


_HPKE_INFO_START = _length_prefixed(b"wishnotes/envelope-key/v1") + _U32.pack(32)
_HPKE_INFO_ROLES = {role: _length_prefixed(name) for role, name in _ROLE_NAMES.items()}


def _stanza_target(header: NoteHeader, role: int) -> tuple[int, str]:
    if role == _ROLE_RECIPIENT:
        return header.recipient_id, header.recipient_key_id
    return header.sender_id, header.sender_key_id


def _pad(body: bytes) -> bytes:
    # Length prefix, body, zeros up to a whole block: lengths leak only in 256-byte steps.
    framed = struct.pack(">I", len(body)) + body
    return framed + bytes(-len(framed) % PAD_BLOCK)


def _unpad(padded: bytes) -> bytes:
    (length,) = struct.unpack(">I", padded[:4])
    if 4 + length > len(padded) or padded[4 + length :].strip(b"\0"):
        raise DecryptionFailed()
    return padded[4 : 4 + length]


def _sign_envelope(sign_private: bytes, unsigned: bytes) -> bytes:
    signer = ed25519.Ed25519PrivateKey.from_private_bytes(sign_private)
    return signer.sign(_SIGNATURE_CONTEXT + unsigned)


def seal_envelope(
    *,
    header: NoteHeader,
    body: bytes,
    sender_keys: UserKeys,
    recipient_public: PublicKeys,
    sender_public: PublicKeys,
) -> bytes:
    """Encrypt body for the recipient (and the author unless sealed) and sign it."""
    if not isinstance(body, bytes):
        raise TypeError("body must be bytes")
    if len(body) > 0xFFFFFFFF - 4:
        raise ValueError("body is too long")
    if header.version != ENVELOPE_VERSION or header.suite != SUITE_ID:
        raise ValueError("header names an unsupported version or suite")
    if header.sender_key_id != sender_public.key_id:
        raise ValueError("header.sender_key_id does not match sender_public")
    if header.recipient_key_id != recipient_public.key_id:
        raise ValueError("header.recipient_key_id does not match recipient_public")
    if sender_keys.public() != sender_public:
        # Otherwise the author stanza and signature would be unusable by anyone.
        raise ValueError("sender_keys do not match sender_public")
    header_bytes = header.canonical()
    if len(header_bytes) > _MAX_HEADER_BYTES:
        raise ValueError("header is too long")

    data_key = new_key()
    nonce = secrets.token_bytes(_NONCE_BYTES)
    ciphertext = ChaCha20Poly1305(data_key).encrypt(nonce, _pad(body), header_bytes)
    targets = [(_ROLE_RECIPIENT, recipient_public)]
    if not header.sealed:
        targets.append((_ROLE_AUTHOR, sender_public))

    parts = [_ENVELOPE_MAGIC, bytes([ENVELOPE_VERSION]), _length_prefixed(header_bytes)]
    parts.append(bytes([len(targets)]))
    for role, public in targets:
        user_id, key_id = _stanza_target(header, role)
        info = _hpke_info(header_bytes, role, user_id, key_id)
        stanza = _suite().encrypt(data_key, public._hpke, info=info)
        parts.append(bytes([role]) + _length_prefixed(stanza))
    parts.append(nonce)
    parts.append(_length_prefixed(ciphertext))
    unsigned = b"".join(parts)
    return unsigned + sender_keys._signer().sign(_SIGNATURE_CONTEXT + unsigned)


def _parse(envelope: bytes) -> Envelope:
    # Read front to back; every length is checked against what is left before it is used,
    # and any overrun, unexpected value or trailing byte is a failed open.
    size = len(envelope)
    pos = len(_ENVELOPE_MAGIC) + 5  # magic, version, header length
    if size < pos or not envelope.startswith(_ENVELOPE_MAGIC):
        raise DecryptionFailed()
    if envelope[pos - 5] != ENVELOPE_VERSION:
        raise DecryptionFailed()
    (header_len,) = _U32.unpack_from(envelope, pos - 4)
    if header_len > _MAX_HEADER_BYTES or pos + header_len > size:
        raise DecryptionFailed()
    header_bytes = envelope[pos : pos + header_len]
    pos += header_len
    header = _parse_header(header_bytes)

    # Stanzas come in one fixed order: recipient, then author unless the note is sealed.
    expected_roles = (_ROLE_RECIPIENT,) if header.sealed else (_ROLE_RECIPIENT, _ROLE_AUTHOR)
    if pos >= size or envelope[pos] != len(expected_roles):
        raise DecryptionFailed()
    pos += 1
    stanzas = {}
    for role in expected_roles:
        if pos + 5 > size or envelope[pos] != role:
            raise DecryptionFailed()
        (stanza_len,) = _U32.unpack_from(envelope, pos + 1)
        pos += 5
        if stanza_len != _STANZA_BYTES or pos + stanza_len > size:
            raise DecryptionFailed()
        stanzas[role] = envelope[pos : pos + stanza_len]
        pos += stanza_len

    if pos + _NONCE_BYTES + 4 > size:
        raise DecryptionFailed()
    nonce = envelope[pos : pos + _NONCE_BYTES]
    (ciphertext_len,) = _U32.unpack_from(envelope, pos + _NONCE_BYTES)
    pos += _NONCE_BYTES + 4
    if pos + ciphertext_len > size:
        raise DecryptionFailed()
    if ciphertext_len < PAD_BLOCK + _TAG_BYTES or (ciphertext_len - _TAG_BYTES) % PAD_BLOCK:
        raise DecryptionFailed()
    ciphertext = envelope[pos : pos + ciphertext_len]
    pos += ciphertext_len
    # Then the signature, and nothing after it.
    if size - pos != _SIGNATURE_BYTES:
        raise DecryptionFailed()
    return Envelope(
        header=header,
        header_bytes=header_bytes,
        stanzas=stanzas,
        nonce=nonce,
        ciphertext=ciphertext,
        signed=envelope[:pos],
        signature=envelope[pos:],
    )


def _parse_header(header_bytes: bytes) -> NoteHeader:
    try:
        data = json_value(header_bytes.decode("utf-8"))
        if not isinstance(data, dict) or data.keys() != _HEADER_FIELDS:
            raise DecryptionFailed()
        # What NoteHeader(**data) does when every field is given, without the frozen
        # dataclass's field-by-field object.__setattr__: the same values, the same checks.
        header = object.__new__(NoteHeader)
        header.__dict__.update(data)
        header.__post_init__()
        # Only the one canonical encoding is accepted, so equal headers mean equal bytes.
        # (Inside the try: a string with an escaped lone surrogate does not encode.)
        canonical = header.canonical()
    except (ValueError, TypeError, RecursionError):
        raise DecryptionFailed() from None
    if canonical != header_bytes:
        raise DecryptionFailed()
    if header.version != ENVELOPE_VERSION or header.suite != SUITE_ID:
        raise DecryptionFailed()
    return header


def envelope_header(envelope: bytes) -> NoteHeader:
    """Parse an envelope's header without verifying anything; for diagnostics and tests."""
    return _parse(_as_bytes(envelope)).header


def parse_envelope(envelope: bytes) -> Envelope:
    """Split an envelope into its parts without verifying anything.

    For a caller that reads the header (to pick keys) and then opens: open_envelope() takes
    the parsed envelope, so the bytes are read once.
    """
    return _parse(_as_bytes(envelope))


def open_envelope(
    envelope: bytes | Envelope,
    *,
    expected: NoteHeader,
    viewer_id: int,
    viewer_keys: UserKeys,
    sender_public: PublicKeys,
) -> bytes:
    """Verify and decrypt an envelope for viewer_id; raise DecryptionFailed on any mismatch."""
    if not isinstance(expected, NoteHeader) or not isinstance(viewer_keys, UserKeys):
        raise TypeError("expected must be a NoteHeader and viewer_keys UserKeys")
    _require_int("viewer_id", viewer_id)
    parsed = envelope if isinstance(envelope, Envelope) else _parse(_as_bytes(envelope))
    try:
        sender_public._verifier.verify(parsed.signature, _SIGNATURE_CONTEXT + parsed.signed)
    except (InvalidSignature, ValueError):
        raise DecryptionFailed() from None
    header = parsed.header
    # The row's own columns must agree with what was signed, so a note cannot be moved.
    if header != expected or sender_public.key_id != header.sender_key_id:
        raise DecryptionFailed()

    if viewer_id == header.recipient_id:
        role = _ROLE_RECIPIENT
    elif viewer_id == header.sender_id and not header.sealed:
        role = _ROLE_AUTHOR
    else:
        raise DecryptionFailed()
    user_id, key_id = _stanza_target(header, role)
    info = _hpke_info(parsed.header_bytes, role, user_id, key_id)
    try:
        data_key = _suite().decrypt(parsed.stanzas[role], viewer_keys._hpke(), info=info)
        padded = ChaCha20Poly1305(data_key).decrypt(
            parsed.nonce, parsed.ciphertext, parsed.header_bytes
        )
    except (InvalidTag, ValueError):
        raise DecryptionFailed() from None
    return _unpad(padded)


# --- start-up check ---------------------------------------------------------------------


def self_test() -> None:
    """Derive once with Argon2id and round-trip HPKE; raise CryptoUnavailable if either fails."""
    hint = "install cryptography>=50 from its PyPI wheels (they bundle a suitable OpenSSL)"
    if _IMPORT_ERROR is not None:
        raise CryptoUnavailable(f"Argon2id, HPKE or ML-KEM is missing ({_IMPORT_ERROR}); {hint}.")
    try:
        Argon2id(
            salt=bytes(16), length=32, iterations=1, lanes=1, memory_cost=8192, secret=b"self-test"
        ).derive(b"self-test")
    except Exception as exc:  # any failure means this build cannot do the login KDF
        raise CryptoUnavailable(f"Argon2id is unavailable ({exc!r}); {hint}.") from exc
    try:
        keys = generate_user_keys()
        sealed = _suite().encrypt(b"self-test", _hpke_public(keys.public()), info=b"self-test")
        if _suite().decrypt(sealed, keys._hpke(), info=b"self-test") != b"self-test":
            raise ValueError("round trip returned different bytes")
    except Exception as exc:  # any failure means notes could not be sealed or opened
        raise CryptoUnavailable(
            f"HPKE with ML-KEM-768+X25519 is unavailable ({exc!r}); {hint}."
        ) from exc


# --- mutual wishes ---------------------------------------------------------------------------

WISH_TAG_BYTES = 16
WISH_ANSWERS = ("yes", "maybe", "no")


def wish_tag_key(pair_secret: bytes, *, pair_id: int) -> bytes:
    """Derive the key that makes a pair's matching tags from the secret both partners hold."""
    _require_bytes("pair_secret", pair_secret, KEY_BYTES)
    _require_int("pair_id", pair_id)
    info = _length_prefixed(b"wishnotes wish tags", bytes([1]), _int_bytes(pair_id))
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(
        pair_secret
    )


def _wish_tag(tag_key: bytes, *parts: str) -> bytes:
    message = _length_prefixed(*(part.encode("utf-8") for part in parts))
    return hmac.new(tag_key, message, hashlib.sha256).digest()[:WISH_TAG_BYTES]


def wish_tags(tag_key: bytes, *, card: str, answer: str | None, role: int) -> tuple[bytes, bytes]:
    """Return the two tags one partner stores for one card.

    `role` is 0 for the partner with the lower user id, 1 for the other. A "yes" gives the
    card's shared tag and a "talk" tag in the writer's own role; a "maybe" gives the "talk" tag
    of the other role and random bytes. So equal tags between the partners mean yes + yes
    (shared) or yes + maybe (worth talking about), and maybe + maybe matches nothing. A "no",
    or no answer, gives random bytes only: nothing in the row tells it from a "yes".
    """
    _require_bytes("tag_key", tag_key, KEY_BYTES)
    if role not in (0, 1):
        raise ValueError("role must be 0 or 1")
    if answer == "yes":
        return _wish_tag(tag_key, "shared", card), _wish_tag(tag_key, "talk", str(role), card)
    if answer == "maybe":
        talk = _wish_tag(tag_key, "talk", str(1 - role), card)
        return talk, secrets.token_bytes(WISH_TAG_BYTES)
    if answer not in (None, "no"):
        raise ValueError(f"answer must be one of {WISH_ANSWERS} or None")
    return secrets.token_bytes(WISH_TAG_BYTES), secrets.token_bytes(WISH_TAG_BYTES)


def wish_match(tag_key: bytes, *, card: str, role: int, common: frozenset[bytes]) -> str | None:
    """Return "shared", "talk" or None for one card, given the tags both partners stored."""
    if _wish_tag(tag_key, "shared", card) in common:
        return "shared"
    for side in (role, 1 - role):
        if _wish_tag(tag_key, "talk", str(side), card) in common:
            return "talk"
    return None
