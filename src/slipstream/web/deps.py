"""What the web UI needs from the composition root (the services its pages may call, and
nothing else), and the dependencies handing each request those services and the app's
shared parts: all read from the web app's state, set once by `create_web_app`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Request

from slipstream.clock import Clock
from slipstream.config import Settings
from slipstream.services.changes import ChangeService
from slipstream.services.connections import ConnectionService
from slipstream.services.dag_graph import DagGraphService
from slipstream.services.dag_overview import DagOverviewService
from slipstream.services.dag_view import DagViewService
from slipstream.services.dags import DagService
from slipstream.services.logs import LogService
from slipstream.services.pools import PoolService
from slipstream.services.roles import RoleService
from slipstream.services.run_changes import RunChangeService
from slipstream.services.runs import RunService
from slipstream.services.sign_in import SignInService
from slipstream.services.sign_in_gate import SignInGate
from slipstream.services.tokens import TokenService
from slipstream.services.users import UserService
from slipstream.services.variables import VariableService
from slipstream.services.web_sessions import WebSessionService
from slipstream.web.csrf import CsrfSigner
from slipstream.web.graph_cache import GraphCache
from slipstream.web.live import LiveHub
from slipstream.web.templates import Templates


class WebServices(Protocol):
    """Satisfied by bootstrap.Services; tests may build their own."""

    @property
    def settings(self) -> Settings: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def dags(self) -> DagService: ...

    @property
    def dag_overview(self) -> DagOverviewService: ...

    @property
    def dag_graph(self) -> DagGraphService: ...

    @property
    def dag_view(self) -> DagViewService: ...

    @property
    def run_changes(self) -> RunChangeService: ...

    @property
    def roles(self) -> RoleService: ...

    @property
    def runs(self) -> RunService: ...

    @property
    def logs(self) -> LogService: ...

    @property
    def changes(self) -> ChangeService: ...

    @property
    def sign_ins(self) -> SignInService: ...

    @property
    def web_sessions(self) -> WebSessionService: ...

    @property
    def users(self) -> UserService: ...

    @property
    def tokens(self) -> TokenService: ...

    @property
    def pools(self) -> PoolService: ...

    @property
    def variables(self) -> VariableService: ...

    @property
    def connections(self) -> ConnectionService: ...


@dataclass(frozen=True, slots=True)
class WebParts:
    """The web app's own long-lived parts, built once per app."""

    services: WebServices
    gate: SignInGate
    csrf: CsrfSigner
    templates: Templates
    graphs: GraphCache  # the Graph tab's drawings, by DAG version
    live: LiveHub


async def parts_of(request: Request) -> WebParts:
    parts: WebParts = request.app.state.web
    return parts


PartsDep = Annotated[WebParts, Depends(parts_of)]
