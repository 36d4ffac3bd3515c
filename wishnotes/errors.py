"""Domain errors raised by the services; views turn them into calm messages.

Messages are lazy (`_l`): an error's `message` reads as plain text in the language of the
request that shows it, so views can flash it, join it or hand it to a template as they are.
"""

from __future__ import annotations

from wishnotes.i18n import _l


class _Message:
    """An error's `message`: stored as given (lazy or not), always read as a plain str."""

    def __init__(self, default: object) -> None:
        self.default = default

    def __get__(self, obj: object, owner: type | None = None) -> str:
        value = self.default if obj is None else obj.__dict__.get("_message", self.default)
        return str(value)

    def __set__(self, obj: object, value: object) -> None:
        obj.__dict__["_message"] = value


class WishnotesError(Exception):
    """Base class for every error a service raises on purpose."""

    message = _l("Something went wrong.")

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        said = cls.__dict__.get("message")
        if said is not None and not isinstance(said, _Message):
            cls.message = _Message(said)

    def __init__(self, message: str | None = None) -> None:
        if not message:
            said = next(
                c.__dict__["message"] for c in type(self).__mro__ if "message" in c.__dict__
            )
            message = said.default if isinstance(said, _Message) else said
        super().__init__(message)
        self.message = message


WishnotesError.message = _Message(WishnotesError.__dict__["message"])


class InvalidInput(WishnotesError):
    """A value a user typed cannot be used; `field` names the form field it belongs to."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# --- accounts -----------------------------------------------------------------------------


class InvalidCredentials(WishnotesError):
    # The same words for an unknown email and a wrong password, on purpose.
    message = _l("That email and password do not match an account.")


class EmailTaken(InvalidInput):
    def __init__(self) -> None:
        super().__init__(_l("An account with this email already exists."), field="email")


class KdfBusy(WishnotesError):
    """Every Argon2id slot of the machine stayed busy for the longest wait allowed."""

    message = _l("Many people are signing in right now. Please try again in a moment.")

    def __init__(self, *, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after


class StoredKdfRefused(WishnotesError):
    """KDF parameters read from a row are outside the floor and ceiling: a row was tampered with.

    Refused before any Argon2id run, so a database writer cannot make a sign-in exhaust memory.
    """

    message = _l(
        "This account cannot be opened just now. Nothing was changed. Please tell the people "
        "who run this service, so they can look into it."
    )


class Locked(WishnotesError):
    """The keys of this login are not unlocked (no key session, or it timed out)."""

    message = _l("Your notes are locked. Enter your password to open them.")


class ResetLinkInvalid(WishnotesError):
    message = _l("This link is not valid any more. You can ask for a new one.")


class ResetLinkExpired(ResetLinkInvalid):
    message = _l("This link has expired; links work for one hour. You can ask for a new one.")


class ResetLinkUsed(ResetLinkInvalid):
    message = _l("This link has already been used. You can ask for a new one.")


# --- pairing ------------------------------------------------------------------------------


class AlreadyPaired(WishnotesError):
    message = _l("You are already paired with a partner.")


class NotPaired(WishnotesError):
    message = _l("You are not paired with a partner yet.")


class InviteInvalid(WishnotesError):
    message = _l("This invite link is not valid. Ask your partner for a new one.")


class InviteExpired(InviteInvalid):
    message = _l("This invite link has expired. Ask your partner for a new one.")


class InviteUsed(InviteInvalid):
    message = _l(
        "This invite link has already been used: each link works once. If it was you, you are "
        "paired already; sign in to see. If not, ask your partner for a new link."
    )


class InviteRevoked(InviteInvalid):
    message = _l("This invite link was withdrawn. Ask your partner for a new one.")


class SelfInvite(InviteInvalid):
    message = _l("This is your own invite link. Send it to your partner instead.")


class InviterPaired(InviteInvalid):
    message = _l(
        "The person who sent this link is paired with someone else now, so it no longer works. "
        "If you expected otherwise, talk to them directly."
    )


class InviteKeysChanged(InviteInvalid):
    """The inviter's keys in the database are not the ones the link's secret vouches for."""

    message = _l(
        "This invite link could not be checked against your partner's keys, so nothing was "
        "paired. Ask your partner for a new link."
    )


# --- crypto -------------------------------------------------------------------------------


class CryptoUnavailable(WishnotesError):
    message = "The installed cryptography library lacks Argon2id or HPKE (ML-KEM-768+X25519)."


class DecryptionFailed(WishnotesError):
    """Any failure to open a wrapped key or an envelope; one generic message on purpose."""

    message = _l("This could not be opened.")


# --- notes --------------------------------------------------------------------------------


class NoteNotFound(WishnotesError):
    """No such note for this user: unknown, malformed, another pair's, or not theirs to use."""

    message = _l("There is no note at this address.")


