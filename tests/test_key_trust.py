"""Key pins a database writer cannot reset: each attack of issue 8, through the services and pages.

The attacker here can read and write every row (a stolen admin login, an SQL injection, a
restored backup) but holds no password, cookie, recovery key or invite link.
"""

from __future__ import annotations

import base64
import json
import re

import pytest
from sqlalchemy import func, select

from wishnotes import crypto, keyring, keyring_store, notes, pairing
from wishnotes.errors import InviteKeysChanged, KeyChanged
from wishnotes.extensions import db
from wishnotes.models import Invite, Note, OutboxEmail, Pair, User

from .conftest import PASSWORD, login, now, post_form, register_user
from .test_notes import Person, make_person, pair, read, write

FORGED = "forged words"


def _forged_envelope(sender: Person, recipient: Person, signer: crypto.UserKeys) -> Note:
    """Insert a note that claims `sender` wrote it, sealed and signed by whoever holds `signer`."""
    recipient_public = keyring.public_keys(recipient.user)
    created = now().replace(microsecond=0)
    header = crypto.NoteHeader(
        note_id="e" * 32,
        pair_id=sender.user.pair_id,
        sender_id=sender.id,
        recipient_id=recipient.id,
        sender_key_id=signer.public().key_id,
        recipient_key_id=recipient_public.key_id,
        created_at=int(created.timestamp()),
        sealed=False,
    )
    note = Note(
        id=header.note_id,
        pair_id=header.pair_id,
        sender_id=sender.id,
        recipient_id=recipient.id,
        created_at=created,
        sealed=False,
        envelope=crypto.seal_envelope(
            header=header,
            body=json.dumps({"b": FORGED, "t": None}).encode(),
            sender_keys=signer,
            recipient_public=recipient_public,
            sender_public=signer.public(),
        ),
    )
    db.session.add(note)
    db.session.commit()
    return note


def _put_keys(user: User, keys: crypto.UserKeys) -> None:
    public = keys.public()
    user.hpke_public, user.sign_public, user.key_id = (
        public.hpke_public,
        public.sign_public,
        public.key_id,
    )


def _note_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Note))


@pytest.fixture
def couple(app_ctx) -> tuple[Person, Person]:
    """Ada invited Bo; both have used their keys since, so both pinned through the invite."""
    ada, bo = make_person(app_ctx, "ada"), make_person(app_ctx, "bo")
    pair(ada, bo)
    read(bo, write(ada, "a first wish"))
    return ada, bo


# --- a NULL keyring plus swapped keys ---------------------------------------------------


def test_null_keyring_and_swapped_keys_cannot_forge_a_note_from_the_partner(couple):
    ada, bo = couple
    attacker = crypto.generate_user_keys()
    bo.user.keyring = None
    _put_keys(ada.user, attacker)
    db.session.commit()
    forged = _forged_envelope(ada, bo, attacker)
    with pytest.raises(KeyChanged):
        read(bo, forged)
    assert db.session.get(User, bo.id).keyring is None  # nothing was pinned on "first use"


def test_null_keyring_and_swapped_keys_seal_no_note_to_the_attacker(couple):
    ada, bo = couple
    before = _note_count()
    ada.user.keyring = None
    _put_keys(bo.user, crypto.generate_user_keys())
    db.session.commit()
    with pytest.raises(KeyChanged):
        write(ada, "words for Bo only")
    with pytest.raises(KeyChanged):
        read(ada, notes.sent(user=ada.user)[0].id)
    assert _note_count() == before
    assert db.session.get(User, ada.id).keyring is None


def test_a_null_keyring_alone_opens_and_seals_nothing_until_numbers_are_compared(couple):
    ada, bo = couple
    note = notes.sent(user=ada.user)[0].id
    bo.user.keyring = None
    db.session.commit()
    with pytest.raises(KeyChanged):
        read(bo, note)
    safety = keyring.safety(user=bo.user, user_key=bo.key, now=now())
    assert not safety.intact and safety.pinned is None and not safety.matches
    # Honest keys: the two numbers agree, so Bo can trust Ada's key again.
    assert safety.number == keyring.safety(user=ada.user, user_key=ada.key, now=now()).number
    keyring.trust_partner(user=bo.user, user_key=bo.key, now=now())
    assert read(bo, note).text == "a first wish"
    assert keyring.unlock(user=bo.user, user_key=bo.key).current_pin(ada.user, now=now()).how == (
        "compared"
    )


# --- a keyring rolled back --------------------------------------------------------------


