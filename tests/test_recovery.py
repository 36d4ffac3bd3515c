"""Forgot password: reset links, recovery with the key, fresh keys, restoring retired keys."""

import hashlib
from datetime import timedelta

import pytest

from wishnotes import accounts, crypto, keysessions, logins, recovery
from wishnotes.errors import (
    InvalidCredentials,
    InvalidInput,
    ResetLinkExpired,
    ResetLinkInvalid,
    ResetLinkUsed,
)
from wishnotes.extensions import db
from wishnotes.models import KeySession, Login, PasswordReset, RetiredKeys, User

from .conftest import PASSWORD, now

NEW_PASSWORD = "a brand new evening walk"


@pytest.fixture
def ada(app_ctx):
    reg = accounts.register(
        email="ada@example.com",
        display_name="Ada",
        password=PASSWORD,
        kdf=app_ctx.extensions["wishnotes.kdf"],
        now=now(),
    )
    login = logins.open_login(
        user=reg.user,
        device="Firefox on Linux",
        remember=True,
        now=now(),
        idle=timedelta(days=7),
        remembered=timedelta(days=30),
    ).login
    keysessions.open_session(user=reg.user, user_key=reg.user_key, login_id=login.id, now=now())
    return reg


def _kdf(app):
    return app.extensions["wishnotes.kdf"]


def _link(email="ada@example.com", at=None):
    _, token = recovery.request_reset(email=email, now=at or now())
    db.session.commit()
    return token


def test_unknown_or_malformed_email_creates_no_link(app_ctx, ada):
    assert recovery.request_reset(email="nobody@example.com", now=now()) is None
    assert recovery.request_reset(email="not an email", now=now()) is None
    assert db.session.query(PasswordReset).count() == 0


def test_reset_token_is_stored_only_as_hash_and_newest_link_wins(app_ctx, ada):
    first = _link()
    second = _link()
    hashes = {r.token_hash for r in db.session.query(PasswordReset)}
    assert hashlib.sha256(second.encode()).digest() in hashes
    with pytest.raises(ResetLinkUsed):
        recovery.find_reset(token=first, now=now())
    assert recovery.find_reset(token=second, now=now()).user_id == ada.user.id


def test_recovery_key_sets_a_new_password_and_keeps_the_user_key(app_ctx, ada):
    token = _link()
    kit = crypto.format_recovery_key(ada.recovery_key).lower()
    recovered = recovery.recover_with_key(
        token=token, recovery_key_text=kit, new_password=NEW_PASSWORD, kdf=_kdf(app_ctx), now=now()
    )
    assert recovered.user_key == ada.user_key
    assert recovered.recovery_key != ada.recovery_key
    assert db.session.query(KeySession).count() == 0  # every other session ended
    assert db.session.query(Login).count() == 0  # and every login
    with pytest.raises(InvalidCredentials):
        accounts.authenticate(email="ada@example.com", password=PASSWORD, kdf=_kdf(app_ctx))
    again = accounts.authenticate(email="ada@example.com", password=NEW_PASSWORD, kdf=_kdf(app_ctx))
    assert again.user_key == ada.user_key
    with pytest.raises(ResetLinkUsed):
        recovery.find_reset(token=token, now=now())


def test_old_recovery_key_stops_working_after_recovery(app_ctx, ada):
    recovery.recover_with_key(
        token=_link(),
        recovery_key_text=crypto.format_recovery_key(ada.recovery_key),
        new_password=NEW_PASSWORD,
        kdf=_kdf(app_ctx),
        now=now(),
    )
    with pytest.raises(InvalidInput) as info:
        recovery.recover_with_key(
            token=_link(),
            recovery_key_text=crypto.format_recovery_key(ada.recovery_key),
            new_password=PASSWORD,
            kdf=_kdf(app_ctx),
            now=now(),
        )
    assert info.value.field == "recovery_key"


@pytest.mark.parametrize("key_text", ["", "ABCD", "not a key at all!", "A" * 32])
def test_wrong_recovery_key_changes_nothing_and_keeps_the_link(app_ctx, ada, key_text):
    token = _link()
    before = db.session.get(User, ada.user.id).uk_by_password
    with pytest.raises(InvalidInput):
        recovery.recover_with_key(
            token=token,
            recovery_key_text=key_text,
            new_password=NEW_PASSWORD,
            kdf=_kdf(app_ctx),
            now=now(),
        )
    assert db.session.get(User, ada.user.id).uk_by_password == before
    assert recovery.find_reset(token=token, now=now())


def test_expired_and_unknown_links_are_refused(app_ctx, ada):
    token = _link(at=now() - timedelta(minutes=61))
    with pytest.raises(ResetLinkExpired):
        recovery.find_reset(token=token, now=now())
    with pytest.raises(ResetLinkInvalid):
        recovery.find_reset(token="made-up", now=now())
    with pytest.raises(ResetLinkInvalid):
        recovery.find_reset(token="x" * 1000, now=now())


def test_fresh_start_needs_consent_and_retires_the_old_keys(app_ctx, ada):
    token = _link()
    with pytest.raises(InvalidInput) as info:
        recovery.reset_with_fresh_keys(
            token=token, new_password=NEW_PASSWORD, understood=False, kdf=_kdf(app_ctx), now=now()
        )
    assert info.value.field == "understood"
    old_key_id = ada.user.key_id
    fresh = recovery.reset_with_fresh_keys(
        token=token, new_password=NEW_PASSWORD, understood=True, kdf=_kdf(app_ctx), now=now()
    )
    assert fresh.user_key != ada.user_key
    assert fresh.user.key_id != old_key_id
    retired = db.session.query(RetiredKeys).one()
    assert retired.key_id == old_key_id and retired.uk_by_current is None
    assert db.session.query(KeySession).count() == 0


@pytest.mark.parametrize("which", ["old password", "old recovery key"])
def test_earlier_keys_open_again_with_old_password_or_recovery_key(app_ctx, ada, which):
    old_public = crypto.deserialize_private(
        crypto.unwrap(
            ada.user_key,
            ada.user.private_keys,
            purpose=accounts.PURPOSE_PRIVATE_KEYS,
            user_id=ada.user.id,
        )
    ).public()
    old_key_id = ada.user.key_id
    fresh = recovery.reset_with_fresh_keys(
        token=_link(), new_password=NEW_PASSWORD, understood=True, kdf=_kdf(app_ctx), now=now()
    )
    assert (
        recovery.retired_private_keys(user=fresh.user, user_key=fresh.user_key, key_id=old_key_id)
        is None
    )
    with pytest.raises(InvalidInput):
        recovery.restore_retired(
            user=fresh.user,
            user_key=fresh.user_key,
            secret="not the old password",
            kdf=_kdf(app_ctx),
            now=now(),
        )
    secret = PASSWORD if which == "old password" else crypto.format_recovery_key(ada.recovery_key)
    opened = recovery.restore_retired(
        user=fresh.user, user_key=fresh.user_key, secret=secret, kdf=_kdf(app_ctx), now=now()
    )
    assert opened == 1
    keys = recovery.retired_private_keys(
        user=fresh.user, user_key=fresh.user_key, key_id=old_key_id
    )
    assert keys.public() == old_public
    assert recovery.locked_retired(fresh.user) == []
