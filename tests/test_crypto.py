"""Tests for wishnotes.crypto: they prove the properties of DESIGN.md section 4."""

import dataclasses
import json
import re
import struct
from pathlib import Path

import pytest

from wishnotes import crypto
from wishnotes.errors import CryptoUnavailable, DecryptionFailed

FAST_KDF = crypto.KDF_FLOOR  # the cheapest parameters the module accepts
PEPPER = b"test-pepper-not-secret"
SALT = bytes(range(16))
PASSWORD = "correct horse battery"
GOLDEN = Path(__file__).parent / "golden" / "envelope_v1.json"

SENDER_ID, RECIPIENT_ID, OUTSIDER_ID = 41, 42, 99


# --- helpers ----------------------------------------------------------------------------


@dataclasses.dataclass
class Layout:
    """An envelope split by an independent reading of the documented byte format."""

    header_bytes: bytes
    stanzas: list[tuple[int, bytes]]
    nonce: bytes
    ciphertext: bytes
    signature: bytes


def split_envelope(envelope: bytes) -> Layout:
    """Split an envelope: magic, version, header, stanzas, nonce, ciphertext, signature."""
    assert envelope[:4] == b"WNEV" and envelope[4] == 1
    pos = 5
    (header_len,) = struct.unpack_from(">I", envelope, pos)
    header_bytes = envelope[pos + 4 : pos + 4 + header_len]
    pos += 4 + header_len
    count = envelope[pos]
    pos += 1
    stanzas = []
    for _ in range(count):
        role = envelope[pos]
        (size,) = struct.unpack_from(">I", envelope, pos + 1)
        stanzas.append((role, envelope[pos + 5 : pos + 5 + size]))
        pos += 5 + size
    nonce = envelope[pos : pos + 12]
    (ct_len,) = struct.unpack_from(">I", envelope, pos + 12)
    ciphertext = envelope[pos + 16 : pos + 16 + ct_len]
    pos += 16 + ct_len
    assert len(envelope) == pos + 64
    return Layout(header_bytes, stanzas, nonce, ciphertext, envelope[pos:])


def assemble(
    layout: Layout, signer: crypto.UserKeys, *, version: int = 1, count: int | None = None
) -> bytes:
    """Rebuild an envelope from parts and sign it with signer, as a forger with that key could."""
    count = len(layout.stanzas) if count is None else count
    parts = [b"WNEV", bytes([version]), struct.pack(">I", len(layout.header_bytes))]
    parts += [layout.header_bytes, bytes([count])]
    for role, blob in layout.stanzas:
        parts += [bytes([role]), struct.pack(">I", len(blob)), blob]
    parts += [layout.nonce, struct.pack(">I", len(layout.ciphertext)), layout.ciphertext]
    unsigned = b"".join(parts)
    return unsigned + crypto._sign_envelope(signer.sign_private, unsigned)


@pytest.fixture(scope="module")
def sender() -> crypto.UserKeys:
    return crypto.generate_user_keys()


@pytest.fixture(scope="module")
def recipient() -> crypto.UserKeys:
    return crypto.generate_user_keys()


@pytest.fixture(scope="module")
def outsider() -> crypto.UserKeys:
    return crypto.generate_user_keys()


def make_header(
    sender: crypto.UserKeys, recipient: crypto.UserKeys, **changes
) -> crypto.NoteHeader:
    header = crypto.NoteHeader(
        note_id="0f8e2d4c6b1a49d3a5e7c9b1d3f5a7c9",
        pair_id=7,
        sender_id=SENDER_ID,
        recipient_id=RECIPIENT_ID,
        sender_key_id=sender.public().key_id,
        recipient_key_id=recipient.public().key_id,
        created_at=1767225600,
        sealed=False,
    )
    return dataclasses.replace(header, **changes)


def seal(sender, recipient, body=b"I would like a slow Sunday morning.", **changes) -> bytes:
    return crypto.seal_envelope(
        header=make_header(sender, recipient, **changes),
        body=body,
        sender_keys=sender,
        recipient_public=recipient.public(),
        sender_public=sender.public(),
    )


def open_as(envelope, sender, viewer_keys, *, viewer_id, expected=None, sender_public=None):
    return crypto.open_envelope(
        envelope,
        expected=expected or crypto.envelope_header(envelope),
        viewer_id=viewer_id,
        viewer_keys=viewer_keys,
        sender_public=sender_public or sender.public(),
    )


