"""Signing in while every Argon2id slot is busy: on a phone, the form comes back, calm and whole."""

import time

import pytest

from wishnotes import kdf

from .steps import PASSWORD, no_horizontal_overflow, register, serious_violations, unique_email

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width", [320, 390])
def test_a_busy_sign_in_shows_the_form_again_and_one_press_signs_in(browser, server, shots, width):
    from .conftest import new_phone

    context, page = new_phone(browser, server, viewport={"width": width, "height": 740})
    try:
        email = unique_email("busy")
        register(page, "Robin", email=email)
        context.clear_cookies()  # a visit of its own: signed out

        runner = server.app.extensions["wishnotes.kdf"]
        slots = kdf.SlotFiles(runner.slots_dir, runner.max_concurrent)
        held = [slots.acquire(deadline=time.monotonic()) for _ in range(runner.max_concurrent)]
        assert None not in held  # every slot is taken, as by other workers' sign-ins
        wait, runner.wait = runner.wait, 0.2
        try:
            page.goto("/login")
            page.get_by_label("Email").fill(email)
            page.get_by_label("Password").fill(PASSWORD)
            with page.expect_response("**/login") as answered:
                page.get_by_role("button", name="Sign in").click()
            assert answered.value.status == 503
            assert answered.value.headers["retry-after"] == "3"
            alert = page.get_by_role("alert")
            assert "Many people are signing in right now" in alert.inner_text()
            assert page.get_by_label("Email").input_value() == email
            assert page.get_by_label("Password").input_value() == ""
            assert no_horizontal_overflow(page)
            assert serious_violations(page) == []
            shots(page, f"busy-sign-in-{width}", full_page=True)
        finally:
            runner.wait = wait
            for fd in held:
                slots.release(fd)

        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{server.url}/")
        assert page.watch.problems == []
    finally:
        context.close()
