"""Seal a partner's words to the pair and open them again: the note envelope of every kind.

Notes, their answers and the practices (rituals, places, agreements) all store what a partner
writes the same way (DESIGN §4): one signed envelope per text, sealed to the reader and, unless
`sealed`, to the writer, with a header that names its `kind`, the item it belongs to and the
pair. Opening compares that header with what the row says, so an envelope copied to another row,
item or pair, or changed in any byte, is refused with DecryptionFailed.

Keys come from the writer's and the viewer's keyring (`keyring.Keyring.trusted` and `.signer`):
whatever decides which partner keys are trusted decides it for every kind at once.
"""

from __future__ import annotations

from datetime import datetime

from wishnotes import crypto, keyring
from wishnotes.errors import DecryptionFailed
from wishnotes.models import User


def whole_second(moment: datetime) -> datetime:
    """Return `moment` without microseconds: headers hold whole seconds, rows must agree."""
    return moment.replace(microsecond=0)


def seal(
    *,
    ring: keyring.Keyring,
    reader: User,
    item_id: str,
    pair_id: int,
    kind: str,
    body: bytes,
    at: datetime,
    now: datetime,
    sealed: bool = False,
) -> bytes:
    """Seal `body`, written by the ring's owner at `at`, to `reader` and sign it.

    The header holds `at` in whole seconds; unseal() compares the row's time the same way.
    """
    reader_public = ring.trusted(reader, now=now)
    header = crypto.NoteHeader(
        note_id=item_id,
        pair_id=pair_id,
        sender_id=ring.user.id,
        recipient_id=reader.id,
        sender_key_id=ring.own_public.key_id,
        recipient_key_id=reader_public.key_id,
        created_at=int(at.timestamp()),
        sealed=bool(sealed),
        kind=kind,
    )
    return crypto.seal_envelope(
        header=header,
        body=body,
        sender_keys=ring.keys,
        recipient_public=reader_public,
        sender_public=ring.own_public,
    )


def unseal(
    envelope: bytes,
    *,
    ring: keyring.Keyring,
    item_id: str,
    pair_id: int,
    kind: str,
    writer: User,
    reader: User,
    at: datetime | None,
    now: datetime,
    sealed: bool = False,
    strict: bool = True,
) -> bytes:
    """Open an envelope for the ring's owner; the arguments are what its row says it is."""
    if at is None or envelope is None:
        raise DecryptionFailed()
    # Key ids come from the envelope: the signature check below only accepts pinned keys, and
    # the reader's stanza is bound to its own key id, so a changed id cannot open anything.
    parsed = crypto.parse_envelope(envelope)  # read once, opened below
    claimed = parsed.header
    writer_id, viewer_id = writer.id, ring.user.id
    expected = crypto.NoteHeader(
        note_id=item_id,
        pair_id=pair_id,
        sender_id=writer_id,
        recipient_id=reader.id,
        sender_key_id=claimed.sender_key_id,
        recipient_key_id=claimed.recipient_key_id,
        created_at=int(at.timestamp()),
        sealed=bool(sealed),
        kind=kind,
    )
    signer = ring.signer(writer, key_id=claimed.sender_key_id, now=now, strict=strict)
    viewer_is_writer = viewer_id == writer_id
    return crypto.open_envelope(
        parsed,
        expected=expected,
        viewer_id=viewer_id,
        viewer_keys=ring.keys_for(
            claimed.sender_key_id if viewer_is_writer else claimed.recipient_key_id
        ),
        sender_public=signer,
    )
