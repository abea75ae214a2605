"""`ConversationStore` in SQLite: the `conversations` and `conversation_turns` tables."""

from __future__ import annotations

import json
import sqlite3

from foreman.stores.conversations import ConversationRecord, Turn, title_from
from foreman.stores.records import dumps
from foreman.stores.sqlite.base import SqliteStore
from foreman.stores.sqlite.db import transaction

_CONVERSATION = "SELECT id, party, title, created_at, updated_at, turns FROM conversations"
_TURN = (
    "SELECT conversation_id, seq, at, kind, channel, session_id, caller, text, data "
    "FROM conversation_turns"
)


class SqliteConversationStore(SqliteStore):
    """Each `append` is one transaction (committed before it returns: durable in WAL)."""

    async def create(self, record: ConversationRecord) -> None:
        await self._run(_create, record)

    async def get(self, conversation_id: str) -> ConversationRecord | None:
        return await self._run(_get, conversation_id)

    async def latest(self, party: str) -> ConversationRecord | None:
        return await self._run(_latest, party)

    async def newest(self, limit: int = 50) -> list[ConversationRecord]:
        return await self._run(_newest, max(0, int(limit)))

    async def append(self, conversation_id: str, turn: Turn) -> Turn:
        return await self._run(_append, conversation_id, turn)

    async def turns(
        self, conversation_id: str, *, after: int = 0, limit: int | None = None
    ) -> list[Turn]:
        return await self._run(_turns, conversation_id, after, -1 if limit is None else limit)

    async def last_turns(self, conversation_id: str, limit: int) -> list[Turn]:
        return await self._run(_last_turns, conversation_id, max(0, int(limit)))

    async def session_turns(self, session_id: str) -> list[Turn]:
        return await self._run(_session_turns, session_id)


def _create(conn: sqlite3.Connection, r: ConversationRecord) -> None:
    try:
        conn.execute(
            "INSERT INTO conversations (id, party, title, created_at, updated_at, turns) "
            "VALUES (?, ?, ?, ?, ?, 0)",
            (r.id, r.party, r.title, r.created_at, r.updated_at),
        )
    except sqlite3.IntegrityError:
        raise ValueError(f"conversation {r.id} exists") from None


def _get(conn: sqlite3.Connection, conversation_id: str) -> ConversationRecord | None:
    row = conn.execute(f"{_CONVERSATION} WHERE id = ?", (conversation_id,)).fetchone()
    return None if row is None else _conversation(row)


def _latest(conn: sqlite3.Connection, party: str) -> ConversationRecord | None:
    row = conn.execute(
        f"{_CONVERSATION} WHERE party = ? ORDER BY updated_at DESC, id DESC LIMIT 1", (party,)
    ).fetchone()
    return None if row is None else _conversation(row)


def _newest(conn: sqlite3.Connection, limit: int) -> list[ConversationRecord]:
    rows = conn.execute(
        f"{_CONVERSATION} ORDER BY updated_at DESC, id DESC LIMIT ?", (limit,)
    ).fetchall()
    return [_conversation(r) for r in rows]


def _append(conn: sqlite3.Connection, conversation_id: str, t: Turn) -> Turn:
    with transaction(conn):
        row = conn.execute(
            "UPDATE conversations SET turns = turns + 1, updated_at = max(updated_at, ?), "
            "title = CASE WHEN title = '' THEN ? ELSE title END WHERE id = ? RETURNING turns",
            (t.at, title_from(t), conversation_id),
        ).fetchone()
        if row is None:
            raise KeyError(conversation_id)
        seq = int(row[0])
        conn.execute(
            "INSERT INTO conversation_turns (conversation_id, seq, at, kind, channel, "
            "session_id, caller, text, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                conversation_id,
                seq,
                t.at,
                t.kind,
                t.channel,
                t.session_id,
                t.caller,
                t.text,
                dumps(t.data),
            ),
        )
    return Turn(
        kind=t.kind,
        text=t.text,
        channel=t.channel,
        session_id=t.session_id,
        at=t.at,
        caller=t.caller,
        data=json.loads(dumps(t.data)),
        conversation_id=conversation_id,
        seq=seq,
    )


def _turns(conn: sqlite3.Connection, conversation_id: str, after: int, limit: int) -> list[Turn]:
    rows = conn.execute(
        f"{_TURN} WHERE conversation_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        (conversation_id, after, limit),
    ).fetchall()
    return [_turn(r) for r in rows]


def _last_turns(conn: sqlite3.Connection, conversation_id: str, limit: int) -> list[Turn]:
    rows = conn.execute(
        f"{_TURN} WHERE conversation_id = ? ORDER BY seq DESC LIMIT ?", (conversation_id, limit)
    ).fetchall()
    return [_turn(r) for r in reversed(rows)]


def _session_turns(conn: sqlite3.Connection, session_id: str) -> list[Turn]:
    rows = conn.execute(
        f"{_TURN} WHERE session_id = ? ORDER BY at, conversation_id, seq", (session_id,)
    ).fetchall()
    return [_turn(r) for r in rows]


def _conversation(row: sqlite3.Row) -> ConversationRecord:
    return ConversationRecord(
        id=row["id"],
        party=row["party"],
        title=row["title"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        turns=row["turns"],
    )


def _turn(row: sqlite3.Row) -> Turn:
    return Turn(
        kind=row["kind"],
        text=row["text"],
        channel=row["channel"],
        session_id=row["session_id"],
        at=row["at"],
        caller=row["caller"],
        data=json.loads(row["data"]),
        conversation_id=row["conversation_id"],
        seq=row["seq"],
    )