# --- login keys -------------------------------------------------------------------------


def derive(password=PASSWORD, *, salt=SALT, params=FAST_KDF, pepper=PEPPER):
    return crypto.derive_login_keys(password, salt=salt, params=params, pepper=pepper)


def test_login_keys_are_deterministic_for_the_same_inputs():
    assert derive() == derive()


def test_login_keys_split_into_two_different_32_byte_values():
    auth_value, kek = derive()
    assert len(auth_value) == len(kek) == 32
    assert auth_value != kek


@pytest.mark.parametrize(
    "change",
    [
        {"password": "correct horse batterY"},
        {"salt": bytes(range(1, 17))},
        {"pepper": b"another-pepper"},
    ],
    ids=["password", "salt", "pepper"],
)
def test_login_keys_change_with_password_salt_or_pepper(change):
    auth_value, kek = derive(**change)
    base_auth, base_kek = derive()
    assert auth_value != base_auth
    assert kek != base_kek


def test_password_is_nfkc_normalised_so_a_ligature_matches_plain_letters():
    assert derive("\ufb01sh and chips") == derive("fish and chips")


def test_login_keys_match_golden_values_so_stored_accounts_keep_working():
    auth_value, kek = derive("correct horse \ufb01sh", salt=SALT, pepper=b"golden-pepper")
    assert auth_value.hex() == "d48c5c0f49a2bd1dcb2169f3891ef98f4a7e2006ed2c178c54349314b78cfb3c"
    assert kek.hex() == "3785c7f3ffbf47a2574d4fa5bed351fcdb42bf621191354ca3ef3f9fdfb43c6a"


def test_default_kdf_params_derive_keys_and_differ_from_the_floor():
    assert crypto.KdfParams(memory_kib=65536, iterations=3, lanes=1) == crypto.DEFAULT_KDF
    keys = derive(params=crypto.DEFAULT_KDF)
    assert len(keys[0]) == 32
    assert keys != derive(params=crypto.KDF_FLOOR)


@pytest.mark.parametrize(
    "params",
    [
        crypto.KdfParams(memory_kib=19455, iterations=2, lanes=1),
        crypto.KdfParams(memory_kib=65536, iterations=1, lanes=1),
        crypto.KdfParams(memory_kib=65536, iterations=3, lanes=0),
    ],
)
def test_kdf_params_below_the_floor_are_rejected(params):
    assert not crypto.kdf_params_ok(params)
    with pytest.raises(ValueError):
        derive(params=params)


def test_kdf_params_at_the_floor_and_default_are_accepted():
    assert crypto.kdf_params_ok(crypto.KDF_FLOOR)
    assert crypto.kdf_params_ok(crypto.DEFAULT_KDF)


def test_empty_pepper_is_rejected_because_it_would_silently_mean_no_pepper():
    with pytest.raises(ValueError):
        derive(pepper=b"")


def test_new_salt_is_16_fresh_bytes():
    salts = {crypto.new_salt() for _ in range(100)}
    assert len(salts) == 100
    assert all(len(salt) == 16 for salt in salts)


def test_auth_matches_only_the_value_whose_digest_is_stored():
    auth_value, kek = derive()
    stored = crypto.auth_digest(auth_value)
    assert stored != auth_value
    assert crypto.auth_matches(auth_value, stored)
    assert not crypto.auth_matches(kek, stored)
    assert not crypto.auth_matches(derive("wrong password")[0], stored)


# --- recovery key -----------------------------------------------------------------------


def test_recovery_key_is_printed_as_8_groups_of_4_base32_characters():
    key = crypto.new_recovery_key()
    text = crypto.format_recovery_key(key)
    assert len(key) == crypto.RECOVERY_KEY_BYTES == 20
    assert re.fullmatch(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){7}", text)
    assert crypto.recovery_key_groups(key) == text.split("-")
    assert crypto.parse_recovery_key(text) == key


def test_recovery_key_format_is_rfc4648_base32():
    assert crypto.format_recovery_key(bytes(range(20))) == "AAAQ-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQT"


