"""Every form that checks a password is rate-limited per account and per address (limits on)."""

from __future__ import annotations

import pytest

from wishnotes import recovery
from wishnotes.extensions import db, limiter

from .conftest import PASSWORD, csrf_token, login, make_app, now, register_user, reset_database

WRONG = "not the password at all"
NEW_PASSWORD = "seven swans over the bay"


def limited_app(tmp_path, postgres_engine, *, per_account: str, per_address: str):
    app = make_app(
        tmp_path,
        postgres_engine,
        RATELIMIT_ENABLED=True,
        LOGIN_LIMIT_PER_ACCOUNT=per_account,
        LOGIN_LIMIT_PER_ADDRESS=per_address,
        RECOVERY_LIMIT_PER_ADDRESS="100 per hour",
    )
    reset_database(app)
    return app


def reset_link(app, email: str) -> str:
    with app.app_context():
        _, token = recovery.request_reset(email=email, now=now())
        db.session.commit()
        return token


# Each password check: how to reach it (signed in or with a reset link) and a wrong try.
CHECKS = {
    "unlock": ("/unlock", {"password": WRONG}),
    "new recovery kit": ("/recovery-kit/new", {"password": WRONG}),
    "password change": (
        "/settings/password",
        {"current_password": WRONG, "new_password": NEW_PASSWORD},
    ),
    "account deletion": ("/settings/delete", {"password": WRONG, "confirm": "y"}),
    "recovery with the key": (
        "/reset/{token}",
        {"recovery_key": "A" * 32, "password": NEW_PASSWORD},
    ),
    "sign-in": ("/login", {"email": "{email}", "password": WRONG}),
}
TOKEN_PAGES = {"/recovery-kit/new": "/recovery-kit/"}


class Person:
    """A browser for one account, ready to send wrong tries at one password check."""

    def __init__(self, app, email: str, check: str) -> None:
        register_user(app, email, email.split("@")[0].title())
        self.client = app.test_client()
        path, data = CHECKS[check]
        if path != "/login" and not path.startswith("/reset/"):
            assert login(self.client, email=email).status_code == 302
        token = reset_link(app, email) if path.startswith("/reset/") else ""
        self.path = path.format(token=token)
        self.data = {k: v.format(email=email) for k, v in data.items()}

    def try_wrong(self, address: str) -> int:
        environ = {"REMOTE_ADDR": address}
        page = TOKEN_PAGES.get(self.path, self.path)
        token = csrf_token(self.client, page)
        data = {**self.data, "csrf_token": token}
        return self.client.post(self.path, data=data, environ_base=environ).status_code


@pytest.mark.parametrize("check", CHECKS)
def test_each_password_check_is_limited_per_account(tmp_path, postgres_engine, check):
    app = limited_app(
        tmp_path, postgres_engine, per_account="3 per minute", per_address="100/minute"
    )
    ada = Person(app, "ada@example.com", check)
    bo = Person(app, "bo@example.com", check)
    with app.app_context():
        limiter.reset()  # the sign-ins above were password checks too
    # From a new address each time: only the account's budget can stop these.
    codes = [ada.try_wrong(f"10.0.0.{i}") for i in range(4)]
    assert codes == [422, 422, 422, 429]
    assert bo.try_wrong("10.0.0.1") == 422  # another account is not held back


@pytest.mark.parametrize("check", CHECKS)
def test_each_password_check_is_limited_per_address(tmp_path, postgres_engine, check):
    app = limited_app(
        tmp_path, postgres_engine, per_account="100/minute", per_address="3 per minute"
    )
    ada = Person(app, "ada@example.com", check)
    with app.app_context():
        limiter.reset()
    codes = [ada.try_wrong("10.1.1.1") for _ in range(4)]
    assert codes == [422, 422, 422, 429]
    assert ada.try_wrong("10.2.2.2") == 422  # another address has its own budget


def test_every_spelling_of_an_email_draws_from_one_account_budget(tmp_path, postgres_engine):
    app = limited_app(
        tmp_path, postgres_engine, per_account="3 per minute", per_address="100/minute"
    )
    register_user(app)
    client = app.test_client()
    spellings = ["ADA@example.com", " ada@EXAMPLE.com ", "\uff41\uff44\uff41@example.com"]
    codes = [
        login(
            client, email=email, password=WRONG, environ_base={"REMOTE_ADDR": f"10.3.0.{i}"}
        ).status_code
        for i, email in enumerate([*spellings, "ada@example.com"])
    ]
    assert codes == [422, 422, 422, 429]


def test_password_checks_share_one_budget_across_forms(tmp_path, postgres_engine):
    app = limited_app(
        tmp_path, postgres_engine, per_account="3 per minute", per_address="100/minute"
    )
    register_user(app)
    client = app.test_client()
    login(client)  # one
    token = csrf_token(client, "/unlock")
    assert client.post("/unlock", data={"password": WRONG, "csrf_token": token}).status_code == 422
    data = {"current_password": WRONG, "new_password": NEW_PASSWORD}
    token = csrf_token(client, "/settings/password")
    response = client.post("/settings/password", data={**data, "csrf_token": token})
    assert response.status_code == 422  # three
    thief = app.test_client()
    assert login(thief, password=PASSWORD).status_code == 429  # even the right password waits
