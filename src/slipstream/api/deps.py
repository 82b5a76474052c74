"""What the API needs from the composition root: the services it may call, and nothing else."""

from __future__ import annotations

from typing import Protocol

from slipstream.clock import Clock
from slipstream.config import Settings
from slipstream.services.dags import DagService
from slipstream.services.health import HealthService
from slipstream.services.logs import LogService
from slipstream.services.roles import RoleService
from slipstream.services.run_changes import RunChangeService
from slipstream.services.runs import RunService
from slipstream.services.sign_in import SignInService
from slipstream.services.tokens import TokenService
from slipstream.services.users import UserService


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