@pytest.mark.parametrize(
    "typed",
    [
        "aaaq-eaye-auda-ocaj-bifq-ydio-b4ib-ceqt",
        "AAAQ EAYE AUDA OCAJ BIFQ YDIO B4IB CEQT",
        "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT",
        "  aaaq eaye\nauda-ocaj  bifq-ydio b4ib ceqt \n",
        "AAAQ\u2013EAYE\u2013AUDA\u2013OCAJ\u2013BIFQ\u2013YDIO\u2013B4IB\u2013CEQT",
        "\uff21\uff21\uff21\uff31-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQT",  # full-width letters
        "AAAQ-EAYE-AUDA-0CAJ-81FQ-YD10-B4I8-CEQT",  # 0 for O, 1 for I, 8 for B
    ],
)
def test_recovery_key_parsing_forgives_case_spacing_and_look_alike_digits(typed):
    assert crypto.parse_recovery_key(typed) == bytes(range(20))


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "AAAQ-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQ",
        "AAAQ-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQTA",
        "AAAQ-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQ9",
        "AAAQ-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQ=",
        "AAAQ-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQ\u00e9",
    ],
)
def test_malformed_recovery_key_raises_a_clear_error_without_echoing_it(typed):
    with pytest.raises(ValueError, match="recovery key") as caught:
        crypto.parse_recovery_key(typed)
    assert "AUDA" not in str(caught.value)


def test_recovery_kek_is_bound_to_user_and_pepper():
    key = bytes(range(20))
    kek = crypto.recovery_kek(key, user_id=42, pepper=b"golden-pepper")
    assert kek.hex() == "2780b02da2641052377fb7f14edffb3d3c8bedef91f1389e56adb71a6629d6ac"
    assert kek != crypto.recovery_kek(key, user_id=43, pepper=b"golden-pepper")
    assert kek != crypto.recovery_kek(key, user_id=42, pepper=b"other-pepper")
    assert kek != crypto.recovery_kek(
        crypto.new_recovery_key(), user_id=42, pepper=b"golden-pepper"
    )


# --- wrap / unwrap ----------------------------------------------------------------------

WRAP_KEY = bytes(range(32))


def test_wrap_round_trips_and_uses_a_fresh_nonce_each_time():
    blob = crypto.wrap(WRAP_KEY, b"user key", purpose="private-keys", user_id=42)
    again = crypto.wrap(WRAP_KEY, b"user key", purpose="private-keys", user_id=42)
    assert blob != again
    assert blob[0] == 1 and len(blob) == 1 + 12 + len(b"user key") + 16
    assert crypto.unwrap(WRAP_KEY, blob, purpose="private-keys", user_id=42) == b"user key"
    assert crypto.unwrap(WRAP_KEY, memoryview(blob), purpose="private-keys", user_id=42)


def test_golden_wrapped_blob_still_unwraps():
    blob = bytes.fromhex(
        "01d70b17292d6a6f34945c51e84abb50d0782e97b4b3584d5690e83069e635a95937fafbd030be7266a89f24048f23"
    )
    assert (
        crypto.unwrap(WRAP_KEY, blob, purpose="private-keys", user_id=42) == b"user key goes here"
    )


@pytest.mark.parametrize(
    "key, purpose, user_id",
    [
        (crypto.new_key(), "private-keys", 42),
        (WRAP_KEY, "session", 42),
        (WRAP_KEY, "private-keys", 43),
        (WRAP_KEY[:31], "private-keys", 42),
    ],
    ids=["wrong-key", "wrong-purpose", "wrong-user", "short-key"],
)
def test_unwrap_with_wrong_key_purpose_or_user_fails(key, purpose, user_id):
    blob = crypto.wrap(WRAP_KEY, b"user key", purpose="private-keys", user_id=42)
    with pytest.raises(DecryptionFailed):
        crypto.unwrap(key, blob, purpose=purpose, user_id=user_id)


def test_unwrap_rejects_every_flipped_byte_and_every_truncation():
    blob = crypto.wrap(WRAP_KEY, b"user key", purpose="private-keys", user_id=42)
    for i in range(len(blob)):
        tampered = bytearray(blob)
        tampered[i] ^= 0x01
        with pytest.raises(DecryptionFailed):
            crypto.unwrap(WRAP_KEY, bytes(tampered), purpose="private-keys", user_id=42)
    for length in range(len(blob)):
        with pytest.raises(DecryptionFailed):
            crypto.unwrap(WRAP_KEY, blob[:length], purpose="private-keys", user_id=42)


