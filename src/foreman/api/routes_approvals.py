"""Approval prompts and the audit log over HTTP.

    GET  /api/approval/prompt   -> {"prompts": [...]} pending prompts, oldest first
    POST /api/approval/answer   {id, approve, note?} -> 200 {"approval": {...}}
                                404 unknown id, 409 already answered / expired / cancelled,
                                422 malformed body (FastAPI names the field)
    GET  /api/audit?limit=N     -> {"records": [...]} newest first

Routes are thin: they read `request.app.state.tools` (a `ToolServices`) and call it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from foreman.api.openapi import errors
from foreman.policy.approvals import AlreadyAnswered, UnknownApproval
from foreman.tools.services import ToolServices

router = APIRouter(tags=["approvals"])


class AnswerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200, description="the prompt's id")
    approve: StrictBool = Field(description="true runs the tool, false denies it")
    note: str | None = Field(default=None, max_length=1000, description="shown to the model")


def _services(request: Request) -> ToolServices:
    services: ToolServices | None = getattr(request.app.state, "tools", None)
    if services is None:
        raise HTTPException(503, "tool services are not running")
    return services


NOT_RUNNING = "the tool services are not running in this server"


@router.get("/api/approval/prompt", responses=errors({503: NOT_RUNNING}))
async def list_prompts(request: Request) -> dict[str, Any]:
    svc = _services(request)
    return {"prompts": [svc.approvals.describe(a) for a in svc.approvals.pending()]}


@router.post(
    "/api/approval/answer",
    responses=errors(
        {
            404: "no prompt has this id",
            409: "the prompt is no longer pending (answered, expired or cancelled); the "
            "detail carries its final state",
            503: NOT_RUNNING,
        }
    ),
)
async def answer_prompt(body: AnswerBody, request: Request) -> dict[str, Any]:
    svc = _services(request)
    try:
        approval = svc.approvals.answer(body.id, body.approve, approver="api", note=body.note)
    except UnknownApproval:
        raise HTTPException(404, f"no approval with id {body.id!r}") from None
    except AlreadyAnswered as exc:
        raise HTTPException(
            409, {"message": str(exc), "approval": svc.approvals.describe(exc.approval)}
        ) from None
    return {"approval": svc.approvals.describe(approval)}


@router.get("/api/audit", responses=errors({503: NOT_RUNNING}))
async def audit_log(
    request: Request,
    limit: int = Query(100, ge=1, le=10_000),
    session_id: str | None = None,
) -> dict[str, Any]:
    svc = _services(request)
    return {"records": await svc.audit.query(limit, session_id)}
