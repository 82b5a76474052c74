"""The roles pages on a real server (SQLite and PostgreSQL): the list with permissions and
holders, built-in roles read-only, a DAG-scoped role made, edited, renamed and deleted through
the page (and what its holder then sees), bad input beside its field, 403 for others and CSRF
on every POST."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.api.conftest import ApiServer
from tests.web.conftest import PASSWORD, Browser, SignIn

pytestmark = pytest.mark.slow

Fields = dict[str, str | list[str]]


@pytest.fixture(scope="module", autouse=True)
def setting(api: ApiServer) -> None:
    api.create_user("roles_admin", PASSWORD, "Admin")
    api.create_user("roles_op", PASSWORD, "Op")
    api.create_user("roles_member", PASSWORD, "Public")


def post(browser: Browser, path: str, fields: Fields, *, csrf: bool = True) -> httpx.Response:
    data = {**fields, "csrf_token": browser.csrf} if csrf else fields
    return browser.http.post(path, data=data)


def stored_roles(api: ApiServer) -> dict[str, list[tuple[str, str]]]:
    """Every role's (action, resource) pairs, as `slipstream roles list -p` reads them."""
    answer = api.slipstream("roles", "list", "--permission", "--output", "json")
    assert answer.returncode == 0, answer.stderr
    roles: dict[str, list[tuple[str, str]]] = {}
    for row in json.loads(answer.stdout):
        pairs = roles.setdefault(row["name"], [])
        for action in filter(None, (row.get("action") or "").split(",")):
            pairs.append((action, row["resource"]))
    return roles


def roles_of(api: ApiServer, username: str) -> list[str]:
    listed = json.loads(api.slipstream("users", "list", "--output", "json").stdout)
    return next(u["roles"] for u in listed if u["username"] == username)


def dag_ids(html: str) -> list[str]:
    return re.findall(r'<tr class="dag-row[^"]*" data-dag-id="([^"]+)"', html)


ETL_ROLE: Fields = {
    "name": "etl_team",
    "perm": ["can_read DAG Runs", "can_create DAG Runs"],
    "scope-0-kind": "dag",
    "scope-0-name": "example_etl",
    "scope-0-verb": ["can_read", "can_edit"],
    "scope-1-kind": "tag",
    "scope-1-name": "",
    "scope-2-kind": "dag",
    "scope-2-name": "",
}


def test_the_list_shows_every_role_with_its_permissions_and_holders(
    api: ApiServer, sign_in: SignIn
) -> None:
    admin = sign_in("roles_admin")
    page = admin.get("/security/roles")
    assert page.status_code == 200
    names = re.findall(r'<tr class="role-row" data-role="([^"]+)">', page.text)
    assert names[:5] == ["Admin", "Public", "Viewer", "User", "Op"]
    viewer = page.text.split('data-role="Viewer"')[1].split("</tr>")[0]
    assert "read only" in viewer and "<strong>DAG Runs</strong>: read" in viewer
    assert "Create role" in page.text and 'name="scope-0-name"' in page.text
    builtin = admin.get("/security/roles/Admin")
    assert builtin.status_code == 200
    assert "Built-in roles cannot be changed" in builtin.text
    assert "Delete role" not in builtin.text and "Save changes" not in builtin.text
    refused = post(admin, "/security/roles/Admin/edit", {"name": "Admin", "perm": "can_read DAGs"})
    assert refused.status_code == 400 and "built in" in refused.text
    assert post(admin, "/security/roles/Viewer/delete", {}).status_code == 400
    assert admin.get("/security/roles/nope").status_code == 404
    assert post(admin, "/security/roles/nope/delete", {}).status_code == 404


