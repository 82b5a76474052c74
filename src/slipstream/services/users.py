"""User administration: create, read, list, update and delete users, reset passwords, enable
and disable them, and manage their roles. Every change drops the user's cached sign-ins in this
process (`SignInService.forget`); a new password or disabling a user also ends their web UI
sessions, in the same transaction.

The web UI asks for one more rule (`keep_an_admin=True`): no change may leave no active
Admin, since nobody could then manage users from the UI. The API and CLI keep Airflow's
behaviour (they allow it; the CLI, with the database at hand, is also the way back in)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from sqlalchemy import Connection

from slipstream.auth.passwords import hash_password
from slipstream.auth.roles import ADMIN, BUILTIN_ROLES
from slipstream.clock import Clock
from slipstream.core import event_log as events
from slipstream.core.ordering import check_order_by
from slipstream.core.records import User
from slipstream.errors import InvalidInputError, UserNotFound
from slipstream.services.sign_in import SignInService
from slipstream.store import users as users_store
from slipstream.store import web_sessions as web_sessions_store
from slipstream.store.db import Database
from slipstream.store.event_log import record_event

# Column widths of the users table: longer values are refused here, with the field named,
# rather than truncated by one database and refused by another.
_MAX_LENGTHS = {"username": 256, "email": 320, "first_name": 256, "last_name": 256}


class UserService:
    """Users and their roles, as every entry point (CLI, REST API) changes them."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        sign_ins: SignInService,
        role_names: Callable[[], Collection[str]] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        # This process's cached sign-ins: a change to a user must end them at once.
        self._sign_ins = sign_ins
        # Which role names exist: the built-in ones, unless the composition root passes the
        # role service's view, which adds the custom ones stored in the database.
        self._role_names = role_names or BUILTIN_ROLES.keys

    def check_role(self, role: str) -> None:
        """Refuse a role name that does not exist, in Airflow's words."""
        names = self._role_names()
        if role not in names:
            raise InvalidInputError(
                f"{role} is not a valid role. Valid roles are: {sorted(names)}",
                field="role",
            )

    def check_roles(self, roles: Sequence[str]) -> None:
        """Refuse unknown role names all together, as Airflow's REST API words it."""
        names = self._role_names()
        unknown = [r for r in roles if r not in names]
        if unknown:
            listed = ", ".join(repr(r) for r in unknown)
            raise InvalidInputError(f"Unknown roles: {listed}", field="roles")

    def create(
        self,
        *,
        username: str,
        email: str,
        first_name: str,
        last_name: str,
        role: str | None = None,
        password: str,
        roles: Sequence[str] | None = None,
        by: str | None = None,
    ) -> User:
        """Create an active user with one `role` (the CLI) or several `roles` (the REST API);
        UserAlreadyExists if the name or email is taken."""
        check_text(username=username, email=email, first_name=first_name, last_name=last_name)
        for field, value in (("username", username), ("email", email)):
            if not value.strip():
                raise InvalidInputError(f"{field} must not be empty", field=field)
        if roles is None:
            if role is None:
                raise InvalidInputError("a role is required", field="role")
            self.check_role(role)
            roles = [role]
        else:
            self.check_roles(roles)
        _check_password(password)
        password_hash = hash_password(password)  # slow on purpose: outside the transaction
        now = self._clock.now()
        with self._db.write() as conn:
            user = users_store.insert_user(
                conn,
                username=username,
                email=email,
                first_name=first_name,
                last_name=last_name,
                password_hash=password_hash,
                roles=list(dict.fromkeys(roles)),
                now=now,
            )
            record_event(
                conn,
                events.USER_CREATE,
                now,
                owner=by,
                extra={"username": username, "roles": list(user.roles)},
            )
            return user

    def get(self, username: str) -> User:
        if "\x00" in username:  # no stored name has one, and PostgreSQL refuses to compare it
            raise UserNotFound(username)
        with self._db.read() as conn:
            user = users_store.get_user(conn, username)
        if user is None:
            raise UserNotFound(username)
        return user

    def list_users(
        self,
        limit: int | None = 100,
        offset: int = 0,
        *,
        order_by: str = "id",
        descending: bool = False,
    ) -> tuple[list[User], int]:
        """A page of users (in creation order unless `order_by` names a column), and the
        total."""
        if limit is not None and limit < 0:
            raise InvalidInputError("limit must not be negative", field="limit")
        if offset < 0:
            raise InvalidInputError("offset must not be negative", field="offset")
        check_order_by(order_by, users_store.ORDER_COLUMNS)
        with self._db.read() as conn:
            return users_store.list_users(
                conn, limit=limit, offset=offset, order_by=order_by, descending=descending
            )

    def update(
        self,
        username: str,
        *,
        new_username: str | None = None,
        email: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        password: str | None = None,
        roles: Sequence[str] | None = None,
        keep_an_admin: bool = False,
        by: str | None = None,
    ) -> User:
        """Change any of a user's fields (the REST API's PATCH) in one transaction: all of
        them or, on any refusal, none. UserAlreadyExists if the new username or email is
        taken; with `keep_an_admin`, refused if it would leave no active Admin."""
        values: dict[str, object] = {}
        texts = {
            "username": new_username,
            "email": email,
            "first_name": first_name,
            "last_name": last_name,
        }
        check_text(**{k: v for k, v in texts.items() if v is not None})
        for field in ("username", "email"):
            value = texts[field]
            if value is not None and not value.strip():
                raise InvalidInputError(f"{field} must not be empty", field=field)
        values.update({k: v for k, v in texts.items() if v is not None})
        if roles is not None:
            self.check_roles(roles)
            values["roles"] = list(dict.fromkeys(roles))
        if password is not None:
            _check_password(password)
            values["password_hash"] = hash_password(password)  # slow: outside the transaction
        with self._db.write() as conn:
            current = self._locked(conn, username)
            if keep_an_admin and roles is not None:
                _keep_an_admin(conn, current, roles=roles)
            now = self._clock.now()
            user = users_store.update_profile(conn, username, now, values)
            changed = sorted("password" if k == "password_hash" else k for k in values)
            record_event(
                conn,
                events.USER_CHANGE,
                now,
                owner=by,
                extra={"username": username, "changed": changed},
            )
            if password is not None:
                # A new password signs the user out of the web UI everywhere.
                web_sessions_store.delete_for_user(conn, user.username if user else username)
        assert user is not None  # the row is locked, and it existed
        self._sign_ins.forget(username)
        return user

    def delete(self, username: str, *, by: str | None = None) -> None:
        if "\x00" in username:
            raise UserNotFound(username)
        with self._db.write() as conn:
            if not users_store.delete_user(conn, username):
                raise UserNotFound(username)
            record_event(
                conn, events.USER_DELETE, self._clock.now(), owner=by, extra={"username": username}
            )
        self._sign_ins.forget(username)

    def reset_password(self, username: str, password: str, *, by: str | None = None) -> None:
        """Set a new password; the old one stops working at once in this process."""
        _check_password(password)
        password_hash = hash_password(password)
        with self._db.write() as conn:
            now = self._clock.now()
            if not users_store.set_password_hash(conn, username, password_hash, now):
                raise UserNotFound(username)
            record_event(
                conn,
                events.USER_CHANGE,
                now,
                owner=by,
                extra={"username": username, "changed": ["password"]},
            )
            web_sessions_store.delete_for_user(conn, username)
        self._sign_ins.forget(username)

    def set_active(
        self, username: str, active: bool, *, keep_an_admin: bool = False, by: str | None = None
    ) -> User:
        """Enable or disable a user; a disabled user cannot sign in. With `keep_an_admin`,
        disabling the last active Admin is refused."""
        with self._db.write() as conn:
            if keep_an_admin and not active:
                _keep_an_admin(conn, self._locked(conn, username), active=False)
            now = self._clock.now()
            if not users_store.set_active(conn, username, active, now):
                raise UserNotFound(username)
            record_event(
                conn,
                events.USER_CHANGE,
                now,
                owner=by,
                extra={"username": username, "changed": ["active"], "active": active},
            )
            if not active:
                web_sessions_store.delete_for_user(conn, username)
            user = users_store.get_user(conn, username)
        self._sign_ins.forget(username)
        assert user is not None
        return user

    def add_role(self, username: str, role: str, *, by: str | None = None) -> User:
        """Give a user one more role; refused (as Airflow does) if they already have it."""
        self.check_role(role)
        with self._db.write() as conn:
            user = self._locked(conn, username)
            if role in user.roles:
                raise InvalidInputError(
                    f'User "{username}" is already a member of role "{role}"', field="role"
                )
            updated = self._save_roles(conn, user, [*user.roles, role], by)
        self._sign_ins.forget(username)
        return updated

    def remove_role(self, username: str, role: str, *, by: str | None = None) -> User:
        """Take a role away; refused (as Airflow does) if the user does not have it."""
        with self._db.write() as conn:
            user = self._locked(conn, username)
            if role not in user.roles:
                raise InvalidInputError(
                    f'User "{username}" is not a member of role "{role}"', field="role"
                )
            updated = self._save_roles(conn, user, [r for r in user.roles if r != role], by)
        self._sign_ins.forget(username)
        return updated

    def set_roles(
        self,
        username: str,
        roles: Sequence[str],
        *,
        keep_an_admin: bool = False,
        by: str | None = None,
    ) -> User:
        """Replace a user's roles (the REST API's PATCH); unknown names are refused together.
        With `keep_an_admin`, taking Admin from the last active Admin is refused."""
        self.check_roles(roles)
        with self._db.write() as conn:
            user = self._locked(conn, username)
            if keep_an_admin:
                _keep_an_admin(conn, user, roles=roles)
            updated = self._save_roles(conn, user, list(dict.fromkeys(roles)), by)
        self._sign_ins.forget(username)
        return updated

    @staticmethod
    def _locked(conn: Connection, username: str) -> User:
        """The user, row-locked until commit (PostgreSQL; SQLite's writer lock already is)."""
        if "\x00" in username:
            raise UserNotFound(username)
        user = users_store.get_user(conn, username, for_update=True)
        if user is None:
            raise UserNotFound(username)
        return user

    def _save_roles(
        self, conn: Connection, user: User, roles: Sequence[str], by: str | None
    ) -> User:
        now = self._clock.now()
        users_store.set_roles(conn, user.username, roles, now)
        record_event(
            conn,
            events.USER_CHANGE,
            now,
            owner=by,
            extra={"username": user.username, "changed": ["roles"], "roles": list(roles)},
        )
        saved = users_store.get_user(conn, user.username)
        assert saved is not None
        return saved


