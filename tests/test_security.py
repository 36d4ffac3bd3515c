"""Headers, error pages, body limits, encodings and the health check."""

import pytest

from wishnotes.extensions import db

from .conftest import PASSWORD, csrf_token, login, register_user


def test_every_response_carries_the_security_headers(client):
    for path in ("/", "/login", "/does-not-exist"):
        response = client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"


def test_pages_have_no_inline_script(client):
    for path in ("/", "/login", "/register"):
        page = client.get(path).get_data(as_text=True)
        assert "<script>" not in page and " on" + "click=" not in page


def test_not_found_and_wrong_method_pages_leak_nothing(client):
    missing = client.get("/nothing/here")
    assert missing.status_code == 404
    assert "There is nothing at this address." in missing.get_data(as_text=True)
    wrong = client.delete("/login")
    assert wrong.status_code == 405
    for response in (missing, wrong):
        body = response.get_data(as_text=True)
        assert "Traceback" not in body and "werkzeug" not in body.lower()


def test_unexpected_error_shows_a_calm_page_without_trace(app):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "secret internals" not in body and "Traceback" not in body
    assert "Something went wrong" in body


def test_a_ten_megabyte_body_gets_413(client):
    response = client.post(
        "/login",
        data=b"email=" + b"a" * (10 * 1024 * 1024),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413
    assert "Too long" in response.get_data(as_text=True)


def test_form_bytes_that_are_not_utf8_get_a_clear_400(client, app):
    register_user(app)
    token = csrf_token(client, "/login")
    body = f"csrf_token={token}&email=ada%40example.com&password=%ff%fe%fd".encode()
    response = client.post("/login", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert "could not be read" in response.get_data(as_text=True)


def test_health_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_health_reports_503_when_the_database_is_down(app, monkeypatch):
    from sqlalchemy.exc import OperationalError

    def broken(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("down"))

    with app.app_context():
        monkeypatch.setattr(db.session, "execute", broken)
        response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "database": "error"}


def test_forms_use_labels_and_autocomplete(client):
    page = client.get("/register").get_data(as_text=True)
    assert 'type="email"' in page and 'autocomplete="email"' in page
    assert 'autocomplete="name"' in page and 'autocomplete="new-password"' in page
    assert page.count("<label") >= 3
    login_page = client.get("/login").get_data(as_text=True)
    assert 'autocomplete="current-password"' in login_page


@pytest.mark.parametrize("path", ["/pair/", "/settings/"])
def test_signed_in_pages_are_never_cached(client, app, path):
    register_user(app)
    login(client)
    assert client.get(path).headers["Cache-Control"] == "no-store"


def _multipart(fields: dict[str, bytes], boundary: str = "wnboundary") -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + value
        + b"\r\n"
        for name, value in fields.items()
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


def test_multipart_form_bytes_that_are_not_utf8_get_the_same_400(client, app):
    register_user(app)
    login(client)
    token = csrf_token(client, "/pair/")
    body = _multipart({"csrf_token": token.encode(), "body": b"I would like \xff\xfe tea"})
    response = client.post(
        "/notes/new", data=body, content_type="multipart/form-data; boundary=wnboundary"
    )
    assert response.status_code == 400
    assert "could not be read" in response.get_data(as_text=True)


def test_a_multipart_form_in_utf8_still_works(client, app):
    register_user(app)
    token = csrf_token(client, "/login")
    body = _multipart(
        {
            "csrf_token": token.encode(),
            "email": b"ada@example.com",
            "password": PASSWORD.encode(),
        }
    )
    response = client.post(
        "/login", data=body, content_type="multipart/form-data; boundary=wnboundary"
    )
    assert response.status_code == 302