def test_keyring_rolled_back_to_its_registration_copy_is_detected(app_ctx):
    ada, bo = make_person(app_ctx, "ada"), make_person(app_ctx, "bo")
    registration = {ada.id: bytes(ada.user.keyring), bo.id: bytes(bo.user.keyring)}
    pair(ada, bo)
    note = write(ada, "a first wish")
    read(bo, note)
    reply = write(bo, "a reply")
    for person in (ada, bo):
        person.user.keyring = registration[person.id]
    attacker = crypto.generate_user_keys()
    _put_keys(ada.user, attacker)  # and the keys swapped, which is what the rollback is for
    db.session.commit()
    forged = _forged_envelope(ada, bo, attacker)
    with pytest.raises(KeyChanged):
        read(bo, forged)
    with pytest.raises(KeyChanged):
        write(bo, "to the impostor")
    with pytest.raises(KeyChanged):  # the inviter's registration copy holds no invite key
        read(ada, reply)
    assert _note_count() == 3
    assert not keyring.safety(user=bo.user, user_key=bo.key, now=now()).matches


def test_an_inviters_registration_copy_put_back_before_she_pins_is_detected(app_ctx):
    ada, bo = make_person(app_ctx, "ada"), make_person(app_ctx, "bo")
    registration = bytes(ada.user.keyring)
    pair(ada, bo)  # Ada has not used her keys since: her keyring holds the invite's key
    ada.user.keyring = registration
    db.session.commit()
    with pytest.raises(KeyChanged):
        write(ada, "to whoever joined")
    assert _note_count() == 0


def test_pins_name_their_pair_so_an_older_pairs_keyring_does_not_open_a_new_pair(couple):
    ada, bo = couple
    old_copy = bytes(bo.user.keyring)  # pins Ada's keys for the first pair
    pairing.unpair(user=ada.user, now=now())
    db.session.refresh(bo.user)
    pair(ada, bo)
    bo.user.keyring = old_copy
    db.session.commit()
    with pytest.raises(KeyChanged):
        write(bo, "in the new pair")
    ring = keyring.unlock(user=bo.user, user_key=bo.key)
    assert ring.current_pin(ada.user, now=now()) is None


def test_each_write_moves_the_keyring_counter_forward(app_ctx):
    ada, bo = make_person(app_ctx, "ada"), make_person(app_ctx, "bo")
    first = keyring.unlock(user=ada.user, user_key=ada.key).counter
    token = pairing.create_invite(user=ada.user, user_key=ada.key, now=now())
    second = keyring.unlock(user=ada.user, user_key=ada.key).counter
    pairing.accept_invite(user=bo.user, token=token, now=now(), user_key=bo.key)
    write(ada)
    third = keyring.unlock(user=ada.user, user_key=ada.key).counter
    assert 0 < first < second < third


# --- keys swapped between invite and acceptance -----------------------------------------


def test_inviter_keys_swapped_before_acceptance_are_detected_and_nothing_is_paired(app_ctx):
    ada, bo = make_person(app_ctx, "ada"), make_person(app_ctx, "bo")
    token = pairing.create_invite(user=ada.user, user_key=ada.key, now=now())
    _put_keys(ada.user, crypto.generate_user_keys())
    db.session.commit()
    with pytest.raises(InviteKeysChanged):
        pairing.accept_invite(user=bo.user, token=token, now=now(), user_key=bo.key)
    assert db.session.scalar(select(func.count()).select_from(Pair)) == 0
    assert db.session.get(User, bo.id).pair_id is None
    assert db.session.scalar(select(Invite.used_at)) is None


def test_inviter_mac_forged_or_removed_is_refused(app_ctx):
    ada, bo = make_person(app_ctx, "ada"), make_person(app_ctx, "bo")
    token = pairing.create_invite(user=ada.user, user_key=ada.key, now=now())
    invite = db.session.scalar(select(Invite))
    attacker = crypto.generate_user_keys()
    _put_keys(ada.user, attacker)
    # A MAC under a key the attacker can make: from the token's hash, which is all they have.
    guessed = crypto.pairing_key(invite.token_hash.hex())
    for mac in (
        crypto.inviter_mac(guessed, invite_id=invite.id, user_id=ada.id, keys=attacker.public()),
        None,
    ):
        invite.inviter_mac = mac
        db.session.commit()
        with pytest.raises(InviteKeysChanged):
            pairing.accept_invite(user=bo.user, token=token, now=now(), user_key=bo.key)


def test_joiner_keys_swapped_before_the_inviter_pins_are_detected(app_ctx):
    ada, bo = make_person(app_ctx, "ada"), make_person(app_ctx, "bo")
    pair(ada, bo)
    attacker = crypto.generate_user_keys()
    _put_keys(bo.user, attacker)
    db.session.commit()
    with pytest.raises(KeyChanged):
        write(ada, "for Bo only")
    assert _note_count() == 0
    ring = keyring.unlock(user=ada.user, user_key=ada.key)
    assert ring.current_pin(bo.user, now=now()) is None  # nothing pinned
    assert ring.pending_invite is not None  # still waiting for Bo's real keys


