"""Invites and pairs, through the service and through the pages."""

import hashlib
import re
from datetime import timedelta

import pytest
from flask import current_app

from wishnotes import accounts, pairing
from wishnotes.errors import (
    AlreadyPaired,
    InviteExpired,
    InviteInvalid,
    InviteRevoked,
    InviterPaired,
    InviteUsed,
    NotPaired,
    SelfInvite,
)
from wishnotes.extensions import db
from wishnotes.models import Invite, Pair, User

from .conftest import PASSWORD, login, now, pair_users, post_form, register_user


@pytest.fixture
def three(app):
    ids = [register_user(app, f"{n}@example.com", n.title())[0] for n in ("ada", "bo", "cy")]
    with app.app_context():
        yield [db.session.get(User, i) for i in ids]


def user_key(user: User) -> bytes:
    kdf = current_app.extensions["wishnotes.kdf"]
    return accounts.authenticate(email=user.email, password=PASSWORD, kdf=kdf).user_key


def make_invite(user: User, *, now) -> str:
    return pairing.create_invite(user=user, user_key=user_key(user), now=now)


def accept(user: User, *, token: str, now) -> Pair:
    return pairing.accept_invite(user=user, token=token, now=now, user_key=user_key(user))


def test_invite_token_is_long_random_and_stored_only_as_hash(app, three):
    ada = three[0]
    token = make_invite(ada, now=now())
    assert len(token) >= 32  # 192 random bits, URL-safe
    invite = db.session.query(Invite).one()
    assert invite.token_hash == hashlib.sha256(token.encode()).digest()
    assert token.encode() not in b"".join(
        str(v).encode() for v in vars(invite).values() if not callable(v)
    )
    assert invite.expires_at - invite.created_at == timedelta(hours=48)


def test_accepting_forms_a_pair_of_exactly_two(app, three):
    ada, bo, _ = three
    token = make_invite(ada, now=now())
    pair = accept(bo, token=token, now=now())
    assert ada.pair_id == bo.pair_id == pair.id
    assert pairing.partner_of(ada).id == bo.id and pairing.partner_of(bo).id == ada.id
    assert db.session.query(User).filter_by(pair_id=pair.id).count() == 2


def test_an_invite_works_once(app, three):
    ada, bo, cy = three
    token = make_invite(ada, now=now())
    accept(bo, token=token, now=now())
    with pytest.raises(InviteUsed):
        accept(cy, token=token, now=now())


def test_expired_invite_is_refused(app, three):
    ada, bo, _ = three
    token = make_invite(ada, now=now() - timedelta(hours=49))
    with pytest.raises(InviteExpired):
        accept(bo, token=token, now=now())


def test_revoked_and_replaced_invites_are_refused(app, three):
    ada, bo, _ = three
    first = make_invite(ada, now=now())
    second = make_invite(ada, now=now())  # one live invite per user
    with pytest.raises(InviteRevoked):
        accept(bo, token=first, now=now())
    assert pairing.revoke_invite(user=ada, now=now())
    with pytest.raises(InviteRevoked):
        accept(bo, token=second, now=now())
    assert pairing.live_invite(user=ada, now=now()) is None


def test_self_invite_unknown_token_and_paired_users_are_refused(app, three):
    ada, bo, cy = three
    token = make_invite(ada, now=now())
    with pytest.raises(SelfInvite):
        accept(ada, token=token, now=now())
    with pytest.raises(InviteInvalid):
        accept(bo, token="not-a-token", now=now())
    with pytest.raises(InviteInvalid):
        accept(bo, token="x" * 5000, now=now())
    accept(bo, token=token, now=now())
    with pytest.raises(AlreadyPaired):
        make_invite(ada, now=now())
    cy_token = make_invite(cy, now=now())
    with pytest.raises(AlreadyPaired):
        accept(bo, token=cy_token, now=now())


def test_joining_someone_else_withdraws_ones_own_invite(app, three):
    ada, bo, cy = three
    token = make_invite(ada, now=now())
    bo_token = make_invite(bo, now=now())
    accept(ada, token=bo_token, now=now())
    with pytest.raises(InviteRevoked):
        accept(cy, token=token, now=now())