def test_decryption_failed_message_is_generic():
    with pytest.raises(DecryptionFailed) as caught:
        crypto.unwrap(WRAP_KEY, b"\x02" + bytes(40), purpose="private-keys", user_id=42)
    assert str(caught.value) == DecryptionFailed.message


# --- user keys --------------------------------------------------------------------------


def test_private_keys_serialize_round_trip_through_wrap(sender):
    uk = crypto.new_key()
    blob = crypto.wrap(uk, crypto.serialize_private(sender), purpose="private-keys", user_id=1)
    restored = crypto.deserialize_private(
        crypto.unwrap(uk, blob, purpose="private-keys", user_id=1)
    )
    assert restored == sender
    assert restored.public() == sender.public()


@pytest.mark.parametrize("cut", [1, 5, 130])
def test_deserialize_private_rejects_malformed_bytes(sender, cut):
    with pytest.raises(ValueError):
        crypto.deserialize_private(crypto.serialize_private(sender)[:-cut])
    with pytest.raises(ValueError):
        crypto.deserialize_private(b"XXXXX" + crypto.serialize_private(sender)[5:])


def test_public_keys_have_expected_sizes_and_a_16_hex_key_id(sender, recipient):
    public = sender.public()
    assert len(public.hpke_public) == 1216 and len(public.sign_public) == 32
    assert re.fullmatch(r"[0-9a-f]{16}", public.key_id)
    assert public.key_id != recipient.public().key_id


def test_user_keys_repr_hides_the_private_bytes(sender):
    for text in (repr(sender), str(sender), repr([sender])):
        assert sender.hpke_private.hex()[:16] not in text
        assert sender.sign_private.hex()[:16] not in text
        assert repr(sender.sign_private)[2:12] not in text
        assert "secret" in text


def test_safety_number_is_the_same_for_both_partners_and_changes_with_a_key(
    sender, recipient, outsider
):
    mine = crypto.safety_number(sender.public(), recipient.public())
    assert mine == crypto.safety_number(recipient.public(), sender.public())
    assert re.fullmatch(r"\d{5}( \d{5}){4}", mine)
    assert mine != crypto.safety_number(sender.public(), outsider.public())


# --- envelopes: who can open ------------------------------------------------------------


def test_recipient_and_author_both_open_a_note(sender, recipient):
    envelope = seal(sender, recipient, body=b"Let's try cooking together.")
    opened_by_recipient = open_as(envelope, sender, recipient, viewer_id=RECIPIENT_ID)
    opened_by_author = open_as(envelope, sender, sender, viewer_id=SENDER_ID)
    assert opened_by_recipient == opened_by_author == b"Let's try cooking together."


def test_sealed_note_opens_for_recipient_but_not_for_its_author(sender, recipient):
    envelope = seal(sender, recipient, sealed=True)
    assert len(split_envelope(envelope).stanzas) == 1
    assert open_as(envelope, sender, recipient, viewer_id=RECIPIENT_ID)
    with pytest.raises(DecryptionFailed):
        open_as(envelope, sender, sender, viewer_id=SENDER_ID)


@pytest.mark.parametrize("viewer_id", [OUTSIDER_ID, RECIPIENT_ID, SENDER_ID])
def test_third_user_cannot_open_a_pairs_note_even_claiming_a_members_id(
    sender, recipient, outsider, viewer_id
):
    envelope = seal(sender, recipient)
    with pytest.raises(DecryptionFailed):
        open_as(envelope, sender, outsider, viewer_id=viewer_id)


def test_answer_kind_round_trips(sender, recipient):
    envelope = seal(
        recipient,
        sender,
        body=b"Yes, gladly.",
        kind="answer",
        sender_id=RECIPIENT_ID,
        recipient_id=SENDER_ID,
        sender_key_id=recipient.public().key_id,
        recipient_key_id=sender.public().key_id,
    )
    assert crypto.envelope_header(envelope).kind == "answer"
    assert open_as(envelope, recipient, sender, viewer_id=SENDER_ID) == b"Yes, gladly."


# --- envelopes: tampering ---------------------------------------------------------------


def test_flipping_any_byte_of_an_envelope_is_rejected(sender, recipient):
    envelope = seal(sender, recipient, body=b"hi")
    expected = make_header(sender, recipient)
    for i in range(len(envelope)):
        tampered = bytearray(envelope)
        tampered[i] ^= 0x01
        with pytest.raises(DecryptionFailed):
            open_as(bytes(tampered), sender, recipient, viewer_id=RECIPIENT_ID, expected=expected)


