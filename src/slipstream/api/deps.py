"""What the API needs from the composition root (the services it may call, and nothing else),
and the route dependencies handing each request those services, the app's Security and the
caller: all read from the app's state, set once by `create_app` through `attach`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Protocol

from fastapi import Depends, FastAPI, Request

from slipstream.api.security import Principal, Security
from slipstream.auth.roles import Action
from slipstream.clock import Clock
from slipstream.config import Settings
from slipstream.services.assets import AssetService
from slipstream.services.connections import ConnectionService
from slipstream.services.dags import DagService
from slipstream.services.event_log import EventLogService
from slipstream.services.health import HealthService
from slipstream.services.logs import LogService
from slipstream.services.pools import PoolService
from slipstream.services.roles import RoleService
from slipstream.services.run_changes import RunChangeService
from slipstream.services.runs import RunService
from slipstream.services.sign_in import SignInService
from slipstream.services.tokens import TokenService
from slipstream.services.users import UserService
from slipstream.services.variables import VariableService


class ApiServices(Protocol):
    """Satisfied by bootstrap.Services; tests may build their own."""

    @property
    def settings(self) -> Settings: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def dags(self) -> DagService: ...

    @property
    def runs(self) -> RunService: ...

    @property
    def run_changes(self) -> RunChangeService: ...

    @property
    def logs(self) -> LogService: ...

    @property
    def health(self) -> HealthService: ...

    @property
    def sign_ins(self) -> SignInService: ...

    @property
    def users(self) -> UserService: ...

    @property
    def tokens(self) -> TokenService: ...

    @property
    def roles(self) -> RoleService: ...

    @property
    def variables(self) -> VariableService: ...

    @property
    def connections(self) -> ConnectionService: ...

    @property
    def pools(self) -> PoolService: ...

    @property
    def event_logs(self) -> EventLogService: ...

    @property
    def assets(self) -> AssetService: ...


def attach(app: FastAPI, services: ApiServices, security: Security) -> None:
    """Give `app`'s routes their services and Security (once, before it serves)."""
    app.state.services = services
    app.state.security = security


# The dependencies below are async: they only read the app's state, and a sync dependency
# would cost every request a round trip through the threadpool.


async def services_of(request: Request) -> ApiServices:
    services: ApiServices = request.app.state.services
    return services


async def security_of(request: Request) -> Security:
    security: Security = request.app.state.security
    return security


def authorized(action: Action) -> Callable[[Request], Awaitable[Principal]]:
    """A route dependency: a signed-in caller holding the resource permission for `action`.
    Routes about one DAG still call `check_dag` once they know the DAG's tags."""

    async def principal(request: Request) -> Principal:
        security = await security_of(request)
        # Answered on the event loop when the credentials were checked a moment ago.
        caller = await security.principal_async(request)
        caller.require(action)
        return caller

    return principal


ServicesDep = Annotated[ApiServices, Depends(services_of)]
SecurityDep = Annotated[Security, Depends(security_of)]
