"""Spoken confirmation: the verified owner answers a pending approval by saying yes or no.

Only the owner, verified, on a voice channel, with exactly one voice-confirmable prompt
pending in that session, can answer by voice; anyone else's words change nothing (the
prompt stays open for the API and the TUI). The words are judged by the pure
`policy.confirm.VoiceConfirmation`.
"""

from __future__ import annotations

import contextlib
from typing import Final

from foreman.clock import Clock
from foreman.policy.approvals import AlreadyAnswered
from foreman.policy.confirm import Confirmation, VoiceConfirmation
from foreman.policy.context import CallContext
from foreman.policy.gatekeeper import Gatekeeper
from foreman.tools.approval_service import ApprovalService

# An utterance this soon after the prompt opened is most likely the request itself
# (transcription lags the function call), not an answer to the read-back.
CONFIRM_GRACE_S: Final = 1.0


class SpokenConfirmation:
    def __init__(self, approvals: ApprovalService, clock: Clock) -> None:
        self.approvals = approvals
        self.clock = clock
        self.grace_s = CONFIRM_GRACE_S
        self._classify = VoiceConfirmation().classify

    def heard(self, ctx: CallContext, text: str) -> bool:
        """A whole user utterance of the session `ctx`; True when it answered a prompt."""
        if not Gatekeeper.voice_confirmable(ctx):
            return False
        mine = [
            a
            for a in self.approvals.pending()
            if a.ctx.session_id == ctx.session_id and self.approvals.is_voice_confirmable(a.id)
        ]
        if len(mine) != 1:  # none, or ambiguous: the API prompt still works
            return False
        approval = mine[0]
        if self.clock.monotonic() - approval.created_at < self.grace_s:
            return False
        verdict = self._classify(text)
        if verdict is Confirmation.UNRELATED:
            return False
        with contextlib.suppress(AlreadyAnswered, KeyError):
            self.approvals.answer(
                approval.id, verdict is Confirmation.YES, approver="owner (voice)", note=text[:200]
            )
            return True
        return False
