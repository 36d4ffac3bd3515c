"""Accounts service: registration rules, one KDF run per login, parameter upgrades."""

import threading
import time

import pytest
from sqlalchemy import func, select

from wishnotes import accounts, crypto, recovery
from wishnotes.errors import EmailTaken, InvalidCredentials, InvalidInput, StoredKdfRefused
from wishnotes.extensions import db
from wishnotes.kdf import KdfRunner
from wishnotes.models import RetiredKeys, User

from .conftest import PASSWORD, login, now, pair_users, post_form, register_user


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


def test_a_full_width_address_is_the_same_account(app_ctx):
    _register(app_ctx, email="ada@example.com")
    full_width = "".join(chr(ord(char) + 0xFEE0) for char in "ada@example.com")
    with pytest.raises(EmailTaken):
        _register(app_ctx, email=full_width)
    unlocked = accounts.authenticate(
        email=full_width, password=PASSWORD, kdf=app_ctx.extensions["wishnotes.kdf"]
    )
    assert unlocked.user.email == "ada@example.com"


@pytest.mark.parametrize(
    "email",
    [
        "\u0430da@example.com",  # Cyrillic a among Latin letters
        "ada@ex\u0430mple.com",  # the same in the domain
        "\u03bflga@example.com",  # Greek omicron
    ],
)
def test_an_address_mixing_look_alike_alphabets_is_refused(app_ctx, email):
    with pytest.raises(InvalidInput) as caught:
        _register(app_ctx, email=email)
    assert caught.value.field == "email"
    assert "alphabet" in caught.value.message
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_an_address_that_looks_like_an_existing_one_is_refused(app_ctx):
    _register(app_ctx, email="ace@example.com")
    with pytest.raises(InvalidInput) as caught:
        _register(app_ctx, email="\u0430\u0441\u0435@example.com", name="Mallory")  # all Cyrillic
    assert caught.value.field == "email"
    assert "looks the same" in caught.value.message


@pytest.mark.parametrize(
    "email",
    [
        "\u0438\u0432\u0430\u043d@example.com",  # иван: Cyrillic with no Latin twin
        "\u65e5\u672c\u3072\u3089\u304c\u306a@example.jp",  # Han and Hiragana together
        "m\u00fcller@example.de",
    ],
)
def test_addresses_in_one_real_alphabet_are_accepted(app_ctx, email):
    assert _register(app_ctx, email=email).user.id


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
    with pytest.raises(StoredKdfRefused):
        accounts.authenticate(
            email="ada@example.com", password=PASSWORD, kdf=app_ctx.extensions["wishnotes.kdf"]
        )


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("kdf_memory_kib", 1024 * 1024 + 1),  # just over 1 GiB
        ("kdf_memory_kib", 64 * 1024 * 1024),  # 64 GiB
        ("kdf_iterations", 21),
        ("kdf_iterations", 2**31 - 1),
        ("kdf_lanes", 17),
        ("kdf_lanes", 0),
    ],
)
def test_stored_parameters_above_the_ceiling_are_refused_before_any_kdf_run(app_ctx, column, value):
    reg = _register(app_ctx)
    setattr(reg.user, column, value)
    db.session.commit()
    kdf = CountingKdf(app_ctx.extensions["wishnotes.kdf"])
    with pytest.raises(StoredKdfRefused) as refused:
        accounts.authenticate(email="ada@example.com", password=PASSWORD, kdf=kdf)
    assert kdf.runs == []  # refused before Argon2id could allocate anything
    assert "cannot be opened just now" in refused.value.message
    assert db.session.get(User, reg.user.id).kdf_salt == reg.user.kdf_salt  # nothing rewritten


