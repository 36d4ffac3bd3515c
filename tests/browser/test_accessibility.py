"""Accessibility on every page: axe-core in both themes, the keyboard, and text at 200 %."""

import re

import pytest

from .conftest import new_phone
from .steps import make_couple, no_horizontal_overflow, serious_violations, small_targets

pytestmark = pytest.mark.browser

# Routes that are not pages a person reads.
NOT_PAGES = {"static", "main.healthz", "pwa.manifest", "pwa.service_worker", "idle.status"}
INTERACTIVE = (
    "a[href], button, input:not([type=hidden]), select, textarea, [tabindex]:not([tabindex='-1'])"
)

# Number every visible control, so the Tab walk can tell which ones it reached.
MARK_CONTROLS_JS = """sel => [...document.querySelectorAll(sel)]
  .filter(el => el.getClientRects().length && getComputedStyle(el).visibility !== 'hidden')
  .map((el, i) => { el.dataset.kb = i; return String(i); })"""
# The focused control's number, and whether the focus shows (outline on it or on its card).
FOCUSED_JS = """() => {
  const el = document.activeElement;
  const shown = node => node && getComputedStyle(node).outlineStyle !== 'none';
  return [el.dataset.kb || null, shown(el) || shown(el.closest('li.card'))
          || getComputedStyle(el).boxShadow !== 'none'];
}"""


@pytest.fixture(scope="module")
def pair(browser, server):
    made = make_couple(new_phone, browser, server)
    yield made
    for context in made["contexts"]:
        context.close()
    assert made["ada"].watch.problems == []


def signed_in_pages(server, pair) -> list[str]:
    """Every GET page without arguments, plus a received note, a sent note and its delete page."""
    app = server.app
    plain = sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods and not rule.arguments and rule.endpoint not in NOT_PAGES
    )
    card = "/wishes/cards/attention-compliment-aloud"
    return [*plain, pair["received"], pair["sent"], pair["sent"] + "/delete", card]


ANONYMOUS_PAGES = [
    "/",
    "/login",
    "/register",
    "/forgot",
    "/offline",
    "/nowhere",
    "/pair/join/x",
    "/reset/x",
    "/unsubscribe/x",
]


def _check_page(page, path: str, shots, name: str) -> list[str]:
    page.goto(path)
    shots(page, name, full_page=True)
    return serious_violations(page)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_axe_violation_on_any_signed_in_page(pair, server, shots, scheme):
    ada = pair["ada"]
    ada.emulate_media(color_scheme=scheme)
    found, seen = [], 0
    named = {pair["received"]: "note-received", pair["sent"]: "note-sent"}
    named[pair["sent"] + "/delete"] = "note-delete"
    for path in signed_in_pages(server, pair):
        slug = named.get(path) or re.sub(r"[^a-z0-9]+", "-", path.strip("/")) or "home"
        found += _check_page(ada, path, shots, f"axe-{scheme}-{slug}")
        seen += 1
    assert seen >= 15
    assert found == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_axe_violation_on_pages_for_visitors_and_on_form_errors(
    browser, server, shots, scheme
):
    context, page = new_phone(browser, server)
    page.emulate_media(color_scheme=scheme)
    found = []
    for path in ANONYMOUS_PAGES:
        name = f"axe-{scheme}-anon-" + (re.sub(r"[^a-z0-9]+", "-", path.strip("/")) or "welcome")
        found += _check_page(page, path, shots, name)
    # A form that came back with errors, and the recovery kit shown after registering.
    page.goto("/register")
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("alert").first.wait_for()
    found += serious_violations(page)
    page.get_by_label("Email").fill(f"kit-{scheme}@example.com")
    page.get_by_label("Your name").fill("Kit")
    page.get_by_label("Password").fill("a quiet garden at dusk")
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("heading", name="Your recovery kit").wait_for()
    shots(page, f"axe-{scheme}-recovery-kit", full_page=True)
    found += serious_violations(page)
    context.close()
    assert found == []


def test_every_control_is_reachable_by_keyboard_with_a_visible_focus(pair, server):
    ada = pair["ada"]
    missing = []
    for path in signed_in_pages(server, pair):
        ada.goto(path)
        wanted = ada.evaluate(MARK_CONTROLS_JS, INTERACTIVE)
        reached, unstyled = set(), []
        ada.locator("body").focus()
        for _ in range(len(wanted) + 3):
            ada.keyboard.press("Tab")
            info = ada.evaluate(FOCUSED_JS)
            if info[0] is not None:
                reached.add(info[0])
                if not info[1]:
                    unstyled.append(info[0])
        # Radio buttons in a group share one tab stop; the arrow keys move between them.
        radios = ada.evaluate(
            "() => [...document.querySelectorAll('input[type=radio]:not(:checked)')]"
            ".map(el => el.dataset.kb)"
        )
        lost = set(wanted) - reached - set(radios)
        if lost or unstyled:
            missing.append((path, sorted(lost), unstyled))
    assert missing == []


def test_text_at_200_percent_reflows_without_loss(pair, server, shots):
    ada = pair["ada"]
    broken = []
    for path in [*signed_in_pages(server, pair), *ANONYMOUS_PAGES[1:3]]:
        ada.goto(path)
        ada.evaluate("document.documentElement.style.fontSize = '200%'")
        exit_box = ada.locator("#quick-exit").bounding_box()
        if not no_horizontal_overflow(ada) or exit_box["x"] + exit_box["width"] > 390:
            broken.append(path)
    ada.goto(pair["received"])
    ada.evaluate("document.documentElement.style.fontSize = '200%'")
    shots(ada, "text-200-note", full_page=True)
    assert broken == []


def test_form_errors_are_announced_and_focused(browser, server):
    context, page = new_phone(browser, server)
    page.goto("/login")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert").first
    assert "Please enter your email address." in alert.inner_text()
    email = page.get_by_label("Email")
    assert email.get_attribute("aria-invalid") == "true"
    assert email.get_attribute("aria-describedby") == "email-error"
    # The script puts the cursor where the problem is.
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'email'")
    context.close()


def test_touch_targets_are_at_least_44_px(pair, server, browser):
    small = []
    for path in signed_in_pages(server, pair):
        pair["ada"].goto(path)
        small += [(path, *target) for target in small_targets(pair["ada"])]
    context, page = new_phone(browser, server)
    for path in ANONYMOUS_PAGES:
        page.goto(path)
        small += [(path, *target) for target in small_targets(page)]
    context.close()
    assert small == []


def test_motion_is_dropped_when_the_phone_asks_for_less(browser, server):
    context, page = new_phone(browser, server)  # these contexts ask for reduced motion
    page.goto("/login")
    button = page.get_by_role("button", name="Sign in")
    assert button.evaluate("el => getComputedStyle(el).transitionDuration") == "0s"
    page.emulate_media(reduced_motion="no-preference")
    assert button.evaluate("el => getComputedStyle(el).transitionDuration") != "0s"
    context.close()
