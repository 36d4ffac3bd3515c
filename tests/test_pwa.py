"""The installable web app: manifest per look, service worker scope and contents, offline page."""

import json
import os
import re
from pathlib import Path

import pytest

from .conftest import login, register_user

SHELL_RE = re.compile(r"const SHELL = (\[.*?\]);")


def _shell(client) -> list[str]:
    body = client.get("/sw.js").get_data(as_text=True)
    return json.loads(SHELL_RE.search(body).group(1))


def test_default_manifest_is_discreet_and_installable(client):
    response = client.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response.mimetype == "application/manifest+json"
    manifest = response.get_json(force=True)
    assert manifest["name"] == manifest["short_name"] == "Notes"
    assert manifest["start_url"] == manifest["scope"] == manifest["id"] == "/"
    assert manifest["display"] == "standalone"
    sizes = {(icon["sizes"], icon["purpose"]) for icon in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    for icon in manifest["icons"]:
        assert "notebook" in icon["src"]
        image = client.get(icon["src"])
        assert image.status_code == 200
        assert image.mimetype == "image/png"
        image.close()


def test_named_manifest_carries_the_name_and_heart_icon(client):
    manifest = client.get("/manifest.webmanifest?look=named").get_json(force=True)
    assert manifest["name"] == "Wishnotes"
    assert all("heart" in icon["src"] for icon in manifest["icons"])


@pytest.mark.parametrize("look", ["loud", "", "x" * 5000, "named%00"])
def test_unknown_manifest_look_is_not_found(client, look):
    response = client.get(f"/manifest.webmanifest?look={look}")
    assert response.status_code == (200 if look == "" else 404)


def test_service_worker_is_served_from_the_root_with_its_scope_and_never_cached(client):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Service-Worker-Allowed"] == "/"
    assert response.headers["Cache-Control"] == "no-store"


def test_service_worker_stores_only_the_offline_page_and_static_files(client, app):
    shell = _shell(client)
    assert "/offline" in shell
    assert all(url == "/offline" or url.startswith("/static/") for url in shell)
    for url in shell:
        page = client.get(url)
        assert page.status_code == 200, url
        page.close()
    body = client.get("/sw.js").get_data(as_text=True)
    # Navigations go to the network first; only /static/ is answered from the cache.
    assert 'request.mode === "navigate"' in body
    assert 'url.pathname.startsWith("/static/")' in body


def test_service_worker_is_the_same_for_a_signed_in_user(client, app):
    anonymous = client.get("/sw.js").get_data(as_text=True)
    register_user(app)
    login(client)
    assert client.get("/sw.js").get_data(as_text=True) == anonymous


def test_offline_page_names_nobody_even_when_fetched_signed_in(client, app):
    register_user(app, email="ada@example.com", name="Adalind")
    login(client)
    response = client.get("/offline")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "No connection" in page
    assert "Adalind" not in page
    assert "ada@example.com" not in page
    assert "csrf" not in page
    assert "wn-idle-seconds" not in page
    assert "<title>Notes</title>" in page


def test_versioned_static_files_are_cached_for_a_year_and_plain_ones_are_not(client):
    shell = _shell(client)
    css = next(url for url in shell if "app.css" in url)
    versioned = client.get(css)
    assert "immutable" in versioned.headers["Cache-Control"]
    versioned.close()
    plain = client.get("/static/css/app.css")
    assert "immutable" not in plain.headers.get("Cache-Control", "")
    plain.close()


def test_asset_version_changes_with_the_file_content(app, tmp_path):
    from wishnotes.web.shell import asset_url

    static = tmp_path / "static"
    (static / "css").mkdir(parents=True)
    sheet = static / "css" / "x.css"
    sheet.write_text("a{}")
    app.static_folder = str(static)
    with app.test_request_context():
        first = asset_url("css/x.css")
        sheet.write_text("b{}")
        os.utime(sheet, (1, 1))  # a different mtime, as an edit would give
        second = asset_url("css/x.css")
    assert first != second
    assert first.startswith("/static/css/x.css?v=")


def test_the_stylesheet_goes_out_without_its_comments_and_indentation(app, client):
    """The comments in app.css are for whoever edits it; phones on slow links get the rules."""
    source = (Path(app.static_folder) / "css" / "app.css").read_text("utf-8")
    css = next(url for url in _shell(client) if "app.css" in url)
    response = client.get(css)
    sent = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/css"
    assert "/*" in source and "/*" not in sent
    assert len(sent.encode()) < len(source.encode()) - 3000
    # Every rule is still there, word for word.
    squash = lambda text: re.sub(r"\s+", "", re.sub(r"/\*.*?\*/", "", text, flags=re.S))  # noqa: E731
    assert squash(sent) == squash(source)
    assert client.get("/static/css/nothing.css").status_code == 404
    assert client.get("/static/css/../../wishnotes/__init__.py").status_code == 404
