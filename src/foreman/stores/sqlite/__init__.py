"""The embedded durable stores: SQLite in one file (`[storage] db_path`), WAL, every
statement on a worker thread, schema migrated on open (`schema.STEPS`)."""

from foreman.stores.sqlite.base import SqliteStore
from foreman.stores.sqlite.conversations import SqliteConversationStore
from foreman.stores.sqlite.db import migrate, open_database, schema_version
from foreman.stores.sqlite.history import SqliteAuditStore, SqliteCallRecordStore
from foreman.stores.sqlite.live import SqliteApprovalStore, SqliteSessionRegistryStore
from foreman.stores.sqlite.schema import STEPS, step

__all__ = [
    "STEPS",
    "SqliteApprovalStore",
    "SqliteAuditStore",
    "SqliteCallRecordStore",
    "SqliteConversationStore",
    "SqliteSessionRegistryStore",
    "SqliteStore",
    "migrate",
    "open_database",
    "schema_version",
    "step",
]
