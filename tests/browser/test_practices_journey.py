"""Two partners walk the practices: the table, a place of their own, agreements and the timer."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import new_phone
from .steps import is_veiled, no_horizontal_overflow, serious_violations, small_targets

pytestmark = pytest.mark.browser

RITUAL = "I miss our evening tea with talk, before the news."
TURN_ADA = "I see the sea, a wave breaks on the shore."
TURN_SAM = "The water foams and rolls back, and the sand is warm."
NARROW = {"width": 360, "height": 780}


def _flash(page, text: str) -> None:
    page.locator(".flash", has_text=text).wait_for()


def _check(page, shots, name: str, found: list) -> None:
    """Screenshots at 390 and 360 px, axe in both themes, and no sideways scrolling."""
    wide = page.viewport_size
    shots(page, f"practices-{name}-390", full_page=True)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        found += serious_violations(page)
    page.emulate_media(color_scheme="light")
    found += [f"small target on {page.url}: {target}" for target in small_targets(page)]
    page.set_viewport_size(NARROW)
    shots(page, f"practices-{name}-360", full_page=True)
    if not no_horizontal_overflow(page):
        found.append(f"overflow at 360 px on {page.url}")
    page.set_viewport_size(wide)


def test_two_partners_walk_the_table_a_place_and_agreements(couple, shots):
    ada, sam = couple["ada"], couple["sam"]
    found: list[str] = []

    # From home, one calm way in: Together.
    ada.goto("/")
    ada.get_by_role("link", name=re.compile("^Together")).click()
    _check(ada, shots, "01-together", found)

    # The table: Ada adds what she misses; Sam sees it is new, opens it blurred, welcomes it.
    ada.get_by_role("link", name=re.compile("Our table")).click()
    ada.get_by_label("I miss…").fill(RITUAL)
    ada.get_by_role("button", name="Add to the table").click()
    _flash(ada, "It is on your table now")
    sam.goto("/")
    sam.get_by_role("link", name="Ada added something to your table").click()
    body = sam.locator(".ritual .note-body").first
    assert body.inner_text().strip() == RITUAL and is_veiled(body)
    _check(sam, shots, "02-table-blurred", found)
    sam.locator(".ritual").get_by_role("button", name="Show note").click()
    expect(body).to_have_css("text-shadow", "none")
    sam.get_by_role("button", name="Let's bring it back").click()
    _flash(sam, "let's bring it back")
    sam.get_by_text("Plan a day or write down when").click()
    sam.get_by_role("button", name="Write it down").click()
    _flash(sam, "Written down: done on")
    assert "Done " in sam.locator(".ritual").inner_text()
    sam.get_by_text("Plan a day or write down when").click()
    _check(sam, shots, "03-table-done", found)
    assert not re.search(r"streak|score|\d+ times", sam.content(), re.I)

    # A place of our own: Sam starts one, writes from a starter; Ada sees it is her turn.
    sam.goto("/together/place/")
    _check(sam, shots, "04-place-start", found)
    sam.get_by_label("A name for the place, if you like").fill("The cove")
    sam.get_by_role("button", name="Start a place").click()
    _flash(sam, "Your place has begun")
    assert sam.locator(".starters a").count() == 3
    sam.locator(".starters a").first.click()
    assert sam.get_by_label("Your lines").input_value().strip()
    sam.get_by_label("Your lines").fill(TURN_SAM)
    sam.get_by_role("button", name="Add my lines").click()
    sam.get_by_text("Ada's turn").wait_for()
    _check(sam, shots, "05-place-partners-turn", found)
    ada.goto("/")
    ada.get_by_role("link", name="Sam added to your place").click()
    ada.get_by_role("heading", name="Your turn").wait_for()
    ada.get_by_label("Your lines").fill(TURN_ADA)
    ada.get_by_role("button", name="Add my lines").click()
    ada.get_by_text("Sam's turn").wait_for()
    _check(ada, shots, "06-place-two-turns", found)
    ada.get_by_role("button", name="End this place").click()
    _flash(ada, "The place has ended")
    ada.get_by_role("link", name=re.compile("A place from")).click()
    ada.get_by_text("It stays here to read").wait_for()
    assert TURN_SAM in ada.content() and TURN_ADA in ada.content()
    _check(ada, shots, "07-place-ended", found)

    # Agreements: Ada proposes one from the list; it reads "proposed" until Sam agrees.
    ada.goto("/together/agreements/new")
    ada.get_by_label(re.compile("The evening listening")).check()
    _check(ada, shots, "08-agreement-propose", found)
    ada.get_by_role("button", name="Propose it").click()
    _flash(ada, "Your proposal is waiting")
    assert ada.locator(".agreement .badge").inner_text() == "proposed"
    sam.goto("/")
    sam.get_by_role("link", name="Ada proposed an agreement").click()
    sam.get_by_role("button", name="I agree").click()
    _flash(sam, "You have agreed")
    assert sam.locator(".agreement .badge").inner_text() == "in effect"
    _check(sam, shots, "09-agreement-in-effect", found)
    ada.goto("/together/agreements/")
    ada.get_by_role("button", name="End it").click()
    _flash(ada, "It has ended")
    sam.goto("/together/agreements/")
    assert sam.locator(".agreement .badge").inner_text() == "ended"
    assert "Ada ended" not in sam.content()

    # The listening timer: who speaks, who listens, counting down, and nothing sent meanwhile.
    sam.goto("/together/agreements/listen")
    _check(sam, shots, "10-timer-choose", found)
    sam.get_by_label("5 minutes", exact=True).check()
    sam.get_by_label("Ada", exact=True).check()
    sam.get_by_role("button", name="Start").click()
    sam.get_by_text("Ada speaks").wait_for()
    expect(sam.locator("[data-timer]")).not_to_have_text("5:00", timeout=3000)
    _check(sam, shots, "11-timer-running", found)

    assert found == []
    for page in (ada, sam):
        assert page.watch.outside == []


def test_the_practices_work_without_javascript(browser, server, couple, shots):
    """The table, a turn and an agreement with scripts off: nothing hidden, nothing lost."""
    email = couple["ada_email"]
    context, ada = new_phone(browser, server, javascript=False)
    try:
        ada.goto("/login")
        ada.get_by_label("Email").fill(email)
        ada.get_by_label("Password").fill("a quiet garden at dusk")
        ada.get_by_role("button", name="Sign in").click()
        ada.wait_for_url(re.compile(r"/$"))
        ada.goto("/together/table/")
        ada.get_by_label("I miss…").fill("I miss Sunday pancakes")
        ada.get_by_role("button", name="Add to the table").click()
        body = ada.locator(".ritual .note-body", has_text="Sunday pancakes")
        assert not is_veiled(body)
        ada.get_by_text("Plan a day or write down when").first.click()
        ada.get_by_role("button", name="Write it down").first.click()
        ada.locator(".flash", has_text="Written down").wait_for()
        ada.goto("/together/place/")
        ada.get_by_role("button", name="Start a place").click()
        ada.get_by_label("Your lines").fill("A lighthouse, far away.")
        ada.get_by_role("button", name="Add my lines").click()
        ada.get_by_text("Sam's turn").wait_for()
        ada.goto("/together/agreements/listen?minutes=10&speaker=me")
        ada.get_by_text("Until").wait_for()
        shots(ada, "practices-nojs-timer")
        assert ada.watch.outside == []
    finally:
        context.close()
