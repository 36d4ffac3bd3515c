"""Accounts service: registration rules, one KDF run per login, parameter upgrades."""

import threading
import time

import pytest

from wishnotes import accounts, crypto
from wishnotes.errors import EmailTaken, InvalidCredentials, InvalidInput
from wishnotes.extensions import db
from wishnotes.kdf import KdfRunner
from wishnotes.models import User

from .conftest import PASSWORD, now


def _register(app, email="ada@example.com", password=PASSWORD, name="Ada"):
    return accounts.register(
        email=email,
        display_name=name,
        password=password,
        kdf=app.extensions["wishnotes.kdf"],
        now=now(),
    )


def test_register_normalises_email_and_stores_no_password(app_ctx):
    reg = _register(app_ctx, email="  Ada.Lovelace@EXAMPLE.com ")
    user = db.session.get(User, reg.user.id)
    assert user.email == "ada.lovelace@example.com"
    assert len(reg.recovery_key) == 20
    stored = b"".join(
        v for v in (user.auth_digest, user.uk_by_password, user.uk_by_recovery, user.private_keys)
    )
    assert PASSWORD.encode() not in stored and reg.user_key not in stored


def test_email_is_unique_regardless_of_case(app_ctx):
    _register(app_ctx, email="ada@example.com")
    with pytest.raises(EmailTaken):
        _register(app_ctx, email="ADA@example.COM")


@pytest.mark.parametrize(
    ("email", "password", "name", "field"),
    [
        ("", PASSWORD, "Ada", "email"),
        ("not-an-email", PASSWORD, "Ada", "email"),
        ("a@" + "x" * 260 + ".com", PASSWORD, "Ada", "email"),
        ("ada@example.com", "short", "Ada", "password"),
        ("ada@example.com", "x" * 257, "Ada", "password"),
        ("ada@example.com", "qwertyuiop", "Ada", "password"),
        ("ada@example.com", "Password12", "Ada", "password"),
        ("ada@example.com", "ada@example.com", "Ada", "password"),
        ("ada@example.com", PASSWORD, "   ", "display_name"),
        ("ada@example.com", PASSWORD, "A" * 61, "display_name"),
        ("ada@example.com", PASSWORD, "Ada\u0000", "display_name"),
    ],
)
def test_bad_registration_input_names_its_field(app_ctx, email, password, name, field):
    with pytest.raises(InvalidInput) as info:
        _register(app_ctx, email=email, password=password, name=name)
    assert info.value.field == field
    assert db.session.query(User).count() == 0


def test_authenticate_returns_the_user_key(app_ctx):
    reg = _register(app_ctx)
    unlocked = accounts.authenticate(
        email="ADA@example.com", password=PASSWORD, kdf=app_ctx.extensions["wishnotes.kdf"]
    )
    assert unlocked.user.id == reg.user.id
    assert unlocked.user_key == reg.user_key


def test_password_is_nfkc_normalised(app_ctx):
    _register(app_ctx, password="\ufb01ne quiet garden")  # "ﬁ" ligature
    unlocked = accounts.authenticate(
        email="ada@example.com",
        password="fine quiet garden",
        kdf=app_ctx.extensions["wishnotes.kdf"],
    )
    assert unlocked.user.email == "ada@example.com"


class CountingKdf(KdfRunner):
    def __init__(self, inner: KdfRunner):
        super().__init__(pepper=inner.pepper, params=inner.params, max_concurrent=4)
        self.runs: list[crypto.KdfParams] = []

    def derive(self, password, *, salt, params):
        self.runs.append(params)
        return super().derive(password, salt=salt, params=params)


def test_unknown_email_and_wrong_password_cost_one_kdf_run_and_read_alike(app_ctx):
    _register(app_ctx)
    kdf = CountingKdf(app_ctx.extensions["wishnotes.kdf"])
    messages = []
    for email, password in [
        ("nobody@example.com", PASSWORD),
        ("ada@example.com", "wrong password!"),
    ]:
        kdf.runs.clear()
        with pytest.raises(InvalidCredentials) as info:
            accounts.authenticate(email=email, password=password, kdf=kdf)
        messages.append(str(info.value))
        assert kdf.runs == [kdf.params]  # exactly one run at the target cost on both paths
    assert messages[0] == messages[1]


def test_login_runs_the_kdf_once(app_ctx):
    _register(app_ctx)
    kdf = CountingKdf(app_ctx.extensions["wishnotes.kdf"])
    accounts.authenticate(email="ada@example.com", password=PASSWORD, kdf=kdf)
    assert len(kdf.runs) == 1


