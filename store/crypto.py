"""Envelope encryption: master keys wrap per-owner data keys; data keys seal fields.

Threat model (docs/architecture.md): a copied database or backup must reveal nothing, and a
ciphertext moved to another row, column or owner must fail to decrypt rather than show the
wrong person's data. So every sealed field carries associated data naming its table, column,
row and owner, and every blob names the key that sealed it.

Blob formats (all version-prefixed so they can evolve):
- sealed field:  0x01 | data key id (16 bytes) | nonce (12) | AES-GCM ciphertext and tag
- wrapped key:   0x01 | nonce (12) | AES-GCM ciphertext of the 32-byte data key and tag;
  the master key id is stored beside it in its own column.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE_FORMAT = "rapport-keys/1"
_FIELD_VERSION = b"\x01"
_WRAP_VERSION = b"\x01"
_NONCE = 12
_KEY_BYTES = 32


class CryptoError(Exception):
    """Base for key problems; the message says what is wrong and how to fix it."""


class KeyConfigError(CryptoError):
    """The key file or RAPPORT_MASTER_KEYS is missing, unreadable or malformed."""


class DecryptionError(CryptoError):
    """A ciphertext could not be opened: wrong key, tampered data, or moved to another row."""


@dataclass(frozen=True)
class FieldContext:
    """Where a sealed value lives; it becomes the AES-GCM associated data."""

    table: str
    column: str
    row_id: uuid.UUID
    owner_id: uuid.UUID

    def aad(self) -> bytes:
        return f"rapport/v1|{self.table}|{self.column}|{self.row_id}|{self.owner_id}".encode()

    def describe(self) -> str:
        return f"{self.table}.{self.column} of row {self.row_id}"


class KeyRing:
    """The master keys (key-encryption keys), one of them active, and the blind-index key.

    The index key is separate from the master keys and is not rotated with them: the blind
    index of a Telegram id must stay the same for the lookup to keep working.
    """

    def __init__(self, keys: dict[str, bytes], active: str, index_key: bytes) -> None:
        if active not in keys:
            raise KeyConfigError(f"the active key {active!r} is not among the keys")
        for key_id, key in {**keys, "index_key": index_key}.items():
            if len(key) != _KEY_BYTES:
                raise KeyConfigError(f"key {key_id!r} must be {_KEY_BYTES} bytes")
        self._keys = dict(keys)
        self.active_id = active
        self._index_key = index_key

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    def wrap(self, data_key_id: uuid.UUID, data_key: bytes) -> tuple[str, bytes]:
        """Wrap a data key with the active master key; returns (master key id, blob)."""
        nonce = os.urandom(_NONCE)
        sealed = AESGCM(self._keys[self.active_id]).encrypt(
            nonce, data_key, _wrap_aad(data_key_id, self.active_id)
        )
        return self.active_id, _WRAP_VERSION + nonce + sealed

    def unwrap(self, data_key_id: uuid.UUID, kek_id: str, blob: bytes) -> bytes:
        kek = self._keys.get(kek_id)
        if kek is None:
            raise DecryptionError(
                f"data key {data_key_id} is wrapped with master key {kek_id!r}, which is not "
                "in the key file: restore that key from your key backup"
            )
        if blob[:1] != _WRAP_VERSION or len(blob) < 1 + _NONCE + 16:
            raise DecryptionError(f"data key {data_key_id} has an unknown format")
        nonce, sealed = blob[1 : 1 + _NONCE], blob[1 + _NONCE :]
        try:
            return AESGCM(kek).decrypt(nonce, sealed, _wrap_aad(data_key_id, kek_id))
        except InvalidTag:
            raise DecryptionError(
                f"data key {data_key_id} does not open with master key {kek_id!r}: "
                "the key file holds a different key under that id, or the row was tampered with"
            ) from None

    def blind_index(self, namespace: str, value: str) -> bytes:
        """A keyed hash to find a row by a secret value without storing the value."""
        msg = f"{namespace}\x00{value}".encode()
        return hmac.new(self._index_key, msg, hashlib.sha256).digest()

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": KEY_FILE_FORMAT,
                "active": self.active_id,
                "index_key": _b64(self._index_key),
                "keys": {key_id: _b64(key) for key_id, key in self._keys.items()},
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str, source: str) -> KeyRing:
        try:
            raw = json.loads(text)
            if raw.get("format") != KEY_FILE_FORMAT:
                raise ValueError(f"'format' must be {KEY_FILE_FORMAT!r}")
            keys = {str(k): base64.b64decode(v, validate=True) for k, v in raw["keys"].items()}
            return cls(keys, str(raw["active"]), base64.b64decode(raw["index_key"], validate=True))
        except KeyConfigError as exc:
            raise KeyConfigError(f"{source}: {exc}") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeyConfigError(
                f"{source} is not a valid Rapport key file ({exc}); "
                "restore it from your backup, or run `rapport init` to create a new one "
                "(only for a new, empty database)"
            ) from None

    @classmethod
    def generate(cls) -> KeyRing:
        key_id = new_key_id()
        return cls({key_id: AESGCM.generate_key(256)}, key_id, secrets.token_bytes(_KEY_BYTES))

    def with_new_active_key(self) -> KeyRing:
        key_id = new_key_id()
        while key_id in self._keys:
            key_id = new_key_id()
        return KeyRing({**self._keys, key_id: AESGCM.generate_key(256)}, key_id, self._index_key)

    def without_keys(self, key_ids: set[str]) -> KeyRing:
        if self.active_id in key_ids:
            raise KeyConfigError("the active key cannot be removed")
        keys = {k: v for k, v in self._keys.items() if k not in key_ids}
        return KeyRing(keys, self.active_id, self._index_key)


@dataclass(frozen=True)
class DataKey:
    """An unwrapped per-owner data key; seals and opens that owner's fields."""

    id: uuid.UUID
    owner_id: uuid.UUID
    key: bytes

    def seal(self, ctx: FieldContext, plaintext: str) -> bytes:
        nonce = os.urandom(_NONCE)
        sealed = AESGCM(self.key).encrypt(nonce, plaintext.encode(), ctx.aad())
        return _FIELD_VERSION + self.id.bytes + nonce + sealed

    def open(self, ctx: FieldContext, blob: bytes) -> str:
        if blob[:1] != _FIELD_VERSION or len(blob) < 1 + 16 + _NONCE + 16:
            raise DecryptionError(f"cannot decrypt {ctx.describe()}: unknown ciphertext format")
        if blob[1:17] != self.id.bytes:
            raise DecryptionError(
                f"cannot decrypt {ctx.describe()}: it was sealed with another data key "
                "(copied from another person's row?)"
            )
        nonce, sealed = blob[17 : 17 + _NONCE], blob[17 + _NONCE :]
        try:
            return AESGCM(self.key).decrypt(nonce, sealed, ctx.aad()).decode()
        except InvalidTag:
            raise DecryptionError(
                f"cannot decrypt {ctx.describe()}: the ciphertext was tampered with "
                "or moved from another row or column"
            ) from None

    @classmethod
    def generate(cls, owner_id: uuid.UUID) -> DataKey:
        return cls(uuid.uuid4(), owner_id, AESGCM.generate_key(256))


def new_key_id() -> str:
    return f"k{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(3)}"


def load_keyring(path: Path, env_value: str | None = None) -> KeyRing:
    """Master keys from RAPPORT_MASTER_KEYS when set, else from the key file."""
    if env_value:
        return KeyRing.from_json(env_value, "RAPPORT_MASTER_KEYS")
    if not path.exists():
        raise KeyConfigError(
            f"key file {path} does not exist: run `rapport init` to create it "
            "(or set RAPPORT_KEY_FILE / RAPPORT_MASTER_KEYS to where your keys are)"
        )
    try:
        text = path.read_text()
    except OSError as exc:
        raise KeyConfigError(f"key file {path} cannot be read: {exc.strerror}") from None
    return KeyRing.from_json(text, f"key file {path}")


def write_key_file(path: Path, ring: KeyRing, *, create: bool) -> None:
    """Write the key file with mode 0600, atomically (a crash leaves the old or the new file)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if create and path.exists():
        raise KeyConfigError(f"key file {path} already exists; refusing to overwrite it")
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(ring.to_json())
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _wrap_aad(data_key_id: uuid.UUID, kek_id: str) -> bytes:
    return f"rapport/v1|data_key|{data_key_id}|{kek_id}".encode()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
