"""Every key screen at 320, 360 and 390 px, light and dark: the tab bar fits on one row."""

import pytest
from sqlalchemy import update

from wishnotes.extensions import db
from wishnotes.models import User

from .steps import no_horizontal_overflow

pytestmark = pytest.mark.browser

WIDTHS = (320, 360, 390)
PAGES = {
    "home": "/",
    "inbox": "/notes/",
    "compose": "/notes/new",
    "week": "/week/",
    "settings": "/settings/",
    "emails": "/settings/emails",
    "support": "/support",
    "together": "/together/",
    "table": "/together/table/",
    "place": "/together/place/",
    "agreements": "/together/agreements/",
    "wishes": "/wishes/",
    "wish-card": "/wishes/cards/attention-compliment-aloud",
}

# Each tab's box, and where the bar sits in the viewport.
TABS_JS = """() => {
  const nav = document.querySelector('.mainnav');
  const tabs = [...nav.querySelectorAll('a')].map(a => a.getBoundingClientRect());
  const bar = nav.getBoundingClientRect();
  const cut = [...nav.querySelectorAll('a span')].some(s => s.scrollWidth > s.clientWidth + 1);
  return {tops: tabs.map(r => Math.round(r.top)), sizes: tabs.map(r => [r.width, r.height]), cut,
          bottom: Math.round(bar.bottom), height: window.innerHeight};
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", WIDTHS)
def test_key_screens_fit_narrow_phones_with_one_row_of_tabs(couple, shots, width, scheme):
    assert _fit_problems(couple, shots, width=width, scheme=scheme, prefix="size") == []


def test_russian_screens_with_their_longer_words_fit_the_narrowest_phone(couple, server, shots):
    with server.app.app_context():
        ada = User.email == couple["ada_email"]
        db.session.execute(update(User).where(ada).values(language="ru"))
        db.session.commit()
    assert _fit_problems(couple, shots, width=320, scheme="light", prefix="size-ru") == []


def _fit_problems(couple, shots, *, width: int, scheme: str, prefix: str) -> list:
    page = couple["ada"]
    page.set_viewport_size({"width": width, "height": 740})
    page.emulate_media(color_scheme=scheme)
    problems = []
    for name, path in {**PAGES, "note": couple["received"]}.items():
        page.goto(path)
        shots(page, f"{prefix}-{width}-{scheme}-{name}")
        tabs = page.evaluate(TABS_JS)
        if len(set(tabs["tops"])) != 1:
            problems.append((name, "tabs wrap", tabs["tops"]))
        if tabs["cut"]:
            problems.append((name, "a tab label is cut short"))
        if any(w < 44 or h < 44 for w, h in tabs["sizes"]):
            problems.append((name, "small tab", tabs["sizes"]))
        if tabs["bottom"] != tabs["height"]:
            problems.append((name, "bar not at the bottom", tabs))
        if not no_horizontal_overflow(page):
            problems.append((name, "sideways scroll"))
    return problems


def test_on_a_desktop_the_tabs_sit_under_the_top_bar(couple, shots):
    page = couple["ada"]
    page.set_viewport_size({"width": 1200, "height": 800})
    page.goto("/")
    shots(page, "size-1200-home")
    tabs = page.evaluate(TABS_JS)
    assert len(set(tabs["tops"])) == 1 and tabs["tops"][0] < 120
