"""`GET /api/tools`: which tools the model is offered, which are not (and the fix), and the
config file they came from.

The policy still decides per caller: an unknown caller is never offered a high-risk tool,
even one listed here as available.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from foreman.api.openapi import errors
from foreman.config import Settings
from foreman.tools.services import ToolServices

router = APIRouter(tags=["tools"])


class AvailableTool(BaseModel):
    name: str
    risk: str = Field(description="low runs at once; high asks the owner first")
    description: str


class UnavailableTool(BaseModel):
    name: str
    why: str = Field(description="what to set or install so that it is offered")


class ToolsReport(BaseModel):
    config: str = Field(description='the config file in use, or "<packaged defaults>"')
    tools_dir: str
    available: list[AvailableTool]
    unavailable: list[UnavailableTool]


@router.get(
    "/api/tools",
    response_model=ToolsReport,
    responses=errors({503: "the tool services are not running"}),
)
async def list_tools(request: Request) -> ToolsReport:
    services: ToolServices | None = getattr(request.app.state, "tools", None)
    if services is None:
        raise HTTPException(503, "tool services are not running")
    settings: Settings = request.app.state.settings
    unavailable = services.dispatcher.unavailable
    return ToolsReport(
        config=settings.source,
        tools_dir=settings.tools.dir,
        available=[
            AvailableTool(name=spec.name, risk=spec.risk, description=spec.description)
            for spec in services.specs.values()
            if spec.name not in unavailable
        ],
        unavailable=[UnavailableTool(name=name, why=why) for name, why in unavailable.items()],
    )