def test_flipping_any_byte_is_rejected_even_when_re_signed_with_the_senders_key(sender, recipient):
    # Proves the header, stanza and ciphertext bindings hold on their own, not only the signature.
    envelope = seal(sender, recipient, body=b"hi")
    expected = make_header(sender, recipient)
    unsigned = envelope[:-64]
    (_, recipient_stanza), (_, author_stanza) = split_envelope(envelope).stanzas
    stanza_ranges = {
        viewer_id: range(envelope.index(blob), envelope.index(blob) + len(blob))
        for viewer_id, blob in ((SENDER_ID, author_stanza), (RECIPIENT_ID, recipient_stanza))
    }
    for i in range(len(unsigned)):
        tampered = bytearray(unsigned)
        tampered[i] ^= 0x01
        resigned = bytes(tampered) + crypto._sign_envelope(sender.sign_private, bytes(tampered))
        for viewer_id, viewer in ((RECIPIENT_ID, recipient), (SENDER_ID, sender)):
            other_id = SENDER_ID if viewer_id == RECIPIENT_ID else RECIPIENT_ID
            if i in stanza_ranges[other_id]:
                continue  # only the other viewer's sealed copy of the data key changed
            with pytest.raises(DecryptionFailed):
                open_as(resigned, sender, viewer, viewer_id=viewer_id, expected=expected)


def test_truncated_unsigned_or_extended_envelopes_are_rejected(sender, recipient):
    envelope = seal(sender, recipient, body=b"hi")
    expected = make_header(sender, recipient)
    for length in range(len(envelope)):
        with pytest.raises(DecryptionFailed):
            open_as(envelope[:length], sender, recipient, viewer_id=RECIPIENT_ID, expected=expected)
    with pytest.raises(DecryptionFailed):
        open_as(envelope + b"\x00", sender, recipient, viewer_id=RECIPIENT_ID, expected=expected)


HEADER_EDITS = [
    {"note_id": "1f8e2d4c6b1a49d3a5e7c9b1d3f5a7c9"},
    {"pair_id": 8},
    {"sender_id": 40},
    {"recipient_id": 43},
    {"sender_key_id": "0123456789abcdef"},
    {"recipient_key_id": "0123456789abcdef"},
    {"created_at": 1767225601},
    {"sealed": True},
    {"kind": "answer"},
    {"version": 2},
    {"suite": "X25519/HKDF_SHA256/CHACHA20_POLY1305"},
]


def test_header_edit_cases_cover_every_header_field():
    edited = {name for change in HEADER_EDITS for name in change}
    assert edited == {field.name for field in dataclasses.fields(crypto.NoteHeader)}


@pytest.mark.parametrize("change", HEADER_EDITS, ids=lambda change: next(iter(change)))
def test_each_header_field_must_match_the_row_exactly(sender, recipient, change):
    envelope = seal(sender, recipient)
    expected = make_header(sender, recipient, **change)
    with pytest.raises(DecryptionFailed):
        open_as(envelope, sender, recipient, viewer_id=RECIPIENT_ID, expected=expected)


@pytest.mark.parametrize("change", [{"note_id": "another-row"}, {"pair_id": 99}])
def test_envelope_moved_to_another_row_or_pair_is_rejected(sender, recipient, change):
    envelope = seal(sender, recipient)
    moved_to = make_header(sender, recipient, **change)
    with pytest.raises(DecryptionFailed):
        open_as(envelope, sender, recipient, viewer_id=RECIPIENT_ID, expected=moved_to)


def test_reordered_stanzas_are_rejected_even_when_re_signed(sender, recipient):
    layout = split_envelope(seal(sender, recipient))
    assert [role for role, _ in layout.stanzas] == [1, 2]
    layout.stanzas.reverse()
    for envelope in (assemble(layout, sender), assemble(layout, recipient)):
        with pytest.raises(DecryptionFailed):
            open_as(envelope, sender, recipient, viewer_id=RECIPIENT_ID)


