"""Two partners on two phones, from the first visit to ending the pair, with scripts on and off."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import new_phone
from .steps import is_veiled, make_invite, register, unique_email

pytestmark = pytest.mark.browser

CANARY = "I would like us to walk by the river on Sunday, just the two of us."


def _flash(page, text: str) -> None:
    page.locator(".flash", has_text=text).wait_for()


@pytest.fixture
def berlin_and_lisbon(browser, server):
    """Ada's phone in Berlin, Sam's in Lisbon: each reports its own time zone."""
    ada_context, ada = new_phone(browser, server, timezone_id="Europe/Berlin")
    sam_context, sam = new_phone(browser, server, timezone_id="Europe/Lisbon")
    # Sam's phone has the share sheet (as phones do); Ada's has only the clipboard.
    sam_context.add_init_script(
        "navigator.share = d => { window.__shared = d; return Promise.resolve(); };"
    )
    yield ada, sam
    for context in (ada_context, sam_context):
        context.close()
    assert ada.watch.problems == [] and sam.watch.problems == []


def _tabs(page) -> list[str]:
    nav = page.get_by_role("navigation", name="Main")
    return [t.strip() for t in nav.get_by_role("link").all_inner_texts()] if nav.count() else []


def test_two_partners_register_pair_start_a_week_write_answer_and_unpair(
    berlin_and_lisbon, server, shots
):
    ada, sam = berlin_and_lisbon

    # Ada arrives, creates her account and saves her recovery kit. No menu while signing up.
    ada.goto("/")
    shots(ada, "01-welcome")
    ada.get_by_role("link", name="Create an account").click()
    ada.get_by_label("Email").fill(unique_email("ada"))
    ada.get_by_label("Your name").fill("Ada")
    ada.get_by_label("Password").fill("a quiet garden at dusk")
    ada.get_by_role("button", name="Create account").click()
    ada.get_by_role("heading", name="Your recovery kit").wait_for()
    assert _tabs(ada) == []
    ada.get_by_role("button", name="Print").wait_for()  # shown where the script can print
    with ada.expect_download() as download:
        ada.get_by_role("link", name="Download as a text file").click()
    assert download.value.suggested_filename == "recovery-kit.txt"
    saved = download.value.path().read_text()
    assert all(group in saved for group in ada.locator(".recovery-key code").all_inner_texts())
    ada.emulate_media(media="print")
    shots(ada, "02a-recovery-kit-print", full_page=True)
    assert not ada.get_by_role("button", name="I have saved it").is_visible()
    ada.emulate_media(media="screen")
    # The kit is shown once: she reads it now, then mistypes the group it asks for.
    groups = ada.locator(".recovery-key code").all_inner_texts()
    asked = ada.locator("label[for='typed']").inner_text()
    ada.get_by_label(re.compile("type group")).fill("ZZZZ")
    ada.get_by_role("button", name="I have saved it").click()
    calm = ada.locator(".calm .error")
    calm.wait_for()
    assert "Not quite" in calm.inner_text()
    assert calm.evaluate("el => getComputedStyle(el).fontWeight") == "500"
    shots(ada, "02-recovery-kit", full_page=True)
    assert not ada.locator(".recovery-key").count()  # not shown a second time
    ada.get_by_label(asked).fill(groups[int(re.search(r"type group (\d)", asked).group(1)) - 1])
    ada.get_by_role("button", name="I have saved it").click()
    ada.get_by_text("Your recovery kit is saved").wait_for()
    shots(ada, "03-home-unpaired")
    # Unpaired: no Notes, Write or Week tabs that would lead nowhere; no past pair to see.
    assert _tabs(ada) == ["Home", "Partner", "Settings"]
    ada.goto("/settings/")
    assert ada.get_by_text("past pair").count() == 0
    # Her phone's time zone was kept at sign-up: the email settings say Berlin time.
    ada.goto("/settings/emails")
    expect(ada.get_by_label("Your time zone")).to_have_value("Europe/Berlin")
    ada.get_by_text("Berlin time").wait_for()

    # She makes an invite link; Sam opens it signed out, registers and comes back to accept.
    link = make_invite(ada)
    ada.get_by_role("button", name="Copy").wait_for()  # one tap to copy, where scripts run
    assert (
        ada.get_by_role("navigation", name="Main")
        .get_by_role("link", name="Partner")
        .get_attribute("aria-current")
        == "page"
    )
    shots(ada, "04-invite-link")
    sam.goto(link)
    sam.get_by_text("Ada invites you").wait_for()
    sam.get_by_role("link", name="Create an account").click()
    register(sam, "Sam", path=sam.url)
    sam.wait_for_url(re.compile(r"/pair/join/"))
    assert "aria-current" not in sam.locator("nav").inner_html()  # joining is no tab
    shots(sam, "05-join")
    sam.get_by_role("button", name="Accept and pair").click()
    _flash(sam, "You and Ada are now paired.")
    # The used link now says what to do next.
    sam.goto(link)
    sam.get_by_text("ask your partner for a new link").wait_for()
    shots(sam, "05b-used-link")

    # Ada suggests a week; it waits for Sam, who says yes; then she writes from today's prompt.
    ada.goto("/")
    assert _tabs(ada) == ["Home", "Notes", "Write", "Week", "Settings"]
    ada.get_by_role("navigation", name="Main").get_by_role("link", name="Week").click()
    shots(ada, "06-week-start", full_page=True)
    expect(ada.get_by_label("Time zone for the week")).to_have_value("Europe/Berlin")
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

    # Sam finds it, opens it (blurred until tapped, answers only after) and answers gently.
    sam.goto("/")
    sam.get_by_role("navigation", name="Main").get_by_role("link", name="Notes").click()
    shots(sam, "11-inbox")
    sam.get_by_role("link", name=re.compile("From Ada")).click()
    body = sam.locator(".note-body")
    assert body.inner_text().strip() == CANARY
    assert is_veiled(body)
    assert not sam.get_by_role("button", name="Maybe later").is_visible()
    sam.get_by_text("Lisbon time").wait_for()  # the date in Sam's own zone, named
    shots(sam, "12-note-blurred")
    sam.get_by_role("button", name="Show note").click()
    expect(body).not_to_have_css("color", "rgba(0, 0, 0, 0)")
    expect(body).to_have_css("text-shadow", "none")
    answers = [sam.get_by_role("button", name=n) for n in ("Yes, let's", "Maybe later")]
    answers.append(sam.get_by_role("button", name="Let's talk about it", exact=True))
    # Equal weight: the same look for all three, none pressed yet.
    looks = {a.evaluate("el => getComputedStyle(el).backgroundColor") for a in answers}
    assert len(looks) == 1 and all(a.get_attribute("aria-pressed") == "false" for a in answers)
    shots(sam, "13-note-shown", full_page=True)
    sam.get_by_text("Add a few words").click()
    sam.get_by_label("A few words, if you like").fill("Yes, and can we choose the day together?")
    sam.get_by_role("button", name="Send with “Let's talk about it”").click()
    _flash(sam, "Your answer is sent")
    # Answering does not blur the note again; the answer given is marked.
    assert not is_veiled(sam.locator(".note-body").first)
    talk = sam.get_by_role("button", name="Let's talk about it", exact=True)
    assert talk.get_attribute("aria-pressed") == "true"
    shots(sam, "13b-answered", full_page=True)
    sam.goto("/notes/")
    sam.get_by_text("You answered: Let's talk about it").wait_for()
    sam.locator(".topic", has_text="One small wish").wait_for()  # the prompt tells them apart

    # Ada hears gently that there is an answer, reads it with Sam's words under her note.
    ada.goto("/")
    ada.get_by_role("link", name="Sam answered one of your notes").click()
    ada.get_by_text("Answer: Let's talk about it").wait_for()
    ada.get_by_role("link", name=re.compile("To Sam")).click()
    ada.get_by_text("Sam would like to talk about it with you.").wait_for()
    ada.get_by_text("Sam wrote:").wait_for()
    shots(ada, "14-answer-for-writer", full_page=True)

    # Lock now: the notes close at once, the login stays, and the unlock page says why.
    ada.get_by_role("button", name="Lock").click()
    ada.get_by_text("You locked your notes. Your login stays").wait_for()
    shots(ada, "14b-locked")
    ada.get_by_label("Password").fill("a quiet garden at dusk")
    ada.get_by_role("button", name="Unlock").click()
    ada.wait_for_url(re.compile(r"/$"))

    # Help beyond the app, from settings.
    ada.goto("/settings/")
    ada.get_by_role("link", name="Support").click()
    ada.get_by_role("heading", name="Help beyond the app").wait_for()
    shots(ada, "14c-support", full_page=True)

    # Sam shares a new invite link through the phone's share sheet (after ending the pair).
    sam.goto("/pair/")
    sam.get_by_role("link", name="End the pair").click()
    sam.get_by_role("link", name="help beyond the app").wait_for()
    shots(sam, "15-unpair", full_page=True)
    sam.get_by_label("Yes, end our pair").check()
    sam.get_by_role("button", name="End the pair").click()
    _flash(sam, "Your pair has ended")
    new_link = make_invite(sam)
    sam.get_by_role("button", name="Share").click()
    assert sam.evaluate("window.__shared.url") == new_link
    # Ada learns kindly that the pair has ended.
    ada.goto("/")
    ada.get_by_text("you and Sam no longer write to each other here").wait_for()
    shots(ada, "16-pair-ended", full_page=True)
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