def test_kdf_parameters_are_upgraded_at_next_login(app_ctx):
    reg = _register(app_ctx)
    old_salt = reg.user.kdf_salt
    stronger = crypto.KdfParams(memory_kib=crypto.KDF_FLOOR.memory_kib + 1024, iterations=3)
    kdf = KdfRunner(pepper=app_ctx.config["PEPPER_BYTES"], params=stronger)
    unlocked = accounts.authenticate(email="ada@example.com", password=PASSWORD, kdf=kdf)
    user = db.session.get(User, reg.user.id)
    assert accounts.kdf_params_of(user) == stronger
    assert user.kdf_salt != old_salt
    # The upgraded wrapping opens the same user key on the next login.
    again = accounts.authenticate(email="ada@example.com", password=PASSWORD, kdf=kdf)
    assert again.user_key == unlocked.user_key == reg.user_key


def test_stored_parameters_below_the_floor_are_refused(app_ctx):
    reg = _register(app_ctx)
    reg.user.kdf_iterations = 1
    db.session.commit()
    with pytest.raises(ValueError, match="floor"):
        accounts.authenticate(
            email="ada@example.com", password=PASSWORD, kdf=app_ctx.extensions["wishnotes.kdf"]
        )


def test_concurrent_kdf_runs_are_capped(monkeypatch):
    active, peak, lock = 0, 0, threading.Lock()

    def slow_derive(password, **kwargs):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        with lock:
            active -= 1
        return b"a" * 32, b"k" * 32

    monkeypatch.setattr(crypto, "derive_login_keys", slow_derive)
    runner = KdfRunner(pepper=b"p" * 32, params=crypto.KDF_FLOOR, max_concurrent=2)
    threads = [threading.Thread(target=runner.burn, args=("pw",)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert peak == 2


def test_recovery_kit_confirmation_tolerates_case_and_look_alike_characters(app_ctx):
    reg = _register(app_ctx)
    kit = crypto.format_recovery_key(reg.recovery_key)
    groups = crypto.recovery_key_groups(reg.recovery_key)
    typed = groups[2].lower().replace("o", "0").replace("i", "1").replace("b", "8")
    accounts.confirm_recovery_kit(
        user=reg.user,
        recovery_key_text=kit,
        group_index=2,
        typed=f" {typed} ",
        pepper=app_ctx.config["PEPPER_BYTES"],
        now=now(),
    )
    assert reg.user.recovery_confirmed_at is not None


@pytest.mark.parametrize("index", [-1, 8, 99])
def test_recovery_kit_confirmation_rejects_out_of_range_groups(app_ctx, index):
    reg = _register(app_ctx)
    with pytest.raises(InvalidInput, match="no longer valid"):
        accounts.confirm_recovery_kit(
            user=reg.user,
            recovery_key_text=crypto.format_recovery_key(reg.recovery_key),
            group_index=index,
            typed="AAAA",
            pepper=app_ctx.config["PEPPER_BYTES"],
            now=now(),
        )


def test_new_accounts_weekly_emails_are_spread_over_calm_evening_slots(app_ctx):
    slots = []
    for number in range(15):
        user = _register(app_ctx, email=f"person{number}@example.com").user
        assert user.daily_hour == user.weekly_hour  # a daily email, once turned on, too
        slots.append((user.weekly_weekday, user.weekly_hour))
    assert len(set(slots)) == 15  # fifteen sign-ups, fifteen different slots
    assert {weekday for weekday, _ in slots} == {4, 5, 6}  # Friday to Sunday
    assert {hour for _, hour in slots} == {17, 18, 19, 20, 21}


def test_the_default_slot_is_a_deterministic_function_of_the_user_id():
    from wishnotes import preferences

    assert preferences.default_slot(1) == preferences.default_slot(16)
    assert preferences.default_slot(0) == (4, 17)
    assert preferences.default_slot(14) == (6, 21)


def test_registration_takes_the_time_zone_the_browser_gave(app_ctx):
    user = accounts.register(
        email="ada@example.com",
        display_name="Ada",
        password=PASSWORD,
        kdf=app_ctx.extensions["wishnotes.kdf"],
        now=now(),
        timezone="Europe/Berlin",
    ).user
    assert db.session.get(User, user.id).timezone == "Europe/Berlin"


@pytest.mark.parametrize("zone", [None, "", "Mars/Base", "Europe/" + "B" * 300])
def test_an_unknown_or_missing_time_zone_leaves_utc_and_still_registers(app_ctx, zone):
    user = accounts.register(
        email="ada@example.com",
        display_name="Ada",
        password=PASSWORD,
        kdf=app_ctx.extensions["wishnotes.kdf"],
        now=now(),
        timezone=zone,
    ).user
    assert db.session.get(User, user.id).timezone == "UTC"
