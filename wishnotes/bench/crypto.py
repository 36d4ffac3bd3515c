"""`wishnotes bench crypto`: the app's cryptography per open and per send against the floor.

"App" runs what the notes service runs for one request, without the database: unlock the
keyring (`keyring.unlock`: private keys and pins unwrapped under the user key), then open one
envelope through `notes._open_envelope` and decode its body (what `open_note` does), or seal one
note to the pinned partner through `envelopes.seal` (what `write_note` does). "Floor" calls
the same `cryptography` primitives directly, the least a request must do for the same result:

- open: unwrap the private keys and the pins (two ChaCha20-Poly1305 opens), build the
  ML-KEM-768+X25519 private key from its seed, verify the Ed25519 signature, decapsulate the
  data key (HPKE) and decrypt the body;
- send: the same two unwraps, build the user's own keys from the private ones (the author's
  stanza and key id must come from the private keys, never from the table), the partner's
  public keys from bytes, encrypt the body, seal the data key to both (HPKE), sign.

Times are this thread's CPU time (waiting for a core on a shared machine is not the cost of the
cryptography), after the objects loaded at start are frozen out of garbage collection. Each
round times app then floor, side by side; the ratio is the median of the rounds' ratios, and
the best round of each is shown too. Printed, never asserted.
"""

from __future__ import annotations

import gc
import json
import secrets
import time
import uuid
from datetime import UTC, datetime
from statistics import median

import click
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from wishnotes import crypto, envelopes, keyring, keyring_store, notes
from wishnotes.accounts import PURPOSE_PRIVATE_KEYS
from wishnotes.bench import print_table
from wishnotes.models import Note, User

GOAL = 1.3
SIDES = ("app", "floor")
TEXT = (
    "I would like us to take the long way home on Sunday, slowly, and stop for a coffee "
    "where we used to. It would please me if we left our phones in the bag for the afternoon."
)


@click.command("crypto")
@click.option("--rounds", default=41, show_default=True, type=click.IntRange(5, 1001))
@click.option("--repeat", default=20, show_default=True, type=click.IntRange(1, 100_000))
def crypto_command(rounds: int, repeat: int) -> None:
    """App cryptography per note opened and sent, against the raw primitives."""
    now = datetime.now(UTC)
    ada, ada_key = _person(1)
    bo, bo_key = _person(2)
    # Each pins the other as after comparing safety numbers (keyring.trust_partner, minus
    # the database): what a pair's keyrings hold once paired.
    keyring.unlock(user=ada, user_key=ada_key).trust(bo, now=now)
    keyring.unlock(user=bo, user_key=bo_key).trust(ada, now=now)
    note = _note(_send_app(ada, ada_key, bo, now), ada, bo)  # Ada writes, Bo opens

    def open_app() -> None:
        _open_app(bo, bo_key, note, ada, now)

    def send_app() -> None:
        _send_app(ada, ada_key, bo, now)

    open_floor = _open_floor(bo, bo_key, note, ada)
    send_floor = _send_floor(ada, ada_key, bo, note)
    pairs = {"open": (open_app, open_floor), "send": (send_app, send_floor)}
    for app_job, floor_job in pairs.values():
        app_job()
        floor_job()
    # The objects loaded so far (the whole app's modules) are left out of garbage collection,
    # so a collection triggered by the app side's allocations does not bill it for scanning
    # them: what is measured is the cryptography, not the size of this process's heap.
    gc.collect()
    gc.freeze()
    samples: dict[str, list[float]] = {f"{kind}, {side}": [] for kind in pairs for side in SIDES}
    ratios: dict[str, list[float]] = {kind: [] for kind in pairs}
    for _ in range(rounds):
        for kind, jobs in pairs.items():
            times = [_timed(job, repeat) for job in jobs]
            for side, seconds in zip(SIDES, times, strict=True):
                samples[f"{kind}, {side}"].append(seconds)
            # Side by side, the two share whatever else the machine is doing at that moment.
            ratios[kind].append(times[0] / times[1])
    click.echo(
        f"crypto benchmark: {rounds} interleaved rounds of {repeat} calls each; "
        f"envelope {len(note.envelope)} bytes"
    )
    rows = [
        (label, f"median {median(values) * 1e6:9.1f} us   best {min(values) * 1e6:9.1f} us")
        for label, values in samples.items()
    ]
    for kind in pairs:
        ratio = median(ratios[kind])
        best = min(samples[f"{kind}, app"]) / min(samples[f"{kind}, floor"])
        verdict = "ok" if ratio <= GOAL else "ABOVE GOAL"
        rows.append(
            (
                f"{kind}: app / floor (goal <= {GOAL})",
                f"median {ratio:9.2f}      best {best:9.2f}     {verdict}",
            )
        )
    print_table(rows)


def _timed(job, repeat: int) -> float:
    # CPU time of this thread: on a shared machine, time spent waiting for a core is not the
    # cost of the cryptography.
    start = time.thread_time()
    for _ in range(repeat):
        job()
    return (time.thread_time() - start) / repeat


def _person(user_id: int) -> tuple[User, bytes]:
    """A user row as registration leaves it (not stored anywhere) and their user key."""
    user_key = crypto.new_key()
    keys = crypto.generate_user_keys()
    public = keys.public()
    return User(
        id=user_id,
        pair_id=1,
        private_keys=crypto.wrap(
            user_key,
            crypto.serialize_private(keys),
            purpose=PURPOSE_PRIVATE_KEYS,
            user_id=user_id,
        ),
        hpke_public=public.hpke_public,
        sign_public=public.sign_public,
        key_id=public.key_id,
        keyring=keyring_store.empty(user_key=user_key, user_id=user_id, now=datetime.now(UTC)),
    ), user_key