def test_joiner_mac_forged_for_swapped_keys_is_refused(app_ctx):
    ada, bo = make_person(app_ctx, "ada"), make_person(app_ctx, "bo")
    pair(ada, bo)
    attacker = crypto.generate_user_keys()
    _put_keys(bo.user, attacker)
    pair_row = db.session.get(Pair, ada.user.pair_id)
    invite = db.session.get(Invite, pair_row.invite_id)
    guessed = crypto.pairing_key(invite.token_hash.hex())
    pair_row.joiner_mac = crypto.joiner_mac(
        guessed, invite_id=invite.id, pair_id=pair_row.id, user_id=bo.id, keys=attacker.public()
    )
    db.session.commit()
    with pytest.raises(KeyChanged):
        write(ada, "for Bo only")
    assert _note_count() == 0


def test_honest_keys_pin_through_the_invite_and_safety_numbers_match(app_ctx):
    ada, bo = make_person(app_ctx, "ada"), make_person(app_ctx, "bo")
    pair(ada, bo)
    a = keyring.safety(user=ada.user, user_key=ada.key, now=now())  # Ada pins here
    b = keyring.safety(user=bo.user, user_key=bo.key, now=now())
    assert a.number == b.number and a.matches and b.matches and a.intact and b.intact
    assert a.pinned.how == b.pinned.how == "invite"
    assert a.pinned.pair_id == b.pinned.pair_id == ada.user.pair_id


# --- keyrings from before pins named pairs -----------------------------------------------


def _legacy_keyring(person: Person, partner: Person) -> bytes:
    """A keyring as the previous version wrote it: pins per partner, no counter, no pair."""
    public = keyring.public_keys(partner.user)
    data = {
        "v": 1,
        "pins": {
            str(partner.id): [
                {
                    "hpke": base64.b64encode(public.hpke_public).decode(),
                    "sign": base64.b64encode(public.sign_public).decode(),
                    "at": int(now().timestamp()),
                }
            ]
        },
    }
    blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return crypto.wrap(
        person.key, blob, purpose=keyring_store.PURPOSE_KEYRING, user_id=person.user.id
    )


def test_a_keyring_written_by_the_previous_version_keeps_its_pins(couple):
    ada, bo = couple
    bo.user.keyring = _legacy_keyring(bo, ada)
    db.session.commit()
    assert read(bo, notes.inbox(user=bo.user)[0].id).text == "a first wish"
    pin = keyring.unlock(user=bo.user, user_key=bo.key).current_pin(ada.user, now=now())
    assert pin.how == "earlier" and pin.pair_id == bo.user.pair_id
    _put_keys(ada.user, crypto.generate_user_keys())  # still guarded against a swap
    db.session.commit()
    with pytest.raises(KeyChanged):
        write(bo, "to the impostor")


# --- through the pages ------------------------------------------------------------------


def _couple_through_pages(app):
    register_user(app, "ada@example.com", "Ada")
    register_user(app, "bo@example.com", "Bo")
    ada, bo = app.test_client(), app.test_client()
    login(ada)
    login(bo, email="bo@example.com")
    page = post_form(ada, "/pair/invite", token_from="/pair/").get_data(as_text=True)
    path = re.search(r'value="http://wishnotes\.test(/pair/join/[^"]+)"', page).group(1)
    return ada, bo, path


def _safety(client) -> tuple[str, str]:
    page = client.get("/settings/safety-number").get_data(as_text=True)
    return re.search(r"<code>([0-9 ]+)</code>", page).group(1), page


def test_pages_honest_partners_see_the_same_number_and_it_is_trusted(app):
    ada, bo, path = _couple_through_pages(app)
    assert post_form(bo, path).status_code == 302
    (a, a_page), (b, b_page) = _safety(ada), _safety(bo)
    assert a == b
    for page in (a_page, b_page):
        assert "is the one you have trusted since" in page and "Trust this key" not in page


def test_pages_keys_swapped_before_acceptance_pair_nobody(app):
    _, bo, path = _couple_through_pages(app)
    with app.app_context():
        row = db.session.scalar(select(User).filter_by(email="ada@example.com"))
        _put_keys(row, crypto.generate_user_keys())
        db.session.commit()
    refused = post_form(bo, path)
    assert refused.status_code == 422
    assert "could not be checked against your partner" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Pair)) == 0


