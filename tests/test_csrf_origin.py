"""CSRF over HTTPS: forms work with `Referrer-Policy: no-referrer`; cross-origin posts are refused.

Browsers send no Referer under that policy (and `Origin: null` on form posts), so the check that a
post comes from our own pages rests on `Sec-Fetch-Site`, then on `Origin` where it is a real one.
"""

import pytest

from .conftest import PASSWORD, csrf_token, register_user

HTTPS = "https://wishnotes.test"


@pytest.fixture
def https_client(app):
    app.config["SESSION_COOKIE_SECURE"] = True
    return app.test_client()


def _login(client, headers):
    token = csrf_token(client, f"{HTTPS}/login")
    form = {"email": "ada@example.com", "password": PASSWORD, "csrf_token": token}
    return client.post(f"{HTTPS}/login", data=form, headers=headers)


def test_a_form_posted_over_https_by_a_browser_sending_no_referer_works(app, https_client):
    register_user(app)
    # What Chromium sends for a form on our page under `Referrer-Policy: no-referrer`.
    response = _login(https_client, {"Sec-Fetch-Site": "same-origin", "Origin": "null"})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"].endswith("/")


@pytest.mark.parametrize("headers", [{}, {"Origin": HTTPS}])
def test_a_form_over_https_from_a_client_without_fetch_metadata_works(app, https_client, headers):
    register_user(app)
    assert _login(https_client, headers).status_code == 302


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain (cookie tossing) is not us
        {"Origin": "https://evil.example"},
        {"Origin": "http://wishnotes.test"},  # the same host over plain http is another origin
    ],
)
def test_a_post_from_another_origin_is_refused_even_with_a_valid_token(app, https_client, headers):
    register_user(app)
    response = _login(https_client, headers)
    assert response.status_code == 400
    assert "Please try again" in response.get_data(as_text=True)


def test_the_one_click_unsubscribe_stays_open_to_mail_providers(app):
    # RFC 8058: the provider posts with no session and from its own origin; the signed token is
    # the proof. The origin check must not apply to views exempt from CSRF.
    client = app.test_client()
    response = client.post(
        f"{HTTPS}/unsubscribe/not-a-valid-token",
        data={"List-Unsubscribe": "One-Click"},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    # Past the CSRF layer: the token itself is judged (and this one is not valid).
    assert response.status_code == 404


def test_pages_still_send_no_referrer_to_other_sites(client):
    assert client.get("/login").headers["Referrer-Policy"] == "no-referrer"