def test_retired_keys_with_parameters_above_the_ceiling_are_refused(app_ctx):
    reg = _register(app_ctx)
    kdf = app_ctx.extensions["wishnotes.kdf"]
    recovery.request_reset(email="ada@example.com", now=now())
    db.session.commit()
    token = recovery.mint_reset_token(user_id=reg.user.id, now=now())  # as delivery does
    fresh = recovery.reset_with_fresh_keys(
        token=token, new_password="a brand new evening walk", understood=True, kdf=kdf, now=now()
    )
    retired = db.session.scalar(select(RetiredKeys).where(RetiredKeys.user_id == reg.user.id))
    retired.kdf_memory_kib = 32 * 1024 * 1024
    db.session.commit()
    with pytest.raises(StoredKdfRefused):
        recovery.restore_retired(
            user=fresh.user, user_key=fresh.user_key, secret=PASSWORD, kdf=kdf, now=now()
        )


def test_signing_in_to_a_row_with_huge_parameters_shows_a_calm_page(app, caplog):
    user_id, _ = register_user(app)
    with app.app_context():
        db.session.get(User, user_id).kdf_memory_kib = 16 * 1024 * 1024
        db.session.commit()
    client = app.test_client()
    response = login(client)
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "cannot be opened just now" in page and "Traceback" not in page
    assert "wn_keys" not in response.headers.get("Set-Cookie", "")
    assert "Refused stored KDF parameters" in caplog.text  # the operator is told, in the log


def test_a_note_typed_while_locked_is_kept_when_the_row_is_refused(app):
    ada_id, _ = register_user(app)
    bo_id, _ = register_user(app, "bo@example.com", "Bo")
    pair_users(app, ada_id, bo_id)
    client = app.test_client()
    login(client)
    client.delete_cookie("wn_keys", domain="wishnotes.test")
    with app.app_context():
        db.session.get(User, ada_id).kdf_iterations = 10_000
        db.session.commit()
    sent = post_form(client, "/notes/new", {"body": "words worth keeping", "password": PASSWORD})
    page = sent.get_data(as_text=True)
    assert sent.status_code == 422
    assert "words worth keeping" in page and "cannot be opened just now" in page


def test_the_kdf_refuses_parameters_above_the_ceiling_itself():
    with pytest.raises(ValueError, match="ceiling"):
        crypto.derive_login_keys(
            "a password",
            salt=bytes(16),
            params=crypto.KdfParams(memory_kib=2 * 1024 * 1024),
            pepper=b"pepper",
        )
    with pytest.raises(ValueError, match="ceiling"):
        KdfRunner(pepper=b"pepper", params=crypto.KdfParams(iterations=50))


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
    groups = crypto.recovery_key_groups(reg.recovery_key)
    check = accounts.kit_check(user=reg.user, recovery_key=reg.recovery_key)
    assert check.group == groups[check.index]
    typed = check.group.lower().replace("o", "0").replace("i", "1").replace("b", "8")
    accounts.confirm_recovery_kit(user=reg.user, check=check, typed=f" {typed} ", now=now())
    assert reg.user.recovery_confirmed_at is not None


def test_recovery_kit_check_holds_one_group_never_the_key(app_ctx):
    reg = _register(app_ctx)
    check = accounts.kit_check(user=reg.user, recovery_key=reg.recovery_key)
    kept = check.to_bytes()
    groups = crypto.recovery_key_groups(reg.recovery_key)
    assert not any(group.encode() in kept for i, group in enumerate(groups) if i != check.index)
    assert accounts.KitCheck.from_bytes(kept) == check
    assert accounts.KitCheck.from_bytes(b"not json") is None


def test_recovery_kit_confirmation_refuses_a_wrong_group_and_an_older_kit(app_ctx):
    reg = _register(app_ctx)
    check = accounts.kit_check(user=reg.user, recovery_key=reg.recovery_key)
    wrong = "AAAA" if check.group != "AAAA" else "BBBB"
    with pytest.raises(InvalidInput, match="Not quite"):
        accounts.confirm_recovery_kit(user=reg.user, check=check, typed=wrong, now=now())
    accounts.new_recovery_key(
        user=reg.user, user_key=reg.user_key, pepper=app_ctx.config["PEPPER_BYTES"]
    )
    with pytest.raises(InvalidInput, match="no longer valid"):
        accounts.confirm_recovery_kit(user=reg.user, check=check, typed=check.group, now=now())
    assert reg.user.recovery_confirmed_at is None


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