def test_swapped_recipient_and_author_stanzas_do_not_decrypt_even_when_re_signed(sender, recipient):
    original = seal(sender, recipient)
    layout = split_envelope(original)
    (_, for_recipient), (_, for_author) = layout.stanzas
    layout.stanzas = [(1, for_author), (2, for_recipient)]
    unsigned_swap = bytearray(original)
    unsigned_swap[original.index(for_recipient) : original.index(for_recipient) + 1168] = for_author
    with pytest.raises(DecryptionFailed):
        open_as(bytes(unsigned_swap), sender, recipient, viewer_id=RECIPIENT_ID)
    # Even a holder of the signing key cannot make one role's copy serve the other.
    swapped = assemble(layout, sender)
    with pytest.raises(DecryptionFailed):
        open_as(swapped, sender, recipient, viewer_id=RECIPIENT_ID)
    with pytest.raises(DecryptionFailed):
        open_as(swapped, sender, sender, viewer_id=SENDER_ID)


def test_header_rewritten_and_re_signed_with_the_senders_key_still_fails_to_decrypt(
    sender, recipient
):
    layout = split_envelope(seal(sender, recipient))
    moved = make_header(sender, recipient, pair_id=99)
    layout.header_bytes = moved.canonical()
    with pytest.raises(DecryptionFailed):
        open_as(assemble(layout, sender), sender, recipient, viewer_id=RECIPIENT_ID, expected=moved)


def test_ciphertext_changed_and_re_signed_with_the_senders_key_fails_to_decrypt(sender, recipient):
    layout = split_envelope(seal(sender, recipient))
    layout.ciphertext = bytes([layout.ciphertext[0] ^ 1]) + layout.ciphertext[1:]
    with pytest.raises(DecryptionFailed):
        open_as(assemble(layout, sender), sender, recipient, viewer_id=RECIPIENT_ID)


def test_reassembling_an_untouched_envelope_opens_so_the_forgery_tests_are_meaningful(
    sender, recipient
):
    envelope = seal(sender, recipient, body=b"control")
    assert assemble(split_envelope(envelope), sender) == envelope
    assert open_as(envelope, sender, recipient, viewer_id=RECIPIENT_ID) == b"control"


@pytest.mark.parametrize(
    "header_json",
    [
        b'{"created_at": 1}',  # not canonical, and missing fields
        b"[]",
        b"\xff",
    ],
)
def test_non_canonical_or_malformed_header_is_rejected_even_when_signed(
    sender, recipient, header_json
):
    layout = split_envelope(seal(sender, recipient))
    layout.header_bytes = header_json
    with pytest.raises(DecryptionFailed):
        crypto.envelope_header(assemble(layout, sender))


def test_header_with_whitespace_is_rejected_even_when_signed(sender, recipient):
    layout = split_envelope(seal(sender, recipient))
    spaced = json.dumps(json.loads(layout.header_bytes), sort_keys=True).encode()
    layout.header_bytes = spaced
    with pytest.raises(DecryptionFailed):
        crypto.envelope_header(assemble(layout, sender))
    with pytest.raises(DecryptionFailed):
        open_as(
            assemble(layout, sender),
            sender,
            recipient,
            viewer_id=RECIPIENT_ID,
            expected=make_header(sender, recipient),
        )


def test_unknown_envelope_version_is_rejected_even_when_signed(sender, recipient):
    envelope = assemble(split_envelope(seal(sender, recipient)), sender, version=2)
    with pytest.raises(DecryptionFailed):
        open_as(
            envelope,
            sender,
            recipient,
            viewer_id=RECIPIENT_ID,
            expected=make_header(sender, recipient),
        )


def test_duplicated_recipient_stanza_is_rejected_even_when_signed(sender, recipient):
    layout = split_envelope(seal(sender, recipient))
    layout.stanzas = [layout.stanzas[0], layout.stanzas[0]]
    with pytest.raises(DecryptionFailed):
        open_as(
            assemble(layout, sender),
            sender,
            recipient,
            viewer_id=RECIPIENT_ID,
            expected=make_header(sender, recipient),
        )


@pytest.mark.parametrize("count", [0, 1, 3, 255])
def test_stanza_count_that_disagrees_with_the_stanzas_is_rejected_even_when_signed(
    sender, recipient, count
):
    layout = split_envelope(seal(sender, recipient))
    with pytest.raises(DecryptionFailed):
        crypto.envelope_header(assemble(layout, sender, count=count))


def test_unsealed_header_with_only_the_recipient_stanza_is_rejected(sender, recipient):
    layout = split_envelope(seal(sender, recipient))
    layout.stanzas = layout.stanzas[:1]
    with pytest.raises(DecryptionFailed):
        crypto.envelope_header(assemble(layout, sender))