def test_a_dag_scoped_role_made_edited_renamed_and_deleted_through_the_page(
    api: ApiServer, sign_in: SignIn
) -> None:
    admin = sign_in("roles_admin")
    made = post(admin, "/security/roles", ETL_ROLE)
    assert (made.status_code, made.headers["location"]) == (
        303,
        "/security/roles/etl_team?notice=created",
    )
    assert sorted(stored_roles(api)["etl_team"]) == [
        ("can_create", "DAG Runs"),
        ("can_edit", "DAG:example_etl"),
        ("can_read", "DAG Runs"),
        ("can_read", "DAG:example_etl"),
    ]
    page = admin.get(made.headers["location"])
    assert "Role created." in page.text
    assert 'name="scope-0-name" value="example_etl"' in page.text
    assert 'value="can_create DAG Runs" aria-label="create DAG Runs" checked' in page.text

    # Its holder sees only that DAG.
    assert (
        api.slipstream("users", "add-role", "-u", "roles_member", "-r", "etl_team").returncode == 0
    )
    member = sign_in("roles_member")
    assert dag_ids(member.get("/dags").text) == ["example_etl"]
    assert "1 user" in admin.get("/security/roles/etl_team").text

    # Edit: a tag row instead of the DAG, renamed at once; the holder keeps it by its new name.
    edited = post(
        admin,
        "/security/roles/etl_team/edit",
        {
            "name": "example_team",
            "perm": "can_read DAG Runs",
            "scope-0-kind": "tag",
            "scope-0-name": "example",
            "scope-0-verb": "can_read",
            "scope-1-kind": "dag",
            "scope-1-name": "",
        },
    )
    assert edited.headers["location"] == "/security/roles/example_team?notice=saved"
    roles = stored_roles(api)
    assert "etl_team" not in roles
    assert sorted(roles["example_team"]) == [
        ("can_read", "DAG Runs"),
        ("can_read", "DAG tag:example"),
    ]
    assert roles_of(api, "roles_member") == ["Public", "example_team"]
    assert dag_ids(member.get("/dags").text) == ["example_bash", "example_etl", "my_dag"]

    # Delete: the page says who loses it; then they do.
    page = admin.get("/security/roles/example_team")
    assert "1 user holds this role and will lose it." in page.text
    assert 'data-confirm="Delete the role example_team? 1 user will lose it."' in page.text
    deleted = post(admin, "/security/roles/example_team/delete", {})
    assert deleted.headers["location"] == "/security/roles?notice=deleted"
    assert "example_team" not in stored_roles(api)
    assert roles_of(api, "roles_member") == ["Public"]
    assert "Role deleted." in admin.get(deleted.headers["location"]).text


def test_bad_input_is_refused_beside_its_field_and_nothing_is_made(
    api: ApiServer, sign_in: SignIn
) -> None:
    admin = sign_in("roles_admin")

    def refused(changes: Fields, status: int, field: str, message: str) -> str:
        answer = post(admin, "/security/roles", {**ETL_ROLE, "name": "bad_role", **changes})
        assert answer.status_code == status, answer.text
        assert f'id="{field}-error" role="alert">{message}' in answer.text, answer.text
        assert 'id="create-role" open' in answer.text
        assert "bad_role" not in stored_roles(api)
        return answer.text

    refused({"name": " "}, 400, "name", "Enter a role name.")
    refused({"name": " padded"}, 400, "name", "role name must not start or end with spaces")
    refused({"name": "Viewer"}, 409, "name", "role &#39;Viewer&#39; already exists")
    refused({"scope-0-verb": []}, 400, "scope-0", "Choose at least one action on it.")
    text = refused({"scope-0-name": ""}, 400, "scope-0", "Enter a DAG id, or clear this row.")
    # The form keeps what was chosen, and the blank rows are not doubled.
    assert 'value="can_create DAG Runs" aria-label="create DAG Runs" checked' in text
    assert 'name="scope-3-name"' in text and 'name="scope-4-name"' not in text
    # A blank row before a wrong one: the error is beside the row as shown again (the first).
    shifted = {**ETL_ROLE, "scope-0-name": "", "scope-0-verb": [], "scope-1-name": "x"}
    refused(shifted, 400, "scope-0", "Choose at least one action on it.")
    refused({"scope-0-kind": "owner"}, 400, "scope-0", "Choose DAG id or DAG tag.")
    refused({"perm": "can_fly DAGs"}, 400, "perms", "The specified action: &#39;can_fly&#39;")
    refused({"perm": "can_read Cheese"}, 400, "perms", "The specified resource: &#39;Cheese&#39;")


def test_others_get_403_and_every_post_needs_the_csrf_token(
    api: ApiServer, sign_in: SignIn
) -> None:
    assert api.slipstream("roles", "create", "kept").returncode == 0
    op = sign_in("roles_op")
    assert op.get("/security/roles").status_code == 403
    assert op.get("/security/roles/kept").status_code == 403
    for path in ("/security/roles", "/security/roles/kept/edit", "/security/roles/kept/delete"):
        answer = post(op, path, {"name": "hacked"})
        assert answer.status_code == 403 and "Not allowed" in answer.text, path
    admin = sign_in("roles_admin")
    for path in ("/security/roles", "/security/roles/kept/edit", "/security/roles/kept/delete"):
        answer = post(admin, path, {"name": "hacked"}, csrf=False)
        assert answer.status_code == 403 and "Request refused" in answer.text, path
    listed = json.loads(api.slipstream("roles", "list", "--output", "json").stdout)
    names = {role["name"] for role in listed}
    assert "kept" in names and "hacked" not in names
