"""Discretion, one test per feature: quick exit (button, Shift x3), no-store pages, blurred notes,
idle auto-lock, neutral tab titles, and a service worker that keeps nothing personal."""

import re

import pytest
from playwright.sync_api import expect

from ..conftest import PASSWORD
from .conftest import QUICK_EXIT_URL, new_phone
from .steps import is_veiled, register

pytestmark = pytest.mark.browser

SAM_NOTE = "I would like a slow breakfast together on Saturday."


def _history_length(page) -> int:
    return page.evaluate("history.length")


def test_quick_exit_button_replaces_the_page_with_a_neutral_site(couple):
    ada = couple["ada"]
    ada.goto("/notes/")
    ada.goto(couple["received"])
    before = _history_length(ada)
    ada.get_by_role("link", name="Exit").click()
    ada.wait_for_url(QUICK_EXIT_URL)
    assert _history_length(ada) == before  # replaced, not added
    ada.go_back()
    # Back leads to the page before the note, never to the note itself.
    assert ada.url.endswith("/notes/")
    assert ada.watch.outside == [QUICK_EXIT_URL]


def test_shift_pressed_three_times_leaves_at_once_but_typing_capitals_does_not(couple):
    ada = couple["ada"]
    ada.goto("/")
    ada.goto("/notes/new")
    box = ada.get_by_label("Your note")
    box.click()
    for letter in "IAM":  # capitals typed with Shift, as on a real keyboard
        ada.keyboard.down("Shift")
        ada.keyboard.press(f"Key{letter}")
        ada.keyboard.up("Shift")
    assert box.input_value() == "IAM"
    assert ada.url.endswith("/notes/new")
    before = _history_length(ada)
    for _ in range(3):
        ada.keyboard.press("Shift")
    ada.wait_for_url(QUICK_EXIT_URL)
    assert _history_length(ada) == before
    ada.go_back()
    assert re.search(r"/$", ada.url) and not ada.url.endswith("/notes/new")


def test_quick_exit_works_without_scripts_as_a_plain_link(browser, server):
    context, page = new_phone(browser, server, javascript=False)
    page.goto("/login")
    page.get_by_role("link", name="Exit").click()
    page.wait_for_url(QUICK_EXIT_URL)
    context.close()


def test_signed_in_pages_are_never_stored_so_back_after_sign_out_shows_nothing(couple):
    ada = couple["ada"]
    headers = {}
    ada.on(
        "response",
        lambda r: (
            r.request.is_navigation_request()
            and headers.setdefault(r.url, r.headers.get("cache-control"))
        ),
    )
    for path in ["/", "/notes/", couple["received"], "/week/", "/settings/"]:
        ada.goto(path)
    assert headers and set(headers.values()) == {"no-store"}
    ada.goto(couple["received"])
    ada.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    ada.wait_for_url("**/settings/")
    ada.get_by_role("button", name="Sign out").click()
    # Going back while the sign-out redirect is still in flight races Chromium's navigation.
    ada.wait_for_url("**/login")
    ada.wait_for_load_state()
    for _ in range(2):
        ada.go_back(wait_until="load")
    assert "/login" in ada.url
    assert SAM_NOTE not in ada.content()


def test_notes_stay_blurred_until_tapped_and_blur_again_when_the_page_is_hidden(couple, shots):
    ada = couple["ada"]
    ada.emulate_media(color_scheme="dark")
    ada.goto(couple["received"])
    body = ada.locator(".note-body")
    assert is_veiled(body)
    shots(ada, "note-blurred-dark")
    body.click()  # tapping the note itself reveals it
    expect(body).to_have_css("text-shadow", "none")
    assert ada.get_by_role("button", name="Hide").get_attribute("aria-expanded") == "true"
    shots(ada, "note-shown-dark")
    ada.evaluate(
        """() => { Object.defineProperty(document, 'visibilityState',
                     {value: 'hidden', configurable: true});
                   document.dispatchEvent(new Event('visibilitychange')); }"""
    )
    assert is_veiled(body)


def test_notes_stay_readable_if_the_script_cannot_load(couple):
    ada = couple["ada"]
    ada.route("**/static/js/app.js*", lambda route: route.abort())
    ada.goto(couple["received"])
    # Only the script can reveal a blurred note, so without it nothing is blurred.
    assert not is_veiled(ada.locator(".note-body"))
    ada.unroute("**/static/js/app.js*")


