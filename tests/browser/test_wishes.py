"""Two partners answer wish cards alone on their phones and find one shared wish."""

import pytest
from playwright.sync_api import expect

from wishnotes import cards

from .steps import is_veiled

pytestmark = pytest.mark.browser

BOTH_WANT = "time-slow-breakfast"
ONLY_ADA = "rituals-evening-tea"


def _answer(page, key: str, label: str) -> None:
    page.goto(f"/wishes/cards/{key}")
    page.get_by_role("button", name=label, exact=True).click()
    page.wait_for_url(lambda url: key not in url)


def test_two_partners_find_one_shared_wish_and_a_refusal_stays_hidden(couple, shots):
    ada, sam = couple["ada"], couple["sam"]
    shared, refused = cards.deck().card(BOTH_WANT), cards.deck().card(ONLY_ADA)

    ada.goto("/")
    ada.get_by_role("link", name="Wish cards").click()
    shots(ada, "wishes-01-intro", full_page=True)
    ada.get_by_role("link", name="Start with the first card").click()
    shots(ada, "wishes-02-first-card")
    _answer(ada, BOTH_WANT, "Yes")
    _answer(ada, ONLY_ADA, "Yes")
    ada.goto(f"/wishes/cards/{ONLY_ADA}")
    expect(ada.get_by_role("button", name="Yes", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )
    shots(ada, "wishes-03-answered-card")

    _answer(sam, BOTH_WANT, "Yes")
    _answer(sam, ONLY_ADA, "Not for me")

    for page, name in ((ada, "ada"), (sam, "sam")):
        page.goto("/wishes/both")
        body = page.locator(".note-body")
        assert is_veiled(body)
        shots(page, f"wishes-04-both-veiled-{name}")
        page.get_by_role("button", name="Show what you both want").click()
        expect(body).to_have_css("text-shadow", "none")
        text = body.inner_text()
        assert shared.text in text and refused.text not in text
        assert "Not for me" not in page.content()
        shots(page, f"wishes-05-both-shown-{name}", full_page=True)

    sam.goto("/wishes/cards?theme=rituals")
    assert sam.get_by_text("Your answer: Not for me").count() == 1  # her own answer, to her
    shots(sam, "wishes-06-list", full_page=True)
    ada.goto("/wishes/both")
    ada.get_by_role("button", name="Show what you both want").click()
    ada.get_by_role("link", name="Write a note about it").click()
    expect(ada.get_by_label("Your note")).to_have_value(f"{shared.text}. ")
    shots(ada, "wishes-07-compose-from-wish")