def _keep_an_admin(
    conn: Connection,
    user: User,
    *,
    roles: Sequence[str] | None = None,
    active: bool | None = None,
) -> None:
    """Refuse a change to `user` (their new roles, or being disabled) that would leave no
    active user holding Admin. Locks the users' rows, so two Admins demoting each other at
    once take turns and the second is refused."""
    was_admin = user.active and ADMIN in user.roles
    stays_admin = (user.active if active is None else active) and ADMIN in (
        user.roles if roles is None else roles
    )
    if not was_admin or stays_admin:
        return
    others = [
        n for n in users_store.active_holders(conn, ADMIN, for_update=True) if n != user.username
    ]
    if not others:
        field = "active" if active is not None else "roles"
        raise InvalidInputError(
            f"{user.username} is the only active {ADMIN}: give another user the {ADMIN} role"
            " first, or nobody could manage users and roles from the web UI",
            field=field,
        )


def check_text(**values: str) -> None:
    """Refuse profile text the users table cannot hold (NUL, over the column's width), naming
    the field; keyword names are the table's (username, email, first_name, last_name)."""
    for field, value in values.items():
        if "\x00" in value:  # PostgreSQL cannot store it: refused here, not as a 500 there
            raise InvalidInputError(f"{field} must not contain NUL characters", field=field)
        if len(value) > _MAX_LENGTHS[field]:
            raise InvalidInputError(
                f"{field} is longer than {_MAX_LENGTHS[field]} characters", field=field
            )


def _check_password(password: str) -> None:
    if not password:
        raise InvalidInputError("password must not be empty", field="password")
