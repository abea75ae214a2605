"""The embedded database's schema, as an ordered list of migration steps.

Step N brings the file from `user_version` N-1 to N. To add tables (or change them), write
one function decorated with `@step` at the end of this module: it runs once per database,
inside a transaction, after every step above it. Never edit, reorder or remove a step that
has shipped; change things with a new step. Steps run statements one at a time with
`conn.execute` (`executescript` would commit the step's transaction half-way).
"""

from __future__ import annotations

import sqlite3

from foreman.stores.sqlite.db import MigrationStep

STEPS: list[MigrationStep] = []


def step(fn: MigrationStep) -> MigrationStep:
    """Append `fn` to the migration steps (definition order is version order)."""
    STEPS.append(fn)
    return fn


def _execute_all(conn: sqlite3.Connection, *statements: str) -> None:
    for sql in statements:
        conn.execute(sql)


@step
def tool_audit_and_calls(conn: sqlite3.Connection) -> None:
    """Version 1: the audit and call tables exactly as the first released version created
    them, so a database it wrote (at version 0) keeps its rows and goes on from here."""
    _execute_all(
        conn,
        """CREATE TABLE IF NOT EXISTS tool_audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            session_id TEXT NOT NULL,
            caller TEXT NOT NULL,
            role TEXT NOT NULL,
            channel TEXT NOT NULL,
            tool TEXT NOT NULL,
            call_id TEXT NOT NULL,
            arguments TEXT NOT NULL,
            decision TEXT NOT NULL,
            reason TEXT NOT NULL,
            approver TEXT,
            approval_id TEXT,
            wait_s REAL,
            outcome TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS tool_audit_at ON tool_audit (at)",
        """CREATE TABLE IF NOT EXISTS calls (
            call_sid   TEXT PRIMARY KEY,
            direction  TEXT NOT NULL,
            from_num   TEXT NOT NULL,
            to_num     TEXT NOT NULL,
            role       TEXT NOT NULL,
            verified   INTEGER NOT NULL,
            started_at REAL NOT NULL,
            ended_at   REAL NOT NULL,
            reason     TEXT NOT NULL,
            purpose    TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX IF NOT EXISTS calls_ended_at ON calls (ended_at)",
    )


@step
def calls_written_at_start(conn: sqlite3.Connection) -> None:
    """Version 2: a call is written when it starts, so `ended_at` may be NULL (live) and
    `reason` starts empty. SQLite cannot relax NOT NULL in place: copy into a new table.
    Column names stay the same."""
    _execute_all(
        conn,
        """CREATE TABLE calls_v2 (
            call_sid   TEXT PRIMARY KEY,
            direction  TEXT NOT NULL,
            from_num   TEXT NOT NULL,
            to_num     TEXT NOT NULL,
            role       TEXT NOT NULL,
            verified   INTEGER NOT NULL,
            started_at REAL NOT NULL,
            ended_at   REAL,
            reason     TEXT NOT NULL DEFAULT '',
            purpose    TEXT NOT NULL DEFAULT ''
        )""",
        """INSERT INTO calls_v2 (call_sid, direction, from_num, to_num, role, verified,
                                 started_at, ended_at, reason, purpose)
           SELECT call_sid, direction, from_num, to_num, role, verified,
                  started_at, ended_at, reason, purpose
           FROM calls ORDER BY rowid""",
        "DROP TABLE calls",
        "ALTER TABLE calls_v2 RENAME TO calls",
        "CREATE INDEX calls_ended_at ON calls (ended_at)",
        "CREATE INDEX calls_live ON calls (started_at) WHERE ended_at IS NULL",
    )


@step
def tool_audit_by_session(conn: sqlite3.Connection) -> None:
    """Version 3: `query(session_id=...)` without a full scan."""
    conn.execute("CREATE INDEX tool_audit_session ON tool_audit (session_id, id)")


@step
def approvals(conn: sqlite3.Connection) -> None:
    """Version 4: the durable record of approval prompts."""
    _execute_all(
        conn,
        """CREATE TABLE approvals (
            id          TEXT PRIMARY KEY,
            tool        TEXT NOT NULL,
            call_id     TEXT NOT NULL,
            arguments   TEXT NOT NULL,
            risk        TEXT NOT NULL,
            session_id  TEXT NOT NULL,
            channel     TEXT NOT NULL,
            role        TEXT NOT NULL,
            caller_id   TEXT NOT NULL,
            caller_name TEXT NOT NULL,
            state       TEXT NOT NULL,
            created_at  REAL NOT NULL,
            expires_at  REAL NOT NULL,
            approver    TEXT,
            note        TEXT,
            answered_at REAL
        )""",
        "CREATE INDEX approvals_pending ON approvals (created_at) WHERE state = 'pending'",
    )


@step
def live_sessions(conn: sqlite3.Connection) -> None:
    """Version 5: the registry of live sessions."""
    conn.execute(
        """CREATE TABLE live_sessions (
            id         TEXT PRIMARY KEY,
            kind       TEXT NOT NULL,
            channel    TEXT NOT NULL,
            caller     TEXT NOT NULL,
            started_at REAL NOT NULL,
            backend    TEXT NOT NULL,
            status     TEXT NOT NULL
        )"""
    )


@step
def conversations(conn: sqlite3.Connection) -> None:
    """Version 6: conversations and their turns (chat and voice, with provenance)."""
    _execute_all(
        conn,
        """CREATE TABLE conversations (
            id         TEXT PRIMARY KEY,
            party      TEXT NOT NULL,
            title      TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            turns      INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX conversations_by_party ON conversations (party, updated_at, id)",
        "CREATE INDEX conversations_by_activity ON conversations (updated_at, id)",
        """CREATE TABLE conversation_turns (
            conversation_id TEXT NOT NULL REFERENCES conversations (id),
            seq        INTEGER NOT NULL,
            at         REAL NOT NULL,
            kind       TEXT NOT NULL,
            channel    TEXT NOT NULL,
            session_id TEXT NOT NULL,
            caller     TEXT NOT NULL,
            text       TEXT NOT NULL,
            data       TEXT NOT NULL,
            PRIMARY KEY (conversation_id, seq)
        )""",
        "CREATE INDEX conversation_turns_by_session ON conversation_turns (session_id)",
    )


@step
def heartbeat(conn: sqlite3.Connection) -> None:
    """Version 7: when the server was last known alive, to date what a crash interrupted."""
    conn.execute("CREATE TABLE heartbeat (id INTEGER PRIMARY KEY CHECK (id = 1), at REAL NOT NULL)")
