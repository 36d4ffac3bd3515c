"""The `wishnotes` command."""

import re
import subprocess
import sys
from datetime import UTC, datetime

from sqlalchemy import select

from wishnotes import accounts
from wishnotes.cli import main


def test_help_lists_every_command(runner):
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "db", "shell", "routes"):
        assert command in result.output


def test_console_script_runs_outside_the_test_process(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "wishnotes.cli", "--help"],
        capture_output=True,
        text=True,
        env={"WISHNOTES_INSTANCE_PATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout


def test_serve_refuses_a_bad_port(runner):
    result = runner.invoke(main, ["serve", "--port", "70000"])
    assert result.exit_code != 0
    assert "70000" in result.output


def _run_cli(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "wishnotes.cli", *args],
        capture_output=True,
        text=True,
        env={"WISHNOTES_INSTANCE_PATH": str(tmp_path), "PATH": "/usr/bin:/bin", **env},
        timeout=60,
        check=False,
    )


def test_help_lists_only_wishnotes_commands_with_whole_descriptions(tmp_path):
    result = _run_cli(tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for command in ("serve", "worker", "db", "emails", "demo", "bench", "shell", "routes"):
        assert f"\n  {command} " in out
    # Flask's own options and Flask-Limiter's maintenance command are not Wishnotes's.
    for foreign in ("--env-file", "--app", "--debug", "Flask", "limiter"):
        assert foreign not in out
    commands = out.split("Commands:", 1)[1]
    assert "..." not in commands  # no description is cut short
    assert "--version" in out


def test_version_prints_the_wishnotes_version(tmp_path):
    from importlib.metadata import version

    result = _run_cli(tmp_path, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wishnotes {version('wishnotes')}"


def test_help_does_not_import_the_heavy_parts(tmp_path):
    """Help stays fast: no app, no SQLAlchemy, no crypto, no waitress, no Playwright."""
    probe = (
        "import sys\n"
        "from wishnotes.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('flask', 'sqlalchemy', 'cryptography', 'waitress', 'playwright',"
        " 'flask_limiter', 'huey') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={"WISHNOTES_INSTANCE_PATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr


def test_shell_and_routes_still_run_in_the_app(runner):
    result = runner.invoke(main, ["routes"])
    assert result.exit_code == 0, result.output
    assert "notes.inbox" in result.output


def test_demo_makes_a_pair_with_notes_answers_and_a_week_in_development(tmp_path):
    env = {"WISHNOTES_ENV": "development"}
    result = _run_cli(tmp_path, "demo", **env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    password = re.search(r"password: (\S+)", out).group(1)
    assert "demo-ada@example.com" in out and "demo-sam@example.com" in out
    assert "/login" in out

    from wishnotes import create_app, notes, program
    from wishnotes.extensions import db
    from wishnotes.models import User

    app = create_app(ENV="development", INSTANCE_PATH=str(tmp_path))
    with app.app_context():
        ada = db.session.scalar(select(User).where(User.email == "demo-ada@example.com"))
        unlocked = accounts.authenticate(
            email=ada.email, password=password, kdf=app.extensions["wishnotes.kdf"]
        )
        assert program.status(pair=ada.pair, now=datetime.now(UTC)).state == program.ACTIVE
        assert len(notes.sent(user=ada)) == 2 and len(notes.inbox(user=ada)) == 1
        first = next(row for row in notes.sent(user=ada) if row.answered_at)
        opened = notes.open_note(
            user=ada, user_key=unlocked.user_key, note_id=first.id, now=datetime.now(UTC)
        )
        assert opened.answer == "talk" and opened.reply
        db.engine.dispose()
    again = _run_cli(tmp_path, "demo", **env)
    assert again.returncode != 0 and "exists already" in again.stderr


def test_demo_is_refused_outside_development(tmp_path):
    result = _run_cli(
        tmp_path,
        "demo",
        WISHNOTES_ENV="production",
        WISHNOTES_SECRET_KEY="s" * 40,
        WISHNOTES_PEPPER="p" * 40,
        WISHNOTES_BASE_URL="https://notes.example.org",
    )
    assert result.returncode != 0
    assert "development only" in result.stderr


def test_first_run_serve_says_where_emails_go_logs_requests_and_links_to_its_own_port(tmp_path):
    """`wishnotes serve --port N` on the defaults: emails land in the instance, links use N."""
    import email
    import http.cookiejar
    import signal
    import time
    import urllib.parse
    import urllib.request

    from .smtp import free_port

    instance = tmp_path / "instance"
    env = {"WISHNOTES_ENV": "development"}
    assert _run_cli(instance, "demo", **env).returncode == 0
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "wishnotes.cli", "serve", "--port", str(port)],
        env={"PATH": "/usr/bin:/bin", "WISHNOTES_INSTANCE_PATH": str(instance), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                page = opener.open(f"{base}/forgot", timeout=2).read().decode()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        form = {"csrf_token": token, "email": "demo-ada@example.com"}
        opener.open(f"{base}/forgot", data=urllib.parse.urlencode(form).encode(), timeout=10)
        folder = instance / "mail"
        while not (folder.exists() and list(folder.glob("*.eml"))):
            assert time.monotonic() < deadline, "no email was written"
            time.sleep(0.2)
        message = email.message_from_bytes(next(folder.glob("*.eml")).read_bytes())
        text = message.get_payload()[0].get_payload(decode=True).decode()
        assert f"{base}/reset/" in text  # the port this server really listens on
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=30)
    assert f"Emails are written to {folder}" in output
    assert "POST reset.forgot 302" in output or "POST reset.forgot 200" in output
    assert re.search(r"GET reset\.forgot 200 \d+ms", output)
    assert "/forgot" not in output and "/reset/" not in output  # endpoints, never paths


def test_serve_warns_when_no_smtp_server_listens(tmp_path):
    from wishnotes.commands import where_emails_go

    from .smtp import free_port

    port = free_port()
    said = where_emails_go({"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port, "MAIL_FOLDER": None})
    assert f"127.0.0.1:{port}" in said and "Warning: nothing answers there" in said
