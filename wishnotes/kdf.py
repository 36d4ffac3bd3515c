"""Argon2id runs for logins: the server pepper, the target cost and a cap on concurrent runs."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from wishnotes import crypto

# Unknown accounts still pay one full KDF run, so timing does not tell which emails exist.
_DUMMY_SALT = bytes(16)


@dataclass(repr=False)
class KdfRunner:
    """Derive login keys with at most `max_concurrent` Argon2id runs at once (bounded memory)."""

    pepper: bytes
    params: crypto.KdfParams
    max_concurrent: int = 1
    _gate: threading.BoundedSemaphore = field(init=False)

    def __post_init__(self) -> None:
        if not crypto.kdf_params_ok(self.params):
            raise ValueError(f"KDF parameters {self.params} are below the floor {crypto.KDF_FLOOR}")
        if not crypto.kdf_params_bounded(self.params):
            raise ValueError(
                f"KDF parameters {self.params} are above the ceiling {crypto.KDF_CEILING}"
            )
        self._gate = threading.BoundedSemaphore(self.max_concurrent)

    def derive(
        self, password: str, *, salt: bytes, params: crypto.KdfParams
    ) -> tuple[bytes, bytes]:
        """Return (auth value, key-encryption key) for a password, waiting for a free slot."""
        with self._gate:
            return crypto.derive_login_keys(password, salt=salt, params=params, pepper=self.pepper)

    def burn(self, password: str) -> None:
        """Spend one KDF run at the target cost and throw the result away."""
        self.derive(password, salt=_DUMMY_SALT, params=self.params)
