"""Domain errors raised by the services; views turn them into calm messages."""


class WishnotesError(Exception):
    """Base class for every error a service raises on purpose."""

    message = "Something went wrong."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message


class InvalidInput(WishnotesError):
    """A value a user typed cannot be used; `field` names the form field it belongs to."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# --- accounts -----------------------------------------------------------------------------


class InvalidCredentials(WishnotesError):
    # The same words for an unknown email and a wrong password, on purpose.
    message = "That email and password do not match an account."


class EmailTaken(InvalidInput):
    def __init__(self) -> None:
        super().__init__("An account with this email already exists.", field="email")


class Locked(WishnotesError):
    """The keys of this login are not unlocked (no key session, or it timed out)."""

    message = "Your notes are locked. Enter your password to open them."


# --- pairing ------------------------------------------------------------------------------


class AlreadyPaired(WishnotesError):
    message = "You are already paired with a partner."


class NotPaired(WishnotesError):
    message = "You are not paired with a partner yet."


class InviteInvalid(WishnotesError):
    message = "This invite link is not valid. Ask your partner for a new one."


class InviteExpired(InviteInvalid):
    message = "This invite link has expired. Ask your partner for a new one."


class InviteUsed(InviteInvalid):
    message = "This invite link has already been used."


class InviteRevoked(InviteInvalid):
    message = "This invite link was withdrawn. Ask your partner for a new one."


class SelfInvite(InviteInvalid):
    message = "This is your own invite link. Send it to your partner instead."


class InviterPaired(InviteInvalid):
    message = "The person who sent this link is already paired."


# --- crypto -------------------------------------------------------------------------------


class CryptoUnavailable(WishnotesError):
    message = "The installed cryptography library lacks Argon2id or HPKE (ML-KEM-768+X25519)."


class DecryptionFailed(WishnotesError):
    """Any failure to open a wrapped key or an envelope; one generic message on purpose."""

    message = "This could not be opened."