def test_pages_null_keyring_and_swapped_keys_show_the_warning_and_send_nothing(app):
    ada, bo, path = _couple_through_pages(app)
    post_form(bo, path)
    assert post_form(ada, "/notes/new", {"body": "a first wish"}).status_code == 302
    attacker = crypto.generate_user_keys()
    with app.app_context():
        ada_row = db.session.scalar(select(User).filter_by(email="ada@example.com"))
        bo_row = db.session.scalar(select(User).filter_by(email="bo@example.com"))
        bo_row.keyring = None
        ada_row.keyring = None
        _put_keys(ada_row, attacker)
        db.session.commit()
        forged = _forged_envelope(
            Person(user=ada_row, key=b""), Person(user=bo_row, key=b""), attacker
        ).id
        _put_keys(bo_row, crypto.generate_user_keys())
        db.session.commit()
        emails = db.session.scalar(select(func.count()).select_from(OutboxEmail))
    opened = bo.get(f"/notes/{forged}")
    assert opened.status_code == 409
    page = opened.get_data(as_text=True)
    assert "key has changed" in page and FORGED not in page
    sent = post_form(ada, "/notes/new", {"body": "for Bo only"})
    assert sent.status_code == 422 and "nothing was opened or sent" in sent.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Note)) == 2
        assert db.session.scalar(select(func.count()).select_from(OutboxEmail)) == emails
    safety = bo.get("/settings/safety-number").get_data(as_text=True)
    assert "missing, could not be read" in safety and "Trust this key" in safety


def test_pages_the_inviter_checks_the_joiners_keys_at_her_next_visit(app):
    ada, bo, path = _couple_through_pages(app)
    post_form(bo, path)
    with app.app_context():
        bo_row = db.session.scalar(select(User).filter_by(email="bo@example.com"))
        _put_keys(bo_row, crypto.generate_user_keys())
        db.session.commit()
    sent = post_form(ada, "/notes/new", {"body": "for Bo only"})
    assert sent.status_code == 422 and "key has changed" in sent.get_data(as_text=True)
    _, page = _safety(ada)
    assert "not confirmed" in page and "Trust this key" in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Note)) == 0


def test_pages_making_an_invite_with_locked_keys_asks_for_the_password(app):
    register_user(app)
    client = app.test_client()
    login(client)
    client.delete_cookie("wn_keys", domain="wishnotes.test")
    response = post_form(client, "/pair/invite", token_from="/pair/")
    assert response.status_code == 302 and "/unlock" in response.headers["Location"]
    unlocked = post_form(
        client, response.headers["Location"], {"password": PASSWORD}, token_from="/unlock"
    )
    assert unlocked.status_code == 302
    assert post_form(client, "/pair/invite", token_from="/pair/").status_code == 200


def test_pages_a_keyring_put_back_to_an_older_copy_is_caught_by_the_browsers_mark(app):
    ada, bo, path = _couple_through_pages(app)
    with app.app_context():  # Ada's keyring holding the invite's key: a copy from a backup
        older = db.session.scalar(select(User.keyring).filter_by(email="ada@example.com"))
    post_form(bo, path)
    # Ada's next use checks Bo's keys and pins them; her browser's mark moves on.
    assert post_form(ada, "/notes/new", {"body": "a first wish"}).status_code == 302
    with app.app_context():
        note_id = db.session.scalar(select(Note.id))
        db.session.scalar(select(User).filter_by(email="ada@example.com")).keyring = older
        db.session.commit()
    # The older copy would pin Bo's real keys again; it is refused all the same, as older.
    refused = ada.get(f"/notes/{note_id}")
    assert refused.status_code == 409
    page = refused.get_data(as_text=True)
    assert "older than one this device has already seen" in page and "a first wish" not in page
    sent = post_form(ada, "/notes/new", {"body": "kept words"})
    assert sent.status_code == 422 and "kept words" in sent.get_data(as_text=True)
    _, safety = _safety(ada)
    assert "put back to an" in safety and "Trust this key" in safety
    # After comparing numbers, the keyring is written past the mark and notes open again.
    trusted = post_form(
        ada, "/settings/safety-number/trust", {"confirm": "y"}, token_from="/settings/safety-number"
    )
    assert trusted.status_code == 302
    assert "a first wish" in ada.get(f"/notes/{note_id}").get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Note)) == 1
    # A browser that never saw the newer keyring cannot tell (see the README).
    fresh = app.test_client()
    login(fresh)
    assert "a first wish" in fresh.get(f"/notes/{note_id}").get_data(as_text=True)


def test_pages_a_forged_mark_cookie_is_ignored(app):
    ada, bo, path = _couple_through_pages(app)
    post_form(bo, path)
    post_form(ada, "/notes/new", {"body": "a first wish"})
    with app.app_context():
        note_id = db.session.scalar(select(Note.id))
    bo.set_cookie("wn_ring", f"{2**62}.{'A' * 43}=", domain="wishnotes.test")
    assert "a first wish" in bo.get(f"/notes/{note_id}").get_data(as_text=True)
