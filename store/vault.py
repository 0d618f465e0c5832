"""Per-owner data keys in the database, and sealing of model fields with them."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Collection

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.crypto import DataKey, DecryptionError, FieldContext, KeyRing
from store.db import erased_from
from store.models import Base, DataKeyRow

TELEGRAM_NAMESPACE = "telegram-user"
KEY_BATCH = 500  # data keys read per query by `keys`


class Vault:
    """Creates, loads, rotates and destroys data keys; the only holder of the key ring.

    `reload` re-reads the master keys: a running bot meets a data key that `rapport keys
    rotate` re-wrapped under a key it has not loaded yet, and picks that key up without a restart.
    """

    def __init__(self, ring: KeyRing, reload: Callable[[], KeyRing] | None = None) -> None:
        self.ring = ring
        self._reload = reload

    async def create_key(self, session: AsyncSession, owner_id: uuid.UUID) -> DataKey:
        key = DataKey.generate(owner_id)
        kek_id, wrapped = self.ring.wrap(key.id, key.key)
        session.add(DataKeyRow(id=key.id, owner_id=owner_id, kek_id=kek_id, wrapped=wrapped))
        return key

    async def key(self, session: AsyncSession, owner_id: uuid.UUID) -> DataKey:
        row = await session.scalar(select(DataKeyRow).where(DataKeyRow.owner_id == owner_id))
        if row is None:
            raise DecryptionError(f"no data key for owner {owner_id}: it was erased")
        return self.unwrap(owner_id, row.id, row.kek_id, row.wrapped)

    def unwrap(
        self, owner_id: uuid.UUID, key_id: uuid.UUID, kek_id: str, wrapped: bytes
    ) -> DataKey:
        """The data key from its row's columns, read by the caller (for example in a join).

        Unwrapped again at every use and not cached: unwrapping takes about a microsecond, and
        a key that is never kept cannot outlive its row (erasure deletes the row).
        """
        if kek_id not in self.ring.key_ids and self._reload is not None:
            self.ring = self._reload()
        return DataKey(key_id, owner_id, self.ring.unwrap(key_id, kek_id, wrapped))

    async def keys(
        self, session: AsyncSession, owner_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, DataKey]:
        """Several owners' keys in a few queries (KEY_BATCH owners each), not one per owner:
        for batches such as a dispatch fan-out or a list of every client. An erased owner has
        none in the result."""
        owners = list(owner_ids)
        found: dict[uuid.UUID, DataKey] = {}
        for start in range(0, len(owners), KEY_BATCH):
            batch = owners[start : start + KEY_BATCH]
            rows = await session.scalars(select(DataKeyRow).where(DataKeyRow.owner_id.in_(batch)))
            for row in rows.all():
                found[row.owner_id] = self.unwrap(row.owner_id, row.id, row.kek_id, row.wrapped)
        return found

    async def shred(self, session: AsyncSession, owner_id: uuid.UUID) -> None:
        """Crypto-shredding: without its data key, no copy of the owner's rows can be opened.

        Once the unit of work commits, the database is scrubbed of the deleted key
        (store.db.scrub): no copy of it stays in SQLite's WAL or in PostgreSQL's dead rows.
        """
        await session.execute(delete(DataKeyRow).where(DataKeyRow.owner_id == owner_id))
        erased_from(session, [DataKeyRow.__tablename__])

    async def rewrap_all(self, session: AsyncSession, batch: int = 500) -> int:
        """Re-wrap every data key not yet under the active master key; returns how many."""
        done = 0
        while True:
            rows = (
                await session.scalars(
                    select(DataKeyRow).where(DataKeyRow.kek_id != self.ring.active_id).limit(batch)
                )
            ).all()
            if not rows:
                return done
            for row in rows:
                plain = self.ring.unwrap(row.id, row.kek_id, row.wrapped)
                row.kek_id, row.wrapped = self.ring.wrap(row.id, plain)
            await session.flush()
            done += len(rows)

    async def keys_in_use(self, session: AsyncSession) -> Counter[str]:
        return Counter((await session.scalars(select(DataKeyRow.kek_id))).all())

    def telegram_hash(self, telegram_user_id: int) -> bytes:
        return self.ring.blind_index(TELEGRAM_NAMESPACE, str(telegram_user_id))


def field_context(key: DataKey, row: Base, column: str) -> FieldContext:
    row_id = getattr(row, "id", None)
    if not isinstance(row_id, uuid.UUID):
        raise ValueError(f"{row.__tablename__} row needs its id before a field is sealed")
    return FieldContext(row.__tablename__, column, row_id, key.owner_id)


def seal(key: DataKey, row: Base, column: str, value: str) -> None:
    """Seal `value` into `row.<column>`, bound to that table, column, row and owner."""
    setattr(row, column, key.seal(field_context(key, row, column), value))


def unseal(key: DataKey, row: Base, column: str) -> str:
    blob = getattr(row, column)
    if not isinstance(blob, bytes):
        raise DecryptionError(f"{row.__tablename__}.{column} is empty")
    return key.open(field_context(key, row, column), blob)


def seal_column(
    key: DataKey, model: type[Base], column: str, row_id: uuid.UUID, value: str
) -> bytes:
    """`seal` for a row written without an ORM object (an INSERT or UPDATE statement)."""
    return key.seal(FieldContext(model.__tablename__, column, row_id, key.owner_id), value)


def unseal_column(
    key: DataKey, model: type[Base], column: str, row_id: uuid.UUID, blob: bytes
) -> str:
    """`unseal` for a column read without an ORM object (a statement's row)."""
    return key.open(FieldContext(model.__tablename__, column, row_id, key.owner_id), blob)