def _send_app(user: User, user_key: bytes, partner: User, now: datetime) -> bytes:
    """What write_note does between reading the rows and storing the note."""
    ring = keyring.unlock(user=user, user_key=user_key)
    created = envelopes.whole_second(now)
    note_id = uuid.uuid4().hex
    body = json.dumps({"b": TEXT, "t": None}, ensure_ascii=False, separators=(",", ":"))
    return envelopes.seal(
        ring=ring,
        reader=partner,
        item_id=note_id,
        pair_id=user.pair_id,
        kind="note",
        body=body.encode("utf-8"),
        at=created,
        now=now,
        sealed=False,
    )


def _note(envelope: bytes, writer: User, reader: User) -> Note:
    header = crypto.envelope_header(envelope)
    return Note(
        id=header.note_id,
        pair_id=header.pair_id,
        sender_id=writer.id,
        recipient_id=reader.id,
        created_at=datetime.fromtimestamp(header.created_at, UTC),
        sealed=header.sealed,
        envelope=envelope,
    )


def _open_app(viewer: User, user_key: bytes, note: Note, writer: User, now: datetime) -> None:
    """What open_note does between reading the rows and marking the note read."""
    ring = keyring.unlock(user=viewer, user_key=user_key)
    plain = notes._open_envelope(
        note.envelope,
        ring,
        note=note,
        kind="note",
        writer=writer,
        reader=viewer,
        at=note.created_at,
        sealed=note.sealed,
        now=now,
        strict=True,
    )
    notes._decode_body(plain)


def _unwrap_parts(user: User, user_key: bytes, blob: bytes, purpose: str):
    ad = crypto._wrap_ad(purpose, user.id)
    blob = bytes(blob)
    return user_key, blob[1:13], blob[13:], ad


def _unwrap(parts) -> bytes:
    key, nonce, sealed, ad = parts
    return ChaCha20Poly1305(key).decrypt(nonce, sealed, ad)


def _open_floor(viewer: User, user_key: bytes, note: Note, writer: User):
    """The primitives alone; everything parsed or laid out beforehand."""
    keys_box = _unwrap_parts(viewer, user_key, viewer.private_keys, PURPOSE_PRIVATE_KEYS)
    pins_box = _unwrap_parts(viewer, user_key, viewer.keyring, keyring.PURPOSE_KEYRING)
    parsed = crypto._parse(bytes(note.envelope))
    header = parsed.header
    info = crypto._hpke_info(parsed.header_bytes, 1, header.recipient_id, header.recipient_key_id)
    stanza = parsed.stanzas[1]
    signed = crypto._SIGNATURE_CONTEXT + parsed.signed
    sign_public = bytes(writer.sign_public)
    suite = crypto._suite()

    def run() -> None:
        serialized = _unwrap(keys_box)
        _unwrap(pins_box)
        seed_start = len(crypto._PRIVATE_MAGIC)
        seed = serialized[seed_start : seed_start + 64]
        x_private = serialized[seed_start + 64 : seed_start + 96]
        ed25519.Ed25519PublicKey.from_public_bytes(sign_public).verify(parsed.signature, signed)
        private = hpke.MLKEM768X25519PrivateKey(
            mlkem.MLKEM768PrivateKey.from_seed_bytes(seed),
            x25519.X25519PrivateKey.from_private_bytes(x_private),
        )
        data_key = suite.decrypt(stanza, private, info=info)
        ChaCha20Poly1305(data_key).decrypt(parsed.nonce, parsed.ciphertext, parsed.header_bytes)

    return run


def _send_floor(user: User, user_key: bytes, partner: User, note: Note):
    keys_box = _unwrap_parts(user, user_key, user.private_keys, PURPOSE_PRIVATE_KEYS)
    pins_box = _unwrap_parts(user, user_key, user.keyring, keyring.PURPOSE_KEYRING)
    parsed = crypto._parse(bytes(note.envelope))
    header_bytes = parsed.header_bytes
    unsigned = crypto._SIGNATURE_CONTEXT + parsed.signed  # the same length as a real one
    partner_hpke = bytes(partner.hpke_public)
    body = crypto._pad(json.dumps({"b": TEXT, "t": None}).encode("utf-8"))
    suite = crypto._suite()

    def run() -> None:
        serialized = _unwrap(keys_box)
        _unwrap(pins_box)
        start = len(crypto._PRIVATE_MAGIC)
        own_mlkem = mlkem.MLKEM768PrivateKey.from_seed_bytes(serialized[start : start + 64])
        own_x = x25519.X25519PrivateKey.from_private_bytes(serialized[start + 64 : start + 96])
        signer = ed25519.Ed25519PrivateKey.from_private_bytes(serialized[start + 96 :])
        own_mlkem_public, own_x_public = own_mlkem.public_key(), own_x.public_key()
        # The key id names the public bytes, so they are needed once.
        own_mlkem_public.public_bytes_raw()
        own_x_public.public_bytes_raw()
        signer.public_key().public_bytes_raw()
        recipient = hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(partner_hpke[:1184]),
            x25519.X25519PublicKey.from_public_bytes(partner_hpke[1184:]),
        )
        data_key = secrets.token_bytes(32)
        ChaCha20Poly1305(data_key).encrypt(secrets.token_bytes(12), body, header_bytes)
        suite.encrypt(data_key, recipient, info=b"recipient")
        suite.encrypt(
            data_key, hpke.MLKEM768X25519PublicKey(own_mlkem_public, own_x_public), info=b"a"
        )
        signer.sign(unsigned)

    return run
