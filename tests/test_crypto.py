"""Envelope encryption with real AES-GCM: round trips, tampering, moved ciphertexts, key files."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.crypto import (
    DataKey,
    DecryptionError,
    FieldContext,
    KeyConfigError,
    KeyRing,
    load_keyring,
    write_key_file,
)

OWNER = uuid.uuid4()
ROW = uuid.uuid4()
CTX = FieldContext("answer", "value_enc", ROW, OWNER)


def test_sealed_value_opens_only_in_its_own_place() -> None:
    key = DataKey.generate(OWNER)
    blob = key.seal(CTX, "7")
    assert key.open(CTX, blob) == "7"
    assert len(blob) == 1 + 16 + 12 + 1 + 16  # version, key id, nonce, 1 byte sealed, tag
    for moved in (
        FieldContext("answer", "value_enc", uuid.uuid4(), OWNER),  # another row
        FieldContext("answer", "other_enc", ROW, OWNER),  # another column
        FieldContext("alert", "value_enc", ROW, OWNER),  # another table
        FieldContext("answer", "value_enc", ROW, uuid.uuid4()),  # another client
    ):
        with pytest.raises(DecryptionError, match="tampered with or moved"):
            key.open(moved, blob)


def test_another_owners_key_cannot_open_and_says_why() -> None:
    blob = DataKey.generate(OWNER).seal(CTX, "secret")
    with pytest.raises(DecryptionError, match="another data key"):
        DataKey.generate(OWNER).open(CTX, blob)


@given(st.text(max_size=300), st.integers(min_value=0, max_value=400), st.integers(1, 255))
def test_any_flipped_byte_fails_loudly(text: str, index: int, flip: int) -> None:
    key = DataKey.generate(OWNER)
    blob = bytearray(key.seal(CTX, text))
    assert key.open(CTX, bytes(blob)) == text
    blob[index % len(blob)] ^= flip
    with pytest.raises(DecryptionError):
        key.open(CTX, bytes(blob))


def test_wrapped_data_key_needs_the_right_master_key() -> None:
    ring = KeyRing.generate()
    data_key = DataKey.generate(OWNER)
    kek_id, wrapped = ring.wrap(data_key.id, data_key.key)
    assert ring.unwrap(data_key.id, kek_id, wrapped) == data_key.key
    with pytest.raises(DecryptionError, match="not in the key file"):
        KeyRing.generate().unwrap(data_key.id, kek_id, wrapped)
    with pytest.raises(DecryptionError):
        ring.unwrap(uuid.uuid4(), kek_id, wrapped)  # wrapped blob moved to another key row


def test_rotation_keeps_old_wrapped_keys_readable() -> None:
    ring = KeyRing.generate()
    data_key = DataKey.generate(OWNER)
    old_kek, wrapped = ring.wrap(data_key.id, data_key.key)
    rotated = ring.with_new_active_key()
    assert rotated.active_id != old_kek
    assert rotated.unwrap(data_key.id, old_kek, wrapped) == data_key.key
    new_kek, rewrapped = rotated.wrap(data_key.id, data_key.key)
    assert new_kek == rotated.active_id
    assert rotated.without_keys({old_kek}).unwrap(data_key.id, new_kek, rewrapped) == data_key.key
    # The blind index must not change with rotation, or linked accounts would be lost.
    assert rotated.blind_index("t", "42") == ring.blind_index("t", "42")


def test_key_file_is_private_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "rapport.key"
    ring = KeyRing.generate()
    write_key_file(path, ring, create=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_keyring(path)
    assert loaded.active_id == ring.active_id
    assert loaded.blind_index("t", "1") == ring.blind_index("t", "1")
    with pytest.raises(KeyConfigError, match="already exists"):
        write_key_file(path, KeyRing.generate(), create=True)


def test_environment_keys_win_over_the_file(tmp_path: Path) -> None:
    ring = KeyRing.generate()
    loaded = load_keyring(tmp_path / "absent.key", ring.to_json())
    assert loaded.active_id == ring.active_id


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("not json", "not a valid Rapport key file"),
        ('{"format": "other"}', "'format' must be"),
        ('{"format": "rapport-keys/1", "active": "a", "index_key": "AAAA", "keys": {}}', "active"),
    ],
)
def test_broken_key_file_names_the_file(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "rapport.key"
    path.write_text(content)
    with pytest.raises(KeyConfigError, match=expected) as info:
        load_keyring(path)
    assert str(path) in str(info.value)


def test_missing_key_file_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(KeyConfigError, match="rapport init"):
        load_keyring(tmp_path / "none.key")
