"""`wishnotes bench`: the benchmark group with its commands, imported only when it runs."""

from __future__ import annotations

from wishnotes.bench import bench
from wishnotes.bench_crypto import crypto_command
from wishnotes.bench_emails import bench_emails
from wishnotes.bench_history import history_command
from wishnotes.bench_notes import notes_command
from wishnotes.bench_pages import pages as bench_pages

for command in (notes_command, bench_emails, bench_pages, crypto_command, history_command):
    bench.add_command(command)

__all__ = ["bench"]
