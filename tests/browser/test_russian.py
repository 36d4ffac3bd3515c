"""The two-partner journey once in Russian: every screen in Russian, nothing left in English.

Both phones ask for Russian (`Accept-Language: ru-RU`, as a Russian-speaking phone does). The
steps find controls by their place in the page, not by English words, and every page on the way
and every page of the signed-in app is checked: `<html lang="ru">`, no English word in what a
person reads (text, labels, placeholders, titles), and no serious axe violation.
"""

from __future__ import annotations

import re

import pytest

from ..conftest import PASSWORD
from .conftest import new_phone
from .steps import no_horizontal_overflow, serious_violations, unique_email

pytestmark = pytest.mark.browser

NOT_PAGES = {"static", "main.healthz", "pwa.manifest", "pwa.service_worker", "idle.status"}
# Everything a person reads or hears on a page: its text, and the words of its controls.
READ_JS = """() => {
  const parts = [document.title, document.body.innerText];
  for (const el of document.querySelectorAll('[placeholder],[title],[aria-label],[alt]')) {
    for (const a of ['placeholder', 'title', 'aria-label', 'alt']) {
      if (el.getAttribute(a)) parts.push(el.getAttribute(a));
    }
  }
  for (const el of document.querySelectorAll('input[type=submit],input[type=button]')) {
    parts.push(el.value);
  }
  return parts.join('\\n');
}"""
# What may stay in Latin letters: email addresses, web addresses, the recovery key's groups,
# IANA time zone names in the zone menus, "UTC", and the names below.
ALLOWED = [
    re.compile(r"\S+@\S+"),
    re.compile(r"https?://\S+"),
    re.compile(r"\b[A-Z0-9]{4,}(?:-[A-Z0-9]{4,})*\b"),
    re.compile(r"\b[A-Z][A-Za-z_]+/[A-Za-z_/+-]+\b"),
    re.compile(r"\bUTC\b"),
]
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
# Names that stay as they are in Russian: the other language named in itself, the key on the
# keyboard, the app's own name, and browsers and systems in the list of signed-in devices.
NAMES = {"English", "Shift", "Wishnotes", "Chrome", "Chromium", "Firefox", "Safari", "Edge"}
NAMES |= {"Linux", "Android", "iPhone", "iPad", "Mac", "Windows", "ChromeOS"}


def english_left(page) -> list[str]:
    text = page.evaluate(READ_JS)
    for pattern in ALLOWED:
        text = pattern.sub(" ", text)
    return sorted(set(LATIN_WORD.findall(text)) - NAMES)


def check(page, shots, name: str, problems: list) -> None:
    assert page.evaluate("document.documentElement.lang") == "ru", page.url
    left = english_left(page)
    if left:
        problems.append(f"{page.url}: English left: {left}")
    problems.extend(serious_violations(page))
    if not no_horizontal_overflow(page):
        problems.append(f"{page.url}: wider than the phone")
    shots(page, f"ru-{name}", full_page=True)


def submit(page, form_selector: str) -> None:
    page.locator(f"{form_selector} button[type=submit]").first.click()


def register(page, name: str, shots, problems) -> str:
    email = unique_email("ru")
    page.goto("/register")
    check(page, shots, "register", problems)
    page.fill("input[name=email]", email)
    page.fill("input[name=display_name]", name)
    page.fill("input[name=password]", PASSWORD)
    submit(page, "form:has(input[name=password])")
    page.locator(".recovery-key code").first.wait_for()
    check(page, shots, "recovery-kit", problems)
    groups = page.locator(".recovery-key code").all_inner_texts()
    number = int(re.search(r"(\d)", page.locator("label[for='typed']").inner_text()).group(1))
    page.fill("#typed", groups[number - 1])
    submit(page, "form:has(#typed)")
    page.wait_for_url(lambda url: "/recovery" not in url)
    check(page, shots, "kit-saved", problems)
    return email


def test_the_journey_in_russian_has_no_english_left_and_passes_axe(browser, server, shots):
    problems: list[str] = []
    contexts = []
    phones = []
    for _ in range(2):
        context, page = new_phone(browser, server, locale="ru-RU")
        contexts.append(context)
        phones.append(page)
    anya, sasha = phones

    for path in ["/", "/login", "/forgot", "/nowhere", "/pair/join/x", "/reset/x"]:
        anya.goto(path)
        check(anya, shots, "visitor-" + (re.sub(r"\W+", "-", path.strip("/")) or "home"), problems)

    register(anya, "Аня", shots, problems)
    register(sasha, "Саша", shots, problems)

    # Pair: Аня makes the invite link, Саша opens it and accepts.
    anya.goto("/pair/")
    check(anya, shots, "pair", problems)
    submit(anya, "form[action='/pair/invite']")
    link = anya.locator("#invite-link").input_value()
    check(anya, shots, "invite", problems)
    sasha.goto(link)
    check(sasha, shots, "join", problems)
    submit(sasha, "main form")
    sasha.locator(".flash").first.wait_for()
    check(sasha, shots, "paired", problems)

    # The week: suggested by one, accepted by the other.
    anya.goto("/week/")
    check(anya, shots, "week", problems)
    submit(anya, "form[action='/week/start']")
    anya.locator(".flash").first.wait_for()
    sasha.goto("/week/")
    submit(sasha, "form[action='/week/accept']")
    sasha.locator(".flash").first.wait_for()
    check(sasha, shots, "week-begun", problems)

    # A note each way, then each opens the one received.
    for page, text in (
        (sasha, "Мне бы хотелось неспешный завтрак вдвоём в субботу."),
        (anya, "Давай снова потанцуем на кухне."),
    ):
        page.goto("/notes/new")
        check(page, shots, "compose", problems)
        page.fill("textarea[name=body]", text)
        submit(page, "form[action='/notes/new']")
        page.locator(".flash").first.wait_for()
    anya.goto("/notes/")
    check(anya, shots, "inbox", problems)
    received = anya.locator(".list li a").first.get_attribute("href")
    anya.goto(received)
    assert "неспешный завтрак" in anya.locator("main").inner_text()
    check(anya, shots, "note", problems)

    # Every other page of the signed-in app.
    pages = sorted(
        rule.rule
        for rule in server.app.url_map.iter_rules()
        if "GET" in rule.methods and not rule.arguments and rule.endpoint not in NOT_PAGES
    )
    for path in pages:
        anya.goto(path)
        check(anya, shots, re.sub(r"\W+", "-", path.strip("/")) or "home", problems)
    assert len(pages) >= 15

    for context in contexts:
        context.close()
    assert not problems, "\n".join(problems)
    assert anya.watch.problems == [] and sasha.watch.problems == []
