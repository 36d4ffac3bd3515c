"""Two partners on two phones, from the first visit to ending the pair, with scripts on and off."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import new_phone
from .steps import is_veiled, make_invite, register, save_kit, unique_email

pytestmark = pytest.mark.browser

CANARY = "I would like us to walk by the river on Sunday, just the two of us."


def _flash(page, text: str) -> None:
    page.locator(".flash", has_text=text).wait_for()


def test_two_partners_register_pair_start_a_week_write_answer_and_unpair(
    phone, second_phone, shots
):
    ada, sam = phone, second_phone

    # Ada arrives, creates her account and saves her recovery kit.
    ada.goto("/")
    shots(ada, "01-welcome")
    ada.get_by_role("link", name="Create an account").click()
    ada.get_by_label("Email").fill(unique_email("ada"))
    ada.get_by_label("Your name").fill("Ada")
    ada.get_by_label("Password").fill("a quiet garden at dusk")
    ada.get_by_role("button", name="Create account").click()
    shots(ada, "02-recovery-kit", full_page=True)
    save_kit(ada)
    shots(ada, "03-home-unpaired")

    # She makes an invite link; Sam opens it signed out, registers and comes back to accept.
    link = make_invite(ada)
    ada.get_by_role("button", name="Copy").wait_for()  # one tap to copy, where scripts run
    shots(ada, "04-invite-link")
    sam.goto(link)
    sam.get_by_text("Ada invites you").wait_for()
    sam.get_by_role("link", name="Create an account").click()
    register(sam, "Sam", path=sam.url)
    sam.wait_for_url(re.compile(r"/pair/join/"))
    shots(sam, "05-join")
    sam.get_by_role("button", name="Accept and pair").click()
    _flash(sam, "You and Ada are now paired.")

    # Ada suggests a week; it waits for Sam, who says yes; then she writes from today's prompt.
    ada.goto("/")
    ada.get_by_role("navigation", name="Main").get_by_role("link", name="Week").click()
    shots(ada, "06-week-start", full_page=True)
    ada.get_by_role("button", name="Suggest this week to Sam").click()
    _flash(ada, "It begins once your partner says yes")
    ada.get_by_text("Waiting for Sam.").wait_for()
    shots(ada, "06b-week-waiting", full_page=True)
    sam.goto("/")
    sam.get_by_role("link", name="Ada suggests a week together").click()
    shots(sam, "06c-week-suggested", full_page=True)
    sam.get_by_role("button", name="Begin the week together").click()
    _flash(sam, "Your week is set")
    ada.goto("/week/")
    ada.get_by_text("Day 1 of 7.").wait_for()
    # On day one, ending the week is a quiet link, not a main button.
    assert "link" in ada.get_by_role("button", name="End the week early").get_attribute("class")
    shots(ada, "07-week-day-1", full_page=True)
    ada.goto("/")
    shots(ada, "08-home-with-prompt", full_page=True)
    ada.locator(".prompt .list a").first.click()
    ada.get_by_label("Your note").fill(CANARY)
    shots(ada, "09-compose")
    ada.get_by_role("button", name="Send the note").click()
    _flash(ada, "Your note is on its way")
    shots(ada, "10-sent")

    # Sam finds it, opens it (blurred until tapped) and answers gently.
    sam.goto("/")
    sam.get_by_role("navigation", name="Main").get_by_role("link", name="Notes").click()
    shots(sam, "11-inbox")
    sam.get_by_role("link", name="From Ada").click()
    body = sam.locator(".note-body")
    assert body.inner_text().strip() == CANARY
    assert is_veiled(body)
    shots(sam, "12-note-blurred")
    sam.get_by_role("button", name="Show note").click()
    expect(body).not_to_have_css("color", "rgba(0, 0, 0, 0)")
    expect(body).to_have_css("text-shadow", "none")
    shots(sam, "13-note-shown", full_page=True)
    sam.get_by_role("button", name="Maybe later").click()
    _flash(sam, "Your answer is sent")

    # Ada reads the answer as a gentle hold, not a refusal.
    ada.goto("/notes/sent")
    ada.get_by_role("link", name="To Sam").click()
    ada.get_by_text("Sam is keeping this one for later").wait_for()
    shots(ada, "14-answer-for-writer", full_page=True)

    # Sam ends the pair; both are unpaired.
    sam.goto("/pair/")
    sam.get_by_role("link", name="End the pair").click()
    shots(sam, "15-unpair", full_page=True)
    sam.get_by_label("Yes, end our pair").check()
    sam.get_by_role("button", name="End the pair").click()
    _flash(sam, "Your pair has ended")
    ada.goto("/pair/")
    ada.get_by_role("button", name="Make an invite link").wait_for()

    for page in (ada, sam):
        assert page.watch.outside == []  # not one request left the machine


def test_core_flows_work_without_javascript(browser, server, shots):
    """Register, save the kit, pair, write, open, answer and unpair with scripts turned off."""
    contexts = []
    try:
        ada_context, ada = new_phone(browser, server, javascript=False)
        sam_context, sam = new_phone(browser, server, javascript=False)
        contexts = [ada_context, sam_context]
        register(ada, "Ada")
        register(sam, "Sam")
        link = make_invite(ada)
        sam.goto(link)
        sam.get_by_role("button", name="Accept and pair").click()
        sam.locator(".flash", has_text="now paired").wait_for()

        ada.goto("/notes/new")
        ada.get_by_label("Your note").fill(CANARY)
        ada.get_by_role("button", name="Send the note").click()
        ada.locator(".flash", has_text="on its way").wait_for()

        sam.goto("/notes/")
        sam.get_by_role("link", name="From Ada").click()
        body = sam.locator(".note-body")
        # Without scripts nothing could reveal a blurred note, so it is shown plainly.
        assert not is_veiled(body)
        assert body.inner_text().strip() == CANARY
        shots(sam, "nojs-note")
        sam.get_by_role("button", name="Yes, let's").click()
        sam.locator(".flash", has_text="answer is sent").wait_for()

        ada.goto("/pair/unpair")
        ada.get_by_label("Yes, end our pair").check()
        ada.get_by_role("button", name="End the pair").click()
        ada.locator(".flash", has_text="pair has ended").wait_for()
        assert ada.watch.outside == [] and sam.watch.outside == []
    finally:
        for context in contexts:
            context.close()
