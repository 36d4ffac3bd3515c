"""The `wishnotes` command."""

import subprocess
import sys

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
        "heavy = [m for m in ('sqlalchemy', 'cryptography', 'waitress', 'playwright',"
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