def test_sealed_note_cannot_gain_an_author_stanza(sender, recipient):
    layout = split_envelope(seal(sender, recipient, sealed=True))
    layout.stanzas.append(split_envelope(seal(sender, recipient)).stanzas[1])
    envelope = assemble(layout, sender)
    with pytest.raises(DecryptionFailed):
        crypto.envelope_header(envelope)
    with pytest.raises(DecryptionFailed):
        open_as(
            envelope,
            sender,
            sender,
            viewer_id=SENDER_ID,
            expected=make_header(sender, recipient, sealed=True),
        )


def test_signature_by_another_key_is_rejected(sender, recipient, outsider):
    envelope = seal(sender, recipient)
    forged = assemble(split_envelope(envelope), outsider)
    assert forged != envelope
    with pytest.raises(DecryptionFailed):
        open_as(forged, sender, recipient, viewer_id=RECIPIENT_ID)


def test_row_forged_by_a_database_writer_with_own_keys_is_rejected(sender, recipient, outsider):
    # The forger seals a real-looking note with their own keys, claiming to be the sender.
    forged = seal(outsider, recipient, body=b"forged")
    genuine = make_header(sender, recipient)
    with pytest.raises(DecryptionFailed):
        open_as(forged, sender, recipient, viewer_id=RECIPIENT_ID, expected=genuine)
    layout = split_envelope(forged)
    layout.header_bytes = genuine.canonical()
    with pytest.raises(DecryptionFailed):
        open_as(
            assemble(layout, outsider), sender, recipient, viewer_id=RECIPIENT_ID, expected=genuine
        )


def test_opening_with_a_sender_public_key_other_than_the_header_names_is_rejected(
    sender, recipient
):
    envelope = seal(sender, recipient)
    with pytest.raises(DecryptionFailed):
        open_as(
            envelope,
            sender,
            recipient,
            viewer_id=RECIPIENT_ID,
            sender_public=crypto.PublicKeys(
                recipient.public().hpke_public, sender.public().sign_public
            ),
        )


def test_envelope_header_rejects_garbage():
    for garbage in (b"", b"WNEV", b"\x00" * 100):
        with pytest.raises(DecryptionFailed):
            crypto.envelope_header(garbage)


# --- envelopes: sealing rules -----------------------------------------------------------


def test_sealing_refuses_key_ids_that_do_not_match_the_public_keys(sender, recipient, outsider):
    with pytest.raises(ValueError):
        seal(sender, recipient, recipient_key_id=outsider.public().key_id)
    with pytest.raises(ValueError):
        seal(sender, recipient, sender_key_id=outsider.public().key_id)


def test_sealing_refuses_sender_keys_that_do_not_match_sender_public(sender, recipient, outsider):
    with pytest.raises(ValueError):
        crypto.seal_envelope(
            header=make_header(sender, recipient),
            body=b"x",
            sender_keys=outsider,
            recipient_public=recipient.public(),
            sender_public=sender.public(),
        )


def test_sealing_refuses_a_text_body(sender, recipient):
    with pytest.raises(TypeError):
        seal(sender, recipient, body="not bytes")


@pytest.mark.parametrize(
    "change", [{"pair_id": True}, {"kind": "gossip"}, {"sender_key_id": "XYZ"}, {"note_id": ""}]
)
def test_note_header_rejects_malformed_fields(sender, recipient, change):
    with pytest.raises((TypeError, ValueError)):
        make_header(sender, recipient, **change)


def test_header_canonical_form_is_sorted_compact_json(sender, recipient):
    canonical = make_header(sender, recipient).canonical()
    data = json.loads(canonical)
    assert list(data) == sorted(data)
    assert b" " not in canonical and data["suite"] == crypto.SUITE_ID and data["version"] == 1


def test_bodies_are_padded_to_multiples_of_256_bytes(sender, recipient):
    short = seal(sender, recipient, body=b"a")
    longer = seal(sender, recipient, body=b"b" * 249)
    assert len(short) == len(longer)
    assert len(split_envelope(short).ciphertext) == 256 + 16
    for size in (0, 252, 253, 1000):
        envelope = seal(sender, recipient, body=b"z" * size)
        padded = len(split_envelope(envelope).ciphertext) - 16
        assert padded % crypto.PAD_BLOCK == 0 and padded >= size + 4
        assert open_as(envelope, sender, recipient, viewer_id=RECIPIENT_ID) == b"z" * size
    assert len(split_envelope(seal(sender, recipient, body=b"z" * 253)).ciphertext) == 512 + 16


