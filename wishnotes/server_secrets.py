"""Server secrets: SECRET_KEY and PEPPER from the environment, or generated for development."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from wishnotes.errors import WishnotesError

SECRET_NAMES = {"SECRET_KEY": "WISHNOTES_SECRET_KEY", "PEPPER": "WISHNOTES_PEPPER"}
MIN_LENGTH = 32
FILENAME = "secrets.json"


class MissingSecret(WishnotesError):
    """Production was started without a secret it needs."""


def resolve(config: dict, *, instance_path: Path) -> dict[str, str]:
    """Return the secrets to use; outside production, generate them once into the instance."""
    given = {name: config.get(name) for name in SECRET_NAMES}
    for name, value in given.items():
        if value and len(value) < MIN_LENGTH:
            raise MissingSecret(
                f"{SECRET_NAMES[name]} must be at least {MIN_LENGTH} characters long."
            )
    missing = [name for name, value in given.items() if not value]
    if not missing:
        return given
    if config.get("ENV") == "production":
        names = ", ".join(SECRET_NAMES[name] for name in missing)
        raise MissingSecret(f"Production needs {names}; refusing to start without it.")
    stored = _load_or_create(instance_path / FILENAME)
    return {name: given[name] or stored[name] for name in SECRET_NAMES}


def _load_or_create(path: Path) -> dict[str, str]:
    """Read the development secrets file, creating it with mode 0600 on first run."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if all(isinstance(data.get(name), str) for name in SECRET_NAMES):
            return data
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        raise MissingSecret(
            f"Cannot read {path}: {exc}. Delete it to generate new secrets."
        ) from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {name: secrets.token_urlsafe(48) for name in SECRET_NAMES}
    # O_EXCL: two processes starting at once must not overwrite each other's secrets.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return json.loads(path.read_text(encoding="utf-8"))
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    return data