def test_invite_of_someone_paired_in_a_race_is_refused(app, three):
    ada, bo, cy = three
    token = make_invite(ada, now=now())
    other = make_invite(bo, now=now())
    accept(cy, token=other, now=now())
    ada.pair_id = bo.pair_id  # as if a second accept had landed between the checks
    db.session.commit()
    with pytest.raises(InviterPaired):
        pairing.find_invite(token=token, now=now())


def test_unpair_frees_both_and_a_new_pair_can_form(app, three):
    ada, bo, cy = three
    token = make_invite(ada, now=now())
    old = accept(bo, token=token, now=now())
    pairing.unpair(user=bo, now=now())
    db.session.refresh(ada)
    assert ada.pair_id is None and bo.pair_id is None
    assert db.session.get(Pair, old.id).ended_at is not None
    with pytest.raises(NotPaired):
        pairing.unpair(user=bo, now=now())
    token = make_invite(ada, now=now())
    new = accept(cy, token=token, now=now())
    assert new.id != old.id and ada.pair_id == new.id


# --- through the pages ----------------------------------------------------------------


def _invite_link(client) -> str:
    page = post_form(client, "/pair/invite", token_from="/pair/").get_data(as_text=True)
    return re.search(r'value="(http://wishnotes\.test/pair/join/[^"]+)"', page).group(1)


def test_partner_joins_through_the_link_after_registering(app):
    register_user(app, "ada@example.com", "Ada")
    ada = app.test_client()
    login(ada)
    link = _invite_link(ada)
    path = link.removeprefix("http://wishnotes.test")

    bo = app.test_client()
    landing = bo.get(path)
    assert landing.status_code == 200 and "Ada" in landing.get_data(as_text=True)
    register_user(app, "bo@example.com", "Bo")
    login(bo, email="bo@example.com")
    accepted = post_form(bo, path)
    assert accepted.status_code == 302
    assert "paired with Ada" in bo.get("/").get_data(as_text=True)
    assert "paired with <strong>Bo" in ada.get("/pair/").get_data(as_text=True)
    # Replaying the link now fails clearly.
    replay = app.test_client().get(path)
    assert replay.status_code == 404
    assert "already been used" in replay.get_data(as_text=True)


def test_own_link_and_already_paired_get_clear_messages(app):
    register_user(app, "ada@example.com", "Ada")
    ada = app.test_client()
    login(ada)
    path = _invite_link(ada).removeprefix("http://wishnotes.test")
    own = ada.get(path)
    assert own.status_code == 409 and "your own invite" in own.get_data(as_text=True)

    bo_id, _ = register_user(app, "bo@example.com", "Bo")
    cy_id, _ = register_user(app, "cy@example.com", "Cy")
    pair_users(app, bo_id, cy_id)
    bo = app.test_client()
    login(bo, email="bo@example.com")
    paired = bo.get(path)
    assert paired.status_code == 409 and "already paired" in paired.get_data(as_text=True)


def test_accepting_needs_csrf(app):
    register_user(app, "ada@example.com", "Ada")
    register_user(app, "bo@example.com", "Bo")
    ada = app.test_client()
    login(ada)
    path = _invite_link(ada).removeprefix("http://wishnotes.test")
    bo = app.test_client()
    login(bo, email="bo@example.com")
    assert bo.post(path).status_code == 400
    with app.app_context():
        assert db.session.query(Pair).count() == 0


def test_unpair_needs_confirmation(app):
    ada_id, _ = register_user(app, "ada@example.com", "Ada")
    bo_id, _ = register_user(app, "bo@example.com", "Bo")
    pair_users(app, ada_id, bo_id)
    ada = app.test_client()
    login(ada)
    unconfirmed = post_form(ada, "/pair/unpair", {})
    assert unconfirmed.status_code == 422
    assert "tick the box" in unconfirmed.get_data(as_text=True)
    confirmed = post_form(ada, "/pair/unpair", {"confirm": "y"})
    assert confirmed.status_code == 302
    with app.app_context():
        assert db.session.get(User, bo_id).pair_id is None
