"""Housekeeping: delete what has ended, so the database keeps only what is still needed.

One pass deletes expired key sessions and logins, invites and reset links that can no longer be
used, and empties the bodies of emails finished longer than OUTBOX_RETENTION ago. It runs every
hour as a periodic job (`tasks.housekeeping_pass`, in `wishnotes worker` and in the consumer
inside `wishnotes serve`) and once on demand with `wishnotes housekeeping`, for cron.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wishnotes import keysessions, logins, outbox, pairing, recovery


@dataclass(frozen=True)
class Report:
    """How many rows one pass removed (or, for emails, emptied)."""

    key_sessions: int
    logins: int
    invites: int
    reset_links: int
    email_bodies: int

    def summary(self) -> str:
        return (
            f"Removed {self.key_sessions} key sessions, {self.logins} logins, {self.invites} "
            f"invites and {self.reset_links} reset links; emptied {self.email_bodies} email bodies."
        )


def run(*, now: datetime, config: Mapping[str, Any]) -> Report:
    """Run one housekeeping pass as of `now`, with the timeouts and retention of `config`."""
    return Report(
        key_sessions=keysessions.purge_expired(
            now=now, idle=config["KEY_SESSION_IDLE"], absolute=config["KEY_SESSION_ABSOLUTE"]
        ),
        logins=logins.purge_expired(now=now),
        invites=pairing.purge_finished_invites(now=now),
        reset_links=recovery.purge_finished_resets(now=now),
        email_bodies=outbox.empty_finished_bodies(now=now, retention=config["OUTBOX_RETENTION"]),
    )