def test_turning_the_blur_off_shows_notes_plainly(couple):
    ada = couple["ada"]
    ada.goto("/settings/appearance/")
    ada.get_by_label("Blur notes until I tap them").uncheck()
    ada.get_by_role("button", name="Save").click()
    ada.goto(couple["received"])
    assert not is_veiled(ada.locator(".note-body"))
    assert ada.get_by_role("button", name="Show note").count() == 0


def test_idle_notes_lock_themselves_when_the_key_session_times_out(couple, server, shots):
    ada = couple["ada"]
    ada.clock.install()
    ada.goto(couple["received"])
    assert is_veiled(ada.locator(".note-body"))
    server.clock.advance(minutes=31)
    ada.clock.run_for(31 * 60 * 1000)
    ada.wait_for_url(re.compile(r"/unlock\?why=idle&next="))
    ada.get_by_role("heading", name="Unlock your notes").wait_for()
    ada.get_by_text("locked themselves after a quiet while").wait_for()  # says why
    assert SAM_NOTE not in ada.content()
    ada.clock.resume()  # let time flow again, so the screenshot's animation frames can run
    shots(ada, "idle-locked")
    ada.get_by_label("Password").fill(PASSWORD)
    ada.get_by_role("button", name="Unlock").click()
    ada.wait_for_url(re.compile(re.escape(couple["received"]) + "$"))


def test_typing_in_an_open_page_keeps_the_notes_unlocked(couple, server):
    ada = couple["ada"]
    ada.clock.install()
    ada.goto("/notes/new")
    box = ada.get_by_label("Your note")
    for _ in range(4):  # forty minutes of writing, a few words every ten minutes
        server.clock.advance(minutes=10)
        ada.clock.run_for(10 * 60 * 1000)
        with ada.expect_response(lambda r: r.url.endswith("/keys/idle")):
            box.press_sequentially("more ")
    assert ada.url.endswith("/notes/new")
    ada.get_by_role("button", name="Send the note").click()
    ada.locator(".flash", has_text="on its way").wait_for()


def test_tab_titles_stay_neutral_and_follow_the_chosen_look(couple):
    ada = couple["ada"]
    titles = set()
    for path in ["/", "/notes/", couple["received"], "/week/", "/settings/", "/pair/"]:
        ada.goto(path)
        titles.add(ada.title())
    assert titles == {"Notes"}
    ada.goto("/settings/appearance/")
    ada.get_by_role("radio", name=re.compile("^Named")).check()
    ada.get_by_role("button", name="Save").click()
    ada.goto(couple["received"])
    assert ada.title() == "Wishnotes"
    manifest = ada.locator("link[rel=manifest]").get_attribute("href")
    assert manifest.endswith("look=named")


def test_service_worker_keeps_only_the_shell_and_shows_the_offline_page(browser, server, shots):
    context, page = new_phone(browser, server, service_workers=True)
    register(page, "Ada")
    page.goto("/settings/")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.goto("/pair/")  # a page under the worker's control
    assert page.evaluate("!!navigator.serviceWorker.controller")
    stored = page.evaluate(
        """async () => { const urls = [];
             for (const name of await caches.keys()) {
               for (const request of await (await caches.open(name)).keys()) urls.push(request.url);
             }
             return urls; }"""
    )
    paths = [re.sub(r"^https?://[^/]+", "", url) for url in stored]
    assert "/offline" in paths
    assert all(path == "/offline" or path.startswith("/static/") for path in paths), paths
    offline_page = page.evaluate("caches.match('/offline').then(r => r.text())")
    assert "Ada" not in offline_page and "csrf" not in offline_page
    # Chromium's own verdict: the manifest, icons and worker make an installable app (the only
    # objection left is that a Playwright context is an incognito one).
    cdp = context.new_cdp_session(page)
    errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
    assert [e["errorId"] for e in errors] == ["in-incognito"]
    context.set_offline(True)
    page.goto("/settings/")
    page.get_by_role("heading", name="No connection just now").wait_for()
    shots(page, "offline")
    context.close()
