"""What a person does in the browser: register, save the kit, sign in, pair; and the page checks."""

from __future__ import annotations

import re
import uuid

from axe_playwright_python.sync_playwright import Axe

from ..conftest import PASSWORD

SERIOUS = {"serious", "critical"}
_axe = Axe()


def unique_email(name: str) -> str:
    return f"{name.lower()}-{uuid.uuid4().hex[:10]}@example.com"


def register(page, name: str, *, email: str | None = None, path: str = "/register") -> str:
    """Create an account through the form and confirm the recovery kit; return the email."""
    email = email or unique_email(name)
    page.goto(path)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    save_kit(page)
    return email


def save_kit(page) -> None:
    """Read the recovery kit shown once and type back the group it asks for."""
    page.get_by_role("heading", name="Your recovery kit").wait_for()
    groups = page.locator(".recovery-key code").all_inner_texts()
    assert len(groups) == 8
    asked = page.locator("label[for='typed']").inner_text()
    number = int(re.search(r"type group (\d)", asked).group(1))
    page.get_by_label(asked).fill(groups[number - 1])
    page.get_by_role("button", name="I have saved it").click()
    page.get_by_text("Your recovery kit is saved").wait_for()


def sign_in(page, email: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$"))


def make_invite(page) -> str:
    """Make an invite link on the pairing page and return it."""
    page.goto("/pair/")
    page.get_by_role("button", name=re.compile("Make (an invite|a new) link")).click()
    return page.get_by_label("Invite link").input_value()


def accept_invite(page, link: str) -> None:
    page.goto(link)
    page.get_by_role("button", name="Accept and pair").click()
    page.get_by_text("are now paired").wait_for()


# axe's default rules plus target-size (WCAG 2.2 AA), which axe leaves off by default.
AXE_OPTIONS = {"resultTypes": ["violations"], "rules": {"target-size": {"enabled": True}}}


def serious_violations(page) -> list[str]:
    """Run axe-core on the page; return its serious and critical violations, readably."""
    results = _axe.run(page, options=AXE_OPTIONS)
    return [
        f"{v['id']} ({v['impact']}) on {page.url}: "
        + "; ".join(node["html"][:120] for node in v["nodes"][:3])
        for v in results.response["violations"]
        if v["impact"] in SERIOUS
    ]


def no_horizontal_overflow(page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1"
    )


def is_veiled(locator) -> bool:
    """Whether a note body shows soft shapes instead of words (transparent text, blurred shadow)."""
    return locator.evaluate(
        "el => { const s = getComputedStyle(el);"
        " return s.color === 'rgba(0, 0, 0, 0)' && s.textShadow.includes('px'); }"
    )


def start_week(page, partner) -> None:
    """Suggest a week on one phone and accept it on the partner's."""
    page.goto("/week/")
    page.get_by_role("button", name=re.compile("Suggest this week to")).click()
    page.locator(".flash", has_text="Your week is suggested").wait_for()
    partner.goto("/week/")
    partner.get_by_role("button", name="Begin the week together").click()
    partner.locator(".flash", has_text="Your week is set").wait_for()


def write_note(page, text: str) -> None:
    page.goto("/notes/new")
    page.get_by_label("Your note").fill(text)
    page.get_by_role("button", name="Send the note").click()
    page.locator(".flash", has_text="on its way").wait_for()


def first_note_path(page, box: str = "/notes/") -> str:
    """Return the path of the newest note in the inbox (or another list)."""
    page.goto(box)
    return page.locator(".list li a").first.get_attribute("href")


def make_couple(new_phone, browser, server) -> dict:
    """Ada and Sam on two phones: registered, paired, a week started, a note each way."""
    ada_context, ada = new_phone(browser, server)
    sam_context, sam = new_phone(browser, server)
    ada_email = register(ada, "Ada")
    register(sam, "Sam")
    link = make_invite(ada)
    accept_invite(sam, link)
    start_week(ada, sam)
    write_note(sam, "I would like a slow breakfast together on Saturday.")
    write_note(ada, "It would please me if we danced in the kitchen again.")
    return {
        "ada": ada,
        "sam": sam,
        "ada_email": ada_email,
        "contexts": [ada_context, sam_context],
        "received": first_note_path(ada),
        "sent": first_note_path(ada, "/notes/sent"),
    }


# Controls smaller than 44 x 44 CSS px. A checkbox or radio counts with its label (the label is
# what a finger taps); a link inside running text is exempt, as in WCAG 2.5.5.
SMALL_TARGETS_JS = """
() => [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea')]
  .filter(el => el.getClientRects().length && !el.closest('.skip'))
  .filter(el => !(el.tagName === 'A' && [...el.parentNode.childNodes].some(
      n => n.nodeType === 3 && n.textContent.trim() && !el.parentNode.matches('li'))
      && getComputedStyle(el).display === 'inline'))
  .map(el => {
    let target = el;
    if (el.type === 'checkbox' || el.type === 'radio') target = el.closest('label') || el;
    if (el.matches('li.card > a')) target = el.closest('li.card');
    const r = target.getBoundingClientRect();
    return [el.outerHTML.slice(0, 90), Math.round(r.width), Math.round(r.height)];
  })
  .filter(([, w, h]) => w < 44 || h < 44)
"""


def small_targets(page) -> list:
    return page.evaluate(SMALL_TARGETS_JS)
