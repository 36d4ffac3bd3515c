"""The shortcuts on the open and send paths give exactly what the plain version gives.

The header is written out field by field instead of through json.dumps, the envelope is split
with offsets instead of a reader object, and pins are decoded once per process: each is checked
here against the straightforward way, including on input made to break it.
"""

import dataclasses
import hashlib
import json
import struct
import threading
from datetime import UTC, datetime

import pytest

from wishnotes import crypto, keyring_store
from wishnotes.errors import DecryptionFailed

KEY_ID = "0123456789abcdef"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def header(**changes) -> crypto.NoteHeader:
    base = crypto.NoteHeader(
        note_id="0f8e2d4c6b1a49d3a5e7c9b1d3f5a7c9",
        pair_id=7,
        sender_id=41,
        recipient_id=42,
        sender_key_id=KEY_ID,
        recipient_key_id="fedcba9876543210",
        created_at=1767225600,
        sealed=False,
    )
    return dataclasses.replace(base, **changes)


def plain_json(value: crypto.NoteHeader) -> bytes:
    text = json.dumps(
        dataclasses.asdict(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return text.encode("utf-8")


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"sealed": True},
        {"kind": "place-turn"},
        {"note_id": 'quote " backslash \\ slash / tab \t newline \n nul \x00 del \x7f'},
        {"note_id": "ünïcödé ключ 🙂 \u2028 \u2029 \ufeff"},
        {"pair_id": 0, "sender_id": -1, "recipient_id": 2**70, "created_at": -(2**40)},
        {"version": 2, "suite": "other"},
    ],
)
def test_canonical_header_is_byte_for_byte_what_json_dumps_gives(changes):
    value = header(**changes)
    assert value.canonical() == plain_json(value)


def test_every_header_field_is_in_the_canonical_form():
    # A field added to NoteHeader must be added to canonical() too.
    assert set(json.loads(header().canonical())) == {f.name for f in dataclasses.fields(header())}


def _with_header(header_bytes: bytes) -> bytes:
    return b"WNEV\x01" + struct.pack(">I", len(header_bytes)) + header_bytes


def test_a_header_with_an_escaped_lone_surrogate_is_a_failed_open():
    text = plain_json(header()).decode().replace("0f8e2d4c", "\\ud800")
    with pytest.raises(DecryptionFailed):
        crypto.parse_envelope(_with_header(text.encode()))


@pytest.fixture(scope="module")
def envelope() -> bytes:
    sender, recipient = crypto.generate_user_keys(), crypto.generate_user_keys()
    value = header(sender_key_id=sender.public().key_id, recipient_key_id=recipient.public().key_id)
    return crypto.seal_envelope(
        header=value,
        body=b"hi",
        sender_keys=sender,
        recipient_public=recipient.public(),
        sender_public=sender.public(),
    )


def _length_fields(envelope: bytes) -> list[int]:
    """Offsets of the u32 length fields: header, both stanzas, ciphertext."""
    (header_len,) = struct.unpack_from(">I", envelope, 5)
    offsets = [5]
    pos = 9 + header_len + 1
    for _ in range(2):
        offsets.append(pos + 1)
        pos += 5 + struct.unpack_from(">I", envelope, pos + 1)[0]
    offsets.append(pos + 12)
    return offsets


def test_parse_reads_what_seal_wrote(envelope):
    parsed = crypto.parse_envelope(envelope)
    assert parsed.signed + parsed.signature == envelope
    assert len(parsed.signature) == 64 and len(parsed.nonce) == 12
    assert set(parsed.stanzas) == {1, 2}
    assert parsed.header.canonical() == parsed.header_bytes


def test_parse_fails_cleanly_on_every_truncation_and_extension(envelope):
    for length in range(len(envelope)):
        with pytest.raises(DecryptionFailed):
            crypto.parse_envelope(envelope[:length])
    with pytest.raises(DecryptionFailed):
        crypto.parse_envelope(envelope + b"\x00")


