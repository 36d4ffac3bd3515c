"""Settings that need the password or the keys: password change, deletion, safety numbers."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from wishnotes import accounts, crypto, keyring
from wishnotes.extensions import db
from wishnotes.models import Invite, KeySession, Note, Pair, User

from .conftest import PASSWORD, login, pair_users, post_form, register_user

NEW_PASSWORD = "seven swans over the bay"
WISH = "I would like an evening with no phones."


def notes_table_digest(app) -> str:
    """Hash every column of every row of the notes table, in a fixed order."""
    digest = hashlib.sha256()
    with app.app_context():
        for row in db.session.execute(sa.text("SELECT * FROM notes ORDER BY id")):
            for value in row:
                digest.update(value if isinstance(value, bytes) else repr(value).encode())
                digest.update(b"\x00")
    return digest.hexdigest()


def user_row(app, email: str) -> User | None:
    with app.app_context():
        user = db.session.scalar(select(User).filter_by(email=email))
        if user is not None:
            db.session.expunge(user)
        return user


@pytest.fixture
def couple(app):
    ada_id, ada_recovery = register_user(app, "ada@example.com", "Ada")
    bo_id, _ = register_user(app, "bo@example.com", "Bo")
    pair_users(app, ada_id, bo_id)
    ada, bo = app.test_client(), app.test_client()
    login(ada)
    login(bo, email="bo@example.com")
    post_form(ada, "/notes/new", {"body": WISH})
    post_form(bo, "/notes/new", {"body": "Let's try a picnic.", "sealed": "y"})
    with app.app_context():
        from_bo = db.session.scalar(select(Note.id).filter_by(sender_id=bo_id))
    post_form(ada, f"/notes/{from_bo}/answer", {"choice": "talk"}, token_from=f"/notes/{from_bo}")
    return ada, bo, ada_recovery


# --- change password --------------------------------------------------------------------


def test_password_change_rewraps_only_the_user_key_and_notes_stay_byte_identical(app, couple):
    ada, _, recovery_key = couple
    other_device = app.test_client()
    login(other_device, remember="y")
    before_notes = notes_table_digest(app)
    before = user_row(app, "ada@example.com")

    response = post_form(
        ada,
        "/settings/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 302 and response.headers["Location"] == "/settings/"

    assert notes_table_digest(app) == before_notes
    after = user_row(app, "ada@example.com")
    for unchanged in ("uk_by_recovery", "private_keys", "keyring", "hpke_public", "sign_public"):
        assert getattr(after, unchanged) == getattr(before, unchanged), unchanged
    assert after.uk_by_password != before.uk_by_password and after.kdf_salt != before.kdf_salt
    # This browser stays signed in and unlocked; the other device is signed out, keys and all.
    with app.app_context():
        note_id = db.session.scalar(select(Note.id).filter_by(sender_id=after.id))
        assert db.session.query(KeySession).filter_by(user_id=after.id).count() == 1
    assert WISH in ada.get(f"/notes/{note_id}").get_data(as_text=True)
    assert other_device.get("/settings/").status_code == 302
    # Only the new password signs in; the recovery key still opens the same user key.
    assert login(app.test_client()).status_code == 422
    assert login(app.test_client(), password=NEW_PASSWORD).status_code == 302
    kek = crypto.recovery_kek(recovery_key, user_id=after.id, pepper=app.config["PEPPER_BYTES"])
    crypto.unwrap(kek, after.uk_by_recovery, purpose=accounts.PURPOSE_UK_RECOVERY, user_id=after.id)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"current_password": "not my password", "new_password": NEW_PASSWORD}, "does not match"),
        ({"current_password": PASSWORD, "new_password": "short"}, "at least 10"),
        ({"current_password": PASSWORD, "new_password": "password123"}, "too easy to guess"),
        ({"current_password": "", "new_password": NEW_PASSWORD}, "current password"),
    ],
)
def test_password_change_refuses_a_wrong_current_or_weak_new_password(app, couple, data, message):
    ada, _, _ = couple
    before = user_row(app, "ada@example.com")
    response = post_form(ada, "/settings/password", data)
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    after = user_row(app, "ada@example.com")
    assert after.uk_by_password == before.uk_by_password


def test_password_page_uses_the_right_autocomplete(app, couple):
    page = couple[0].get("/settings/password").get_data(as_text=True)
    assert 'autocomplete="current-password"' in page and 'autocomplete="new-password"' in page
    assert page.count("<label") >= 2


# --- delete account ---------------------------------------------------------------------


def test_deleting_needs_the_password_and_the_box_ticked(app, couple):
    ada, _, _ = couple
    unticked = post_form(ada, "/settings/delete", {"password": PASSWORD})
    assert unticked.status_code == 422 and "tick the box" in unticked.get_data(as_text=True)
    wrong = post_form(ada, "/settings/delete", {"password": "nope nope nope", "confirm": "y"})
    assert wrong.status_code == 422 and "does not match" in wrong.get_data(as_text=True)
    assert user_row(app, "ada@example.com") is not None


def test_deleting_the_account_takes_keys_sessions_notes_and_ends_the_pair(app, couple):
    ada, bo, _ = couple
    ada_id = user_row(app, "ada@example.com").id
    response = post_form(ada, "/settings/delete", {"password": PASSWORD, "confirm": "y"})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    cleared = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("wn_keys=")]
    assert cleared and "Expires=Thu, 01 Jan 1970" in cleared[0]
    with app.app_context():
        assert db.session.get(User, ada_id) is None
        assert db.session.query(KeySession).filter_by(user_id=ada_id).count() == 0
        assert db.session.query(Note).count() == 0  # written and received alike
        pair = db.session.scalars(select(Pair)).one()
        assert pair.ended_at is not None
        assert db.session.scalar(select(User.pair_id).filter_by(email="bo@example.com")) is None
    assert ada.get("/settings/").status_code == 302
    assert login(app.test_client()).status_code == 422
    home = bo.get("/").get_data(as_text=True)
    assert "Your pair has ended" in home


def test_deleting_an_unpaired_account_takes_its_invites(app):
    user_id, _ = register_user(app, "cy@example.com", "Cy")
    client = app.test_client()
    login(client, email="cy@example.com")
    post_form(client, "/pair/invite", token_from="/pair/")
    with app.app_context():
        assert db.session.query(Invite).count() == 1
    post_form(client, "/settings/delete", {"password": PASSWORD, "confirm": "y"})
    with app.app_context():
        assert db.session.query(Invite).count() == 0
        assert db.session.get(User, user_id) is None


def test_a_new_account_does_not_inherit_an_old_pairs_ending(app, couple):
    # SQLite may hand a deleted user's id to the next account; the ended pair is not theirs.
    ada, bo, _ = couple
    post_form(bo, "/settings/delete", {"password": PASSWORD, "confirm": "y"})
    register_user(app, "eve@example.com", "Eve")
    eve = app.test_client()
    login(eve, email="eve@example.com")
    assert "Your pair has ended" not in eve.get("/").get_data(as_text=True)
    assert "Your pair has ended" in ada.get("/").get_data(as_text=True)


# --- safety number ----------------------------------------------------------------------


def _number(client) -> str:
    import re

    page = client.get("/settings/safety-number").get_data(as_text=True)
    return re.search(r"<code>([0-9 ]+)</code>", page).group(1)


def test_both_partners_see_the_same_safety_number(app, couple):
    ada, bo, _ = couple
    assert _number(ada) == _number(bo)
    assert len(_number(ada).split()) == 5


def test_a_swapped_key_shows_a_clear_warning_until_the_new_key_is_trusted(app, couple):
    ada, bo, _ = couple
    with app.app_context():
        ada_row = db.session.scalar(select(User).filter_by(email="ada@example.com"))
        note_id = db.session.scalar(select(Note.id).filter_by(sender_id=ada_row.id))
        fresh = crypto.generate_user_keys().public()
        ada_row.hpke_public, ada_row.sign_public = fresh.hpke_public, fresh.sign_public
        db.session.commit()
    opened = bo.get(f"/notes/{note_id}")
    assert opened.status_code == 409
    page = opened.get_data(as_text=True)
    assert "key has changed" in page and "/settings/safety-number" in page and WISH not in page
    compose = post_form(bo, "/notes/new", {"body": "kept words"})
    assert compose.status_code == 422
    assert "kept words" in compose.get_data(as_text=True)
    assert "key has changed" in compose.get_data(as_text=True)
    safety = bo.get("/settings/safety-number").get_data(as_text=True)
    assert "has changed since you trusted it" in safety
    assert _number(bo) != _number(ada)
    unticked = post_form(
        bo, "/settings/safety-number/trust", {}, token_from="/settings/safety-number"
    )
    assert unticked.status_code == 422
    trusted = post_form(
        bo, "/settings/safety-number/trust", {"confirm": "y"}, token_from="/settings/safety-number"
    )
    assert trusted.status_code == 302
    assert "has changed" not in bo.get("/settings/safety-number").get_data(as_text=True)
    # Notes signed with the key trusted before still verify against that earlier pin.
    assert WISH in bo.get(f"/notes/{note_id}").get_data(as_text=True)


def test_safety_number_needs_a_partner_and_unlocked_keys(app):
    register_user(app)
    client = app.test_client()
    login(client)
    assert client.get("/settings/safety-number").headers["Location"] == "/pair/"
    with app.app_context():
        db.session.query(KeySession).delete()
        db.session.commit()
    assert "/unlock" in client.get("/settings/safety-number").headers["Location"]


def test_pins_live_encrypted_in_the_keyring(app, couple):
    with app.app_context():
        bo = db.session.scalar(select(User).filter_by(email="bo@example.com"))
        ada = db.session.scalar(select(User).filter_by(email="ada@example.com"))
        assert bo.keyring is not None and ada.keyring is not None
        assert ada.sign_public not in bo.keyring and ada.hpke_public[:64] not in bo.keyring
        with pytest.raises(Exception, match="could not be opened"):
            crypto.unwrap(bytes(32), bo.keyring, purpose=keyring.PURPOSE_KEYRING, user_id=bo.id)
