"""The notes service: writing, reading, answering, deleting, past pairs and pinned keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select

from wishnotes import accounts, crypto, keyring, notes, pairing, recovery
from wishnotes.errors import (
    DecryptionFailed,
    EarlierKeysLocked,
    InvalidInput,
    KeyChanged,
    NoteNotFound,
    NotPaired,
)
from wishnotes.extensions import db
from wishnotes.models import Note, Pair, User

from .conftest import PASSWORD, now


@dataclass
class Person:
    """A user with the user key their login would unlock."""

    user: User
    key: bytes

    @property
    def id(self) -> int:
        return self.user.id


def make_person(app, name: str) -> Person:
    reg = accounts.register(
        email=f"{name}@example.com",
        display_name=name.title(),
        password=PASSWORD,
        kdf=app.extensions["wishnotes.kdf"],
        now=now(),
    )
    reg.user.recovery_confirmed_at = now()
    db.session.commit()
    return Person(user=reg.user, key=reg.user_key)


def pair(first: Person, second: Person) -> Pair:
    """Pair two people through an invite, as the link would: both keys checked and pinned."""
    token = pairing.create_invite(user=first.user, user_key=first.key, now=now())
    return pairing.accept_invite(user=second.user, token=token, now=now(), user_key=second.key)


@pytest.fixture
def people(app_ctx) -> dict[str, Person]:
    """Ada and Bo are a pair, Cy and Dee another."""
    folks = {name: make_person(app_ctx, name) for name in ("ada", "bo", "cy", "dee")}
    pair(folks["ada"], folks["bo"])
    pair(folks["cy"], folks["dee"])
    return folks


def write(person: Person, text: str = "I would like a slow walk by the river.", **kw) -> Note:
    return notes.write_note(user=person.user, user_key=person.key, text=text, now=now(), **kw)


def read(person: Person, note: Note | str) -> notes.Opened:
    note_id = note if isinstance(note, str) else note.id
    return notes.open_note(user=person.user, user_key=person.key, note_id=note_id, now=now())


def swap_keys(user: User) -> crypto.UserKeys:
    """Give a user new keys, as a legitimate fresh start would (private keys under the same UK)."""
    fresh = crypto.generate_user_keys()
    public = fresh.public()
    user.hpke_public, user.sign_public, user.key_id = (
        public.hpke_public,
        public.sign_public,
        public.key_id,
    )
    return fresh


# --- writing and reading ----------------------------------------------------------------


def test_partner_opens_note_with_title_and_it_is_marked_read(people):
    ada, bo = people["ada"], people["bo"]
    note = write(ada, "Let's try breakfast in bed.\nOn Sunday?", title="  A small   wish ")
    assert note.read_at is None and note.pair_id == ada.user.pair_id
    opened = read(bo, note)
    assert opened.title == "A small wish"
    assert opened.text == "Let's try breakfast in bed.\nOn Sunday?"
    assert opened.sender.id == ada.id and not opened.viewer_is_writer
    assert db.session.get(Note, note.id).read_at is not None
    assert notes.unread_count(user=bo.user) == 0


def test_writer_reopens_own_copy_but_a_sealed_note_stays_closed_to_them(people):
    ada, bo = people["ada"], people["bo"]
    kept = write(ada, "kept copy")
    sealed = write(ada, "sealed words", sealed=True)
    assert read(ada, kept).text == "kept copy"
    mine = read(ada, sealed)
    assert mine.text is None and mine.title is None and mine.viewer_is_writer
    assert read(bo, sealed).text == "sealed words"
    # Not a choice of the page: the writer's own keys cannot open it.
    ring = keyring.unlock(user=ada.user, user_key=ada.key)
    header = crypto.envelope_header(sealed.envelope)
    with pytest.raises(DecryptionFailed):
        crypto.open_envelope(
            sealed.envelope,
            expected=header,
            viewer_id=ada.id,
            viewer_keys=ring.keys,
            sender_public=ring.own_public,
        )
    assert db.session.get(Note, sealed.id).read_at is not None  # Bo opened it, not Ada
    assert db.session.get(Note, kept.id).read_at is None  # the writer opening marks nothing


def test_note_text_and_title_are_not_stored_in_clear(people):
    ada = people["ada"]
    note = write(ada, "canary-text-4711", title="canary-title-4711")
    row = b"".join(str(v).encode() for v in vars(note).values() if not callable(v))
    assert b"canary" not in note.envelope and b"canary" not in row


def test_inbox_and_sent_list_newest_first_with_metadata_only(people, app_ctx):
    ada, bo = people["ada"], people["bo"]
    start = now()
    app_ctx.config["NOW"] = start
    first = write(ada, "first")
    app_ctx.config["NOW"] = start + timedelta(minutes=1)
    second = notes.write_note(
        user=ada.user, user_key=ada.key, text="second", now=start + timedelta(minutes=1)
    )
    rows = notes.inbox(user=bo.user)
    assert [row.id for row in rows] == [second.id, first.id]
    assert set(rows[0]._fields) == {"id", "created_at", "read_at", "sealed", "answered_at", "name"}
    assert rows[0].name == "Ada"
    assert [row.id for row in notes.sent(user=ada.user)] == [second.id, first.id]
    assert notes.inbox(user=ada.user) == [] and notes.sent(user=bo.user) == []
    assert notes.unread_count(user=bo.user) == 2


def test_inbox_pages_follow_a_cursor_newest_first(people, monkeypatch):
    ada, bo = people["ada"], people["bo"]
    monkeypatch.setattr(notes, "PAGE_SIZE", 2)
    written = [write(ada, f"note {i}") for i in range(3)]  # often within one second
    first = notes.inbox(user=bo.user)
    second = notes.inbox(user=bo.user, before=first.next_cursor)
    assert first.first and not second.first
    assert len(first) == 2 and len(second) == 1 and second.next_cursor is None
    assert {row.id for row in first + second} == {note.id for note in written}
    ordered = [(row.created_at, row.id) for row in first + second]
    assert ordered == sorted(ordered, reverse=True)
    # A cursor past the oldest note gives an empty page that knows it is not the first.
    beyond = notes._encode_cursor(second[-1])
    last = notes.inbox(user=bo.user, before=beyond)
    assert last == [] and not last.first


@pytest.mark.parametrize(
    "cursor",
    ["", "abc", "!!!!", "MTIz", "x" * 500, "OTk5OTk5OTk5OTk5OS4" + "a" * 40, "MS5aWlo", "LTEuYWJj"],
)
def test_a_malformed_cursor_gives_the_first_page(people, cursor):
    ada, bo = people["ada"], people["bo"]
    note = write(ada, "hello")
    page = notes.inbox(user=bo.user, before=cursor)
    assert [row.id for row in page] == [note.id] and page.first


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"text": ""}, "body"),
        ({"text": " \n\t "}, "body"),
        ({"text": "x" * 4001}, "body"),
        ({"text": "bad \x00 byte"}, "body"),
        ({"text": "lone \ud800 surrogate"}, "body"),
        ({"text": "fine", "title": "t" * 121}, "title"),
        ({"text": "fine", "title": "bell \x07"}, "title"),
        ({"text": "fine", "prompt_key": "Not A Slug"}, None),
        ({"text": "fine", "prompt_key": "a" * 65}, None),
    ],
)
def test_bad_note_input_is_refused_and_nothing_is_stored(people, kw, field):
    with pytest.raises(InvalidInput) as caught:
        notes.write_note(user=people["ada"].user, user_key=people["ada"].key, now=now(), **kw)
    assert caught.value.field == field
    assert db.session.scalar(select(Note.id)) is None


def test_body_limit_counts_characters_and_line_breaks_as_typed(people):
    ada, bo = people["ada"], people["bo"]
    exact = write(ada, "é" * 3998 + "\r\n!")  # CRLF from a browser is one character
    assert read(bo, exact).text == "é" * 3998 + "\n!"
    emoji = write(ada, "🫶 " * 10, title="🫶", prompt_key="first-touch")
    assert read(bo, emoji).title == "🫶" and emoji.prompt_key == "first-touch"


def test_writing_needs_a_partner(app_ctx):
    alone = make_person(app_ctx, "solo")
    with pytest.raises(NotPaired):
        write(alone)


# --- answers ----------------------------------------------------------------------------


def test_reader_answers_both_see_it_and_can_change_it(people):
    ada, bo = people["ada"], people["bo"]
    note = write(ada)
    notes.answer_note(user=bo.user, user_key=bo.key, note_id=note.id, choice="later", now=now())
    assert read(ada, note).answer == "later" and read(bo, note).answer == "later"
    assert b"later" not in note.answer_envelope
    header = crypto.envelope_header(note.answer_envelope)
    assert (header.kind, header.sender_id, header.recipient_id) == ("answer", bo.id, ada.id)
    notes.answer_note(user=bo.user, user_key=bo.key, note_id=note.id, choice="yes", now=now())
    assert read(ada, note).answer == "yes"


def test_answering_a_sealed_note_reaches_its_writer(people):
    ada, bo = people["ada"], people["bo"]
    note = write(ada, sealed=True)
    notes.answer_note(user=bo.user, user_key=bo.key, note_id=note.id, choice="talk", now=now())
    seen = read(ada, note)
    assert seen.text is None and seen.answer == "talk"


def test_only_the_reader_answers_and_only_with_a_known_choice(people):
    ada, bo, cy = people["ada"], people["bo"], people["cy"]
    note = write(ada)
    with pytest.raises(NoteNotFound):
        notes.answer_note(user=ada.user, user_key=ada.key, note_id=note.id, choice="yes", now=now())
    with pytest.raises(NoteNotFound):
        notes.answer_note(user=cy.user, user_key=cy.key, note_id=note.id, choice="yes", now=now())
    with pytest.raises(InvalidInput):
        notes.answer_note(user=bo.user, user_key=bo.key, note_id=note.id, choice="no", now=now())
    assert db.session.get(Note, note.id).answer_envelope is None


# --- access and deletion ----------------------------------------------------------------


def test_a_third_user_reaches_nothing_and_their_keys_open_nothing(people):
    ada, cy = people["ada"], people["cy"]
    note = write(ada)
    with pytest.raises(NoteNotFound):
        read(cy, note)
    ring = keyring.unlock(user=cy.user, user_key=cy.key)
    for viewer_id in (cy.id, note.recipient_id):  # even claiming to be Bo
        with pytest.raises(DecryptionFailed):
            crypto.open_envelope(
                note.envelope,
                expected=crypto.envelope_header(note.envelope),
                viewer_id=viewer_id,
                viewer_keys=ring.keys,
                sender_public=keyring.public_keys(ada.user),
            )


@pytest.mark.parametrize("note_id", ["", "x", "../etc", "A" * 32, "0" * 31, "0" * 5000, None])
def test_malformed_note_ids_are_not_found(people, note_id):
    with pytest.raises(NoteNotFound):
        notes.open_note(
            user=people["bo"].user, user_key=people["bo"].key, note_id=note_id, now=now()
        )


def test_writer_deletes_a_note_for_both_and_the_reader_cannot(people):
    ada, bo = people["ada"], people["bo"]
    note = write(ada)
    with pytest.raises(NoteNotFound):
        notes.delete_note(user=bo.user, note_id=note.id)
    notes.delete_note(user=ada.user, note_id=note.id)
    assert db.session.get(Note, note.id) is None
    with pytest.raises(NoteNotFound):
        read(bo, note.id)


# --- ended pairs ------------------------------------------------------------------------


def test_unpairing_keeps_or_deletes_each_writers_notes_by_their_choice(people):
    ada, bo = people["ada"], people["bo"]
    from_ada, from_bo = write(ada, "from ada").id, write(bo, "from bo").id
    ids = ada.id, bo.id
    pairing.unpair(user=ada.user, now=now(), delete_my_notes=True)
    db.session.expunge_all()  # rows were deleted in SQL; forget the objects loaded before
    ada.user, bo.user = (db.session.get(User, i) for i in ids)
    assert db.session.get(Note, from_ada) is None
    assert db.session.get(Note, from_bo) is not None
    # The ended pair's notes leave the inbox but stay in the past notes of both.
    assert notes.inbox(user=ada.user) == [] and notes.unread_count(user=ada.user) == 0
    with pytest.raises(NoteNotFound):
        read(ada, from_bo)
    assert [row.id for row in notes.past(user=ada.user).received] == [from_bo]
    assert [row.id for row in notes.past(user=bo.user).written] == [from_bo]
    opened = notes.open_past_note(user=ada.user, user_key=ada.key, note_id=from_bo, now=now())
    assert opened.text == "from bo"
    # Bo decides later, for the notes Bo wrote.
    assert notes.delete_past_written(user=bo.user) == 1
    assert notes.past(user=ada.user).received == []


def test_past_notes_of_a_current_pair_are_not_past(people):
    ada, bo, cy = people["ada"], people["bo"], people["cy"]
    note = write(ada)
    with pytest.raises(NoteNotFound):
        notes.open_past_note(user=bo.user, user_key=bo.key, note_id=note.id, now=now())
    assert notes.delete_past_written(user=ada.user) == 0
    pairing.unpair(user=cy.user, now=now())
    with pytest.raises(NoteNotFound):
        notes.open_past_note(user=cy.user, user_key=cy.key, note_id=note.id, now=now())


def test_pairing_again_does_not_revive_notes_of_the_old_pair(people):
    ada, bo = people["ada"], people["bo"]
    old = write(ada)
    pairing.unpair(user=ada.user, now=now())
    db.session.refresh(bo.user)
    pair(ada, bo)
    assert notes.inbox(user=bo.user) == []
    with pytest.raises(NoteNotFound):
        read(bo, old)


# --- pinned keys ------------------------------------------------------------------------


def test_joiner_pins_at_acceptance_and_inviter_pins_checked_keys_at_next_use(people):
    ada, bo = people["ada"], people["bo"]  # Ada invited, Bo accepted with keys unlocked
    bo_pin = keyring.unlock(user=bo.user, user_key=bo.key).current_pin(ada.user, now=now())
    assert bo_pin.keys == keyring.public_keys(ada.user)
    assert (bo_pin.pair_id, bo_pin.partner_id, bo_pin.how) == (bo.user.pair_id, ada.id, "invite")
    waiting = keyring.unlock(user=ada.user, user_key=ada.key)
    assert waiting.intact and waiting.pending_invite is not None
    assert waiting.pending_invite.invite_id == db.session.get(Pair, ada.user.pair_id).invite_id
    write(ada)  # Ada's next use of her keys checks Bo's MAC and pins his keys
    ada_ring = keyring.unlock(user=ada.user, user_key=ada.key)
    ada_pin = ada_ring.current_pin(bo.user, now=now())
    assert ada_pin.keys == keyring.public_keys(bo.user) and ada_pin.how == "invite"
    assert ada_pin.pair_id == ada.user.pair_id and ada_ring.pending_invite is None
    assert b"example.com" not in ada.user.keyring and bo.user.hpke_public not in ada.user.keyring


def test_a_key_swapped_in_the_database_stops_opening_and_writing(people):
    ada, bo = people["ada"], people["bo"]
    note = write(ada)
    swap_keys(ada.user)  # as an attacker with write access would, to read Bo's next notes
    db.session.commit()
    with pytest.raises(KeyChanged):
        read(bo, note)
    with pytest.raises(KeyChanged):
        write(bo, "for the impostor")
    assert notes.sent(user=bo.user) == []


def test_after_comparing_numbers_a_new_key_is_trusted_and_old_notes_still_verify(people):
    ada, bo = people["ada"], people["bo"]
    old = write(ada, "before the fresh start")
    fresh = swap_keys(ada.user)
    ada.user.private_keys = crypto.wrap(
        ada.key, crypto.serialize_private(fresh), purpose="private-keys", user_id=ada.id
    )
    db.session.commit()
    before = keyring.safety(user=bo.user, user_key=bo.key, now=now())
    assert not before.matches
    keyring.trust_partner(user=bo.user, user_key=bo.key, now=now())
    after = keyring.safety(user=bo.user, user_key=bo.key, now=now())
    assert after.matches
    assert after.number == keyring.safety(user=ada.user, user_key=ada.key, now=now()).number
    assert read(bo, old).text == "before the fresh start"  # signed by the earlier pinned key
    assert read(bo, write(ada, "after")).text == "after"


def test_both_partners_see_the_same_safety_number_until_a_key_is_swapped(people):
    ada, bo = people["ada"], people["bo"]
    a = keyring.safety(user=ada.user, user_key=ada.key, now=now())
    b = keyring.safety(user=bo.user, user_key=bo.key, now=now())
    assert a.number == b.number and a.matches and b.matches
    assert len(a.number.split()) == 5
    swap_keys(bo.user)
    db.session.commit()
    swapped = keyring.safety(user=ada.user, user_key=ada.key, now=now())
    assert swapped.number != a.number and not swapped.matches
    with pytest.raises(NotPaired):
        keyring.safety(user=make_person_unpaired(ada).user, user_key=ada.key, now=now())


def make_person_unpaired(person: Person) -> Person:
    pairing.unpair(user=person.user, now=now())
    return person


def test_a_tampered_keyring_is_refused_not_replaced(people):
    ada, bo = people["ada"], people["bo"]
    note = write(ada)
    blob = bytearray(bo.user.keyring)
    blob[-1] ^= 1
    bo.user.keyring = bytes(blob)
    db.session.commit()
    with pytest.raises(KeyChanged):
        read(bo, note)
    with pytest.raises(KeyChanged):
        write(bo, "to nobody trusted")
    assert db.session.get(User, bo.id).keyring == bytes(blob)


def test_notes_of_the_keys_before_a_fresh_start_reopen_once_those_keys_are_restored(
    people, app_ctx
):
    ada, bo = people["ada"], people["bo"]
    kdf = app_ctx.extensions["wishnotes.kdf"]
    to_ada, from_ada = write(bo, "to the old keys").id, write(ada, "from the old keys").id
    _, token = recovery.request_reset(email="ada@example.com", now=now())
    db.session.commit()
    fresh = recovery.reset_with_fresh_keys(
        token=token, new_password="a brand new evening walk", understood=True, kdf=kdf, now=now()
    )
    ada = Person(user=fresh.user, key=fresh.user_key)
    with pytest.raises(EarlierKeysLocked):
        read(ada, from_ada)
    # Ada's new keyring trusts nobody yet: she compares numbers before Bo's notes open again.
    with pytest.raises(KeyChanged):
        read(ada, to_ada)
    with pytest.raises(KeyChanged):
        write(ada, "too soon")
    assert keyring.safety(user=ada.user, user_key=ada.key, now=now()).pinned is None
    # Bo is warned about Ada's new key until the two compare safety numbers.
    with pytest.raises(KeyChanged):
        read(bo, from_ada)
    keyring.trust_partner(user=bo.user, user_key=bo.key, now=now())
    assert read(bo, from_ada).text == "from the old keys"
    keyring.trust_partner(user=ada.user, user_key=ada.key, now=now())
    with pytest.raises(EarlierKeysLocked):
        read(ada, to_ada)
    recovery.restore_retired(user=ada.user, user_key=ada.key, secret=PASSWORD, kdf=kdf, now=now())
    assert read(ada, to_ada).text == "to the old keys"
    assert read(ada, from_ada).text == "from the old keys"
    assert read(bo, write(ada, "with the new keys")).text == "with the new keys"


def test_past_notes_verify_against_any_earlier_pin_as_nobody_is_left_to_compare_with(people):
    ada, bo = people["ada"], people["bo"]
    note = write(ada, "from the ended pair").id
    read(bo, note)  # Bo's keyring has Ada's keys
    pairing.unpair(user=ada.user, now=now())
    swap_keys(ada.user)  # Ada starts again with new keys after the pair ended
    db.session.commit()
    opened = notes.open_past_note(user=bo.user, user_key=bo.key, note_id=note, now=now())
    assert opened.text == "from the ended pair"
    with pytest.raises(NotPaired):  # and nobody left to compare safety numbers with
        keyring.safety(user=bo.user, user_key=bo.key, now=now())