def test_padding_must_be_zero_bytes(sender, recipient, monkeypatch):
    real_pad = crypto._pad
    monkeypatch.setattr(crypto, "_pad", lambda body: real_pad(body)[:-1] + b"\x01")
    envelope = seal(sender, recipient, body=b"hi")
    with pytest.raises(DecryptionFailed):
        open_as(envelope, sender, recipient, viewer_id=RECIPIENT_ID)


def test_padding_length_prefix_beyond_the_block_is_rejected(sender, recipient, monkeypatch):
    monkeypatch.setattr(crypto, "_pad", lambda body: struct.pack(">I", 253) + bytes(252))
    envelope = seal(sender, recipient, body=b"hi")
    with pytest.raises(DecryptionFailed):
        open_as(envelope, sender, recipient, viewer_id=RECIPIENT_ID)


def test_ten_thousand_seals_never_reuse_a_data_key_nonce_or_hpke_enc(
    sender, recipient, monkeypatch
):
    data_keys = []

    def recording_new_key() -> bytes:
        data_keys.append(crypto.secrets.token_bytes(32))
        return data_keys[-1]

    monkeypatch.setattr(crypto, "new_key", recording_new_key)
    header = make_header(sender, recipient)
    sender_public, recipient_public = sender.public(), recipient.public()
    envelopes = [
        crypto.seal_envelope(
            header=header,
            body=b"x",
            sender_keys=sender,
            recipient_public=recipient_public,
            sender_public=sender_public,
        )
        for _ in range(10_000)
    ]
    layouts = [split_envelope(envelope) for envelope in envelopes]
    assert len(set(data_keys)) == 10_000
    assert len({layout.nonce for layout in layouts}) == 10_000
    assert len({blob[:1120] for layout in layouts for _, blob in layout.stanzas}) == 20_000
    # The recorded keys are the ones really sealed: recover a sample from the recipient stanzas.
    info = crypto._hpke_info(header.canonical(), 1, RECIPIENT_ID, header.recipient_key_id)
    for layout, data_key in list(zip(layouts, data_keys, strict=True))[:300]:
        sealed_key = layout.stanzas[0][1]
        assert crypto._suite().decrypt(sealed_key, recipient._hpke(), info=info) == data_key


# --- golden vector and start-up check ---------------------------------------------------


def test_golden_envelope_still_opens():
    golden = json.loads(GOLDEN.read_text())
    sender = crypto.deserialize_private(bytes.fromhex(golden["sender_private"]))
    recipient = crypto.deserialize_private(bytes.fromhex(golden["recipient_private"]))
    envelope = bytes.fromhex(golden["envelope"])
    expected = crypto.NoteHeader(**golden["header"])
    plaintext = bytes.fromhex(golden["plaintext"])
    assert sender.public().key_id == golden["sender_key_id"] == expected.sender_key_id
    assert recipient.public().key_id == golden["recipient_key_id"] == expected.recipient_key_id
    assert crypto.safety_number(sender.public(), recipient.public()) == golden["safety_number"]
    assert crypto.envelope_header(envelope) == expected
    for viewer_id, viewer in ((expected.recipient_id, recipient), (expected.sender_id, sender)):
        opened = crypto.open_envelope(
            envelope,
            expected=expected,
            viewer_id=viewer_id,
            viewer_keys=viewer,
            sender_public=sender.public(),
        )
        assert opened == plaintext


def test_self_test_passes_with_the_installed_library():
    crypto.self_test()


def test_self_test_reports_missing_argon2id(monkeypatch):
    def unsupported(**kwargs):
        raise RuntimeError("no argon2 here")

    monkeypatch.setattr(crypto, "Argon2id", unsupported)
    with pytest.raises(CryptoUnavailable, match=r"Argon2id.*cryptography>=50 from its PyPI wheels"):
        crypto.self_test()


def test_self_test_reports_missing_hpke(monkeypatch):
    def unsupported():
        raise RuntimeError("no ML-KEM here")

    monkeypatch.setattr(crypto, "_suite", unsupported)
    with pytest.raises(
        CryptoUnavailable, match=r"ML-KEM-768.*cryptography>=50 from its PyPI wheels"
    ):
        crypto.self_test()