@pytest.mark.parametrize("delta", [-1, 1, 2**31, -(2**31)])
def test_parse_fails_cleanly_on_every_wrong_length_field(envelope, delta):
    for offset in _length_fields(envelope):
        (value,) = struct.unpack_from(">I", envelope, offset)
        changed = bytearray(envelope)
        struct.pack_into(">I", changed, offset, (value + delta) % 2**32)
        with pytest.raises(DecryptionFailed):
            crypto.parse_envelope(bytes(changed))


def _keyring(pins: list[dict]) -> tuple[bytes, bytes]:
    user_key = crypto.new_key()
    data = {"v": 2, "n": 1, "pins": pins, "invite": None}
    blob = crypto.wrap(
        user_key, json.dumps(data).encode(), purpose=keyring_store.PURPOSE_KEYRING, user_id=5
    )
    return blob, user_key


def _pin(keys: crypto.PublicKeys, **changes) -> dict:
    entry = {
        "pair": 3,
        "user": 6,
        "hpke": keyring_store._b64(keys.hpke_public),
        "sign": keyring_store._b64(keys.sign_public),
        "at": 1767225600,
        "how": "compared",
    }
    return {**entry, **changes}


def test_pins_decode_to_the_same_public_keys_every_time():
    keys = crypto.generate_user_keys().public()
    blob, user_key = _keyring([_pin(keys)])
    opened = [
        keyring_store.open_blob(blob, user_key=user_key, user_id=5, legacy_pair=lambda: None)
        for _ in range(2)
    ]
    assert opened[0].pins[0].keys == keys and opened[0].pins[0].keys is opened[1].pins[0].keys


@pytest.mark.parametrize(
    "changes",
    [
        {"hpke": "not base64!"},
        {"sign": "QUJD"},  # base64, but not 32 bytes
        {"hpke": 12},
        {"sign": ["QUJD"]},
        {"hpke": None},
    ],
)
def test_a_malformed_pin_still_makes_the_keyring_unreadable(changes):
    keys = crypto.generate_user_keys().public()
    blob, user_key = _keyring([_pin(keys, **changes)])
    for _ in range(2):  # and the failure is not remembered as a success
        with pytest.raises(DecryptionFailed):
            keyring_store.open_blob(blob, user_key=user_key, user_id=5, legacy_pair=lambda: None)


@pytest.mark.parametrize(
    "value",
    [
        {"b": 'ünï "quoted" \\ \n 🙂', "t": None},
        {"v": 2, "n": 1767225600123, "pins": [{"at": 1, "how": "invite"}], "invite": None},
        [1, 2.5, True, False, None, "x"],
        "text",
        0,
    ],
)
def test_json_value_reads_what_json_dumps_wrote(value):
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False, separators=(",", ":"))):
        assert crypto.json_value(text) == json.loads(text) == value


@pytest.mark.parametrize("text", ["", " {}", "{} ", "{}\n", "{}{}", '{"a":1} x', "{", "nul"])
def test_json_value_refuses_anything_around_or_after_the_value(text):
    with pytest.raises(ValueError):
        crypto.json_value(text)


def test_once_keeps_the_value_per_instance_and_lets_two_instances_compute_at_the_same_time():
    both_inside = threading.Barrier(2, timeout=5)
    calls = []

    class Keys:
        @crypto.once
        def value(self):
            calls.append(self)
            both_inside.wait()  # functools.cached_property on 3.11 would hold one lock here
            return object()

    first, second = Keys(), Keys()
    thread = threading.Thread(target=lambda: second.value)
    thread.start()
    value = first.value
    thread.join(timeout=5)
    assert not thread.is_alive() and len(calls) == 2
    assert first.value is value and second.value is not value and len(calls) == 2


@pytest.mark.parametrize(("role", "user_id"), [(1, 42), (2, 7), (1, 0), (2, 10**12)])
def test_hpke_info_is_the_length_prefixed_parts(role, user_id):
    header_bytes = header().canonical()
    assert crypto._hpke_info(header_bytes, role, user_id, KEY_ID) == crypto._length_prefixed(
        b"wishnotes/envelope-key/v1",
        hashlib.sha256(header_bytes).digest(),
        {1: b"recipient", 2: b"author"}[role],
        str(user_id).encode(),
        KEY_ID.encode(),
    )
