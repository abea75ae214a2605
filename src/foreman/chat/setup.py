"""Building chat and history from settings, once per server (the app factory calls it)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from foreman.bus import EventBus
from foreman.chat.engine import ChatEngine, ToolHandler
from foreman.chat.history import ConversationHistory, ModelSummarizer
from foreman.chat.llm import ChatCompletionsClient, chat_refusal
from foreman.chat.local_server import LocalChatClient, local_model_spec, shared_server
from foreman.chat.service import ChatService
from foreman.clock import Clock
from foreman.config import Settings, local_chat_selected
from foreman.speech.packaged import ModelUnavailable
from foreman.stores.conversations import ConversationStore
from foreman.tools.approval_service import ApprovalService

log = logging.getLogger(__name__)


@dataclass
class ChatServices:
    history: ConversationHistory
    chat: ChatService
    llm: ChatCompletionsClient | None  # None: chat refused (`chat.refusal` says why)

    async def stop_turns(self) -> None:
        """Shutdown, first step: stop running chat turns; summaries of the voice sessions
        the shutdown ends will be digests (no model call on the way out)."""
        self.history.shutting_down()
        await self.chat.aclose()

    async def aclose(self) -> None:
        """Shutdown, after the sessions ended: the last history writes, then the model."""
        await self.history.aclose()
        if self.llm is not None:
            await self.llm.aclose()


def build_chat_services(
    settings: Settings,
    bus: EventBus,
    clock: Clock,
    store: ConversationStore,
    *,
    tools: ToolHandler | None = None,
    approvals: ApprovalService | None = None,
) -> ChatServices:
    """The history (always: voice sessions write into it) and chat (when a model can be
    reached as configured; else every chat turn is a 400 naming what to set, and voice
    summaries are digests). Approvals are watched so they land in the history."""
    refusal = chat_refusal(settings.chat)
    llm: ChatCompletionsClient | None = None
    if refusal is None:
        llm = ChatCompletionsClient.from_config(settings.chat)
    elif local_chat_selected(settings):
        # No key and no server of its own: chat uses the offline engine's local model (one
        # server per process, started on the first turn). A name that is not a model is
        # a refusal naming the setting.
        try:
            llm = LocalChatClient(shared_server(local_model_spec(settings)))
            refusal = None
        except ModelUnavailable as exc:
            refusal = str(exc)
    if refusal is not None:
        log.info("chat is off: %s", refusal)
    history = ConversationHistory(
        store,
        bus,
        clock,
        settings.history,
        # The small local model writes poor summaries, and loading it only to summarize would
        # make every session's end wait for it: digests instead.
        summarizer=(
            ModelSummarizer(llm)
            if llm is not None and not isinstance(llm, LocalChatClient)
            else None
        ),
    )
    owner = settings.identity.owner_name
    engine = (
        ChatEngine(llm, history, settings.chat, tools=tools, owner_name=owner)
        if llm is not None
        else None
    )
    chat = ChatService(engine, history, bus, refusal=refusal, owner_name=owner)
    if approvals is not None:
        approvals.watch(history.on_approval)
        approvals.watch(chat.on_approval)
    return ChatServices(history, chat, llm)