class KeyChanged(WishnotesError):
    """The partner's public keys in the database differ from the ones pinned in the keyring."""

    message = _l(
        "Your partner's key has changed since you paired, so nothing was opened or sent. "
        "Compare your safety numbers with your partner, in person or on a call you trust."
    )


class KeyringRolledBack(KeyChanged):
    """The keyring in the database is older than one this browser already saw: put back."""

    message = _l(
        "Your list of trusted keys on the server is older than one this device has already "
        "seen, so nothing was opened or sent. Compare your safety numbers with your partner, in "
        "person or on a call you trust."
    )


# --- week and email -----------------------------------------------------------------------


class NoWeek(WishnotesError):
    message = _l("There is no week under way just now.")


class WeekInProgress(WishnotesError):
    message = _l("A week is already under way. You can finish it first, whenever you like.")


class WeekAlreadyPaused(WishnotesError):
    message = _l("The week is already paused.")


class WeekNotPaused(WishnotesError):
    message = _l("The week is not paused.")


class NothingToAccept(WishnotesError):
    # The one who proposed a week waits for the other; a week already running needs no yes.
    message = _l("There is no week waiting for your answer just now.")


class PausedByPartner(WishnotesError):
    # Says nothing about why: a pause needs no reason, and the other partner sees only "paused".
    message = _l("The week is paused for now. It goes on when it is resumed.")


class UnsubscribeLinkInvalid(WishnotesError):
    message = _l("This link is not valid. You can change your emails in your settings.")


class MailNotConfigured(WishnotesError):
    """Emails cannot be built or sent: BASE_URL or the SMTP settings are missing or unsafe."""

    message = "Emails are not set up on this server."


class DeliveryError(WishnotesError):
    """The SMTP server did not take a message. `reason` is a short code and text, never a body."""

    message = "The email could not be delivered."

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:500]


class DeliveryDeferred(DeliveryError):
    """A temporary failure tied to one message (4xx to RCPT TO or DATA): try it again later."""


class ConnectionLost(DeliveryDeferred):
    """The connection dropped or timed out while one message was under way (RCPT TO or DATA).

    The relay may have taken the message (a late reply to DATA): it is tried again later on a
    new connection, with the same Message-ID.
    """


class DeliveryRejected(DeliveryError):
    """A permanent refusal tied to one message (5xx to RCPT TO or DATA); given up after a set
    number of such refusals."""


class SessionRefused(DeliveryError):
    """The relay would not take mail at all in this session, before any message was handed over:
    a refusal at the greeting, EHLO, STARTTLS, AUTH or MAIL FROM. It says nothing about any one
    message, so it counts against none: the batch ends and the relay is tried again later."""


class ServerUnavailable(SessionRefused):
    """The relay cannot be reached (refused, timed out, TLS failed) or hung up between messages."""


class EarlierKeysLocked(DecryptionFailed):
    """A note sealed to keys the user had before a fresh start, which are still locked."""

    message = _l(
        "This note was sealed to the keys you had before you started again. It opens again if "
        "your old password or recovery key turns up."
    )


# --- the practices around the notes -------------------------------------------------------


class PracticeNotFound(WishnotesError):
    """No such item for this user: unknown, malformed, another pair's, or not theirs to use."""

    message = _l("There is nothing at this address.")


class NotYourTurn(WishnotesError):
    message = _l("It is your partner's turn just now. Your words are still here for later.")


class PlaceOpen(WishnotesError):
    message = _l("A place is already open. You can end it first, whenever you like.")


class PlaceEnded(WishnotesError):
    message = _l("This place has ended. It stays here to read, and a new one can begin.")


class AgreementSettled(WishnotesError):
    """Accepting something already in effect or ended, or ending what has ended."""

    message = _l("This agreement has changed meanwhile; here is how it stands now.")


# --- mutual wishes ----------------------------------------------------------------------------


class CardNotFound(WishnotesError):
    message = _l("There is no such card.")


class TooManyChanges(WishnotesError):
    message = _l(
        "You have changed several answers this week. New answers are always welcome; "
        "changing one more can wait a few days."
    )
