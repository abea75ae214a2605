"""Where Foreman keeps state: async store interfaces and their embedded defaults.

Interfaces (`interfaces.py`): stream tokens, outbound intents, approvals, the live session
registry, the audit log and call records; conversations and their turns
(`conversations.py`). Defaults: memory for per-process live state,
SQLite (one file, `[storage] db_path`) for what must survive a restart. See
docs/stores.md for the guarantees and for plugging in Redis or PostgreSQL.

Layering: this package imports only `policy`, `protocols`, `audio`, `exceptions`, `clock`
and the standard library, never `session`, `tools`, `backends` or `api`.
"""

from foreman.stores.conversations import (
    OWNER_PARTY,
    ConversationRecord,
    ConversationStore,
    MemoryConversationStore,
    Turn,
    TurnKind,
)
from foreman.stores.embedded import (
    Recovered,
    Stores,
    memory_stores,
    open_embedded_stores,
    open_embedded_stores_now,
)
from foreman.stores.interfaces import (
    ApprovalStore,
    AuditStore,
    CallRecordStore,
    OutboundIntentStore,
    SessionRegistryStore,
    StreamTokenStore,
)
from foreman.stores.memory import (
    MemoryApprovalStore,
    MemoryAuditStore,
    MemoryCallRecordStore,
    MemoryOutboundIntentStore,
    MemorySessionRegistryStore,
    MemoryStreamTokenStore,
)
from foreman.stores.records import (
    INTERRUPTED_REASON,
    ApprovalRecord,
    AuditRecord,
    CallRecord,
    OutboundIntent,
    SessionKind,
    SessionRecord,
)
from foreman.stores.sqlite import (
    SqliteApprovalStore,
    SqliteAuditStore,
    SqliteCallRecordStore,
    SqliteConversationStore,
    SqliteSessionRegistryStore,
)
from foreman.stores.token_table import StreamTokenTable

__all__ = [
    "INTERRUPTED_REASON",
    "OWNER_PARTY",
    "ApprovalRecord",
    "ApprovalStore",
    "AuditRecord",
    "AuditStore",
    "CallRecord",
    "CallRecordStore",
    "ConversationRecord",
    "ConversationStore",
    "MemoryApprovalStore",
    "MemoryAuditStore",
    "MemoryCallRecordStore",
    "MemoryConversationStore",
    "MemoryOutboundIntentStore",
    "MemorySessionRegistryStore",
    "MemoryStreamTokenStore",
    "OutboundIntent",
    "OutboundIntentStore",
    "Recovered",
    "SessionKind",
    "SessionRecord",
    "SessionRegistryStore",
    "SqliteApprovalStore",
    "SqliteAuditStore",
    "SqliteCallRecordStore",
    "SqliteConversationStore",
    "SqliteSessionRegistryStore",
    "Stores",
    "StreamTokenStore",
    "StreamTokenTable",
    "Turn",
    "TurnKind",
    "memory_stores",
    "open_embedded_stores",
    "open_embedded_stores_now",
]
