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
