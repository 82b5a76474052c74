"""The trigger form, /dags/{dag_id}/trigger: a field per declared param (made from its JSON
Schema), an advanced JSON editor for the whole conf, and an optional run id, logical date and
note. As Airflow's, the form is prefilled from a `conf` query parameter holding a JSON object
(its fields and its JSON; a `conf` that is not one is shown as the JSON's problem, with 400).
A post is checked by the trigger service, the same check the API's trigger makes; each
field's problem is shown beside it, with what the person typed kept, and nothing is created
until everything passes. A trigger that passes goes to the new run's page."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from slipstream.auth.roles import Action
from slipstream.core.records import DagRecord
from slipstream.errors import ConflictError, InvalidInputError, RunAlreadyExists
from slipstream.services.runs import TriggerParams, check_run_id
from slipstream.web.dag_access import dag_for
from slipstream.web.deps import PartsDep, WebParts
from slipstream.web.forms import form_of
from slipstream.web.nav import NavItem
from slipstream.web.param_form import ParamField, fields_of, parse_moment, read_fields
from slipstream.web.sessions import allowed
from slipstream.web.visitor import Visitor

NAV: NavItem | None = None
TRIGGERED_BY = "ui"  # Airflow 3's DagRunTriggeredByType.UI
NOTE_LIMIT = 1000

RunCreator = Annotated[Visitor, Depends(allowed(Action.RUNS_CREATE))]


def trigger_path(dag_id: str) -> str:
    return f"/dags/{quote(dag_id, safe='')}/trigger"


def run_path(dag_id: str, run_id: str) -> str:
    return f"/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


@dataclass
class TriggerForm:
    """What the form shows: each field's text, the advanced JSON, the other inputs, and the
    problems found (by field; `general` for the conf as a whole)."""

    fields: list[ParamField]
    values: dict[str, str]
    conf_json: str
    conf_json_initial: str
    run_id: str = ""
    logical_date: str = ""
    note: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)
    json_used: bool = False  # the advanced JSON was edited, so it was the conf
    conflict: bool = False  # refused for a run id or logical date another run has

    @property
    def has_errors(self) -> bool:
        return bool(self.errors or self.general)


def _blank(params: TriggerParams) -> TriggerForm:
    """The form as first shown: every field at its default, the JSON of those defaults."""
    fields = fields_of(params.params)
    defaults = {f.name: f.default for f in fields if f.has_default}
    values = {f.name: f.shown(f.default) for f in fields if f.has_default}
    text = json.dumps(defaults, indent=2)
    return TriggerForm(fields, values, text, text)


def _prefilled(params: TriggerParams, raw: str) -> TriggerForm:
    """The form with the URL's conf in its fields and its JSON; or, when that conf is not a
    JSON object, the form at its defaults with the conf's text in the JSON editor, marked,
    for the person to mend (a post then takes the edited JSON as the conf)."""
    form = _blank(params)
    try:
        conf = json.loads(raw)
    except ValueError as exc:
        problem = f"The conf given in the URL (conf=) is not valid JSON: {exc}"
    else:
        if isinstance(conf, dict):
            for f in form.fields:
                if f.name in conf:
                    form.values[f.name] = f.shown(conf[f.name])
            text = json.dumps({**json.loads(form.conf_json_initial), **conf}, indent=2)
            form.conf_json = form.conf_json_initial = text
            return form
        problem = (
            f"The conf given in the URL (conf=) must be a JSON object, not {type(conf).__name__}."
        )
    form.conf_json = raw
    form.errors["conf"] = problem
    return form


def _extra_keys(form: TriggerForm) -> dict[str, Any]:
    """Keys of the JSON the form started with that are not params (a conf from the URL may
    have some): the run gets them beside the fields' values, as Airflow's form sends them."""
    try:
        initial = json.loads(form.conf_json_initial)
    except ValueError:
        return {}
    if not isinstance(initial, dict):
        return {}
    params = {f.name for f in form.fields}
    return {key: value for key, value in initial.items() if key not in params}


def _same_json(a: str, b: str) -> bool:
    """Whether two texts hold the same JSON (or, when not JSON, the same text)."""
    try:
        return bool(json.loads(a) == json.loads(b))
    except ValueError:
        return a.strip() == b.strip()


def _render(
    request: Request, parts: WebParts, dag: DagRecord, form: TriggerForm, status: int = 200
) -> Response:
    return parts.templates.render(
        request,
        "runs/trigger.html",
        {
            "title": f"Trigger {dag.dag_id}",
            "nav_key": "dags",
            "dag": dag,
            "active_tab": "trigger",
            "form": form,
            "action": trigger_path(dag.dag_id),
            "note_limit": NOTE_LIMIT,
        },
        status=status,
    )


def trigger_form(
    request: Request,
    dag_id: str,
    visitor: RunCreator,
    parts: PartsDep,
    conf: Annotated[str | None, Query()] = None,
) -> Response:
    # A plain function: FastAPI runs it in the threadpool, where reading the database belongs.
    dag_for(parts, visitor, dag_id, Action.RUNS_CREATE)
    params = parts.services.runs.trigger_params(dag_id)
    if conf is None:
        return _render(request, parts, params.dag, _blank(params))
    form = _prefilled(params, conf)
    return _render(request, parts, params.dag, form, 400 if form.has_errors else 200)


async def trigger(request: Request, dag_id: str, visitor: RunCreator, parts: PartsDep) -> Response:
    submitted = await form_of(request)

    def attempt() -> tuple[TriggerParams, TriggerForm, str | None]:
        dag_for(parts, visitor, dag_id, Action.RUNS_CREATE)
        params = parts.services.runs.trigger_params(dag_id)
        form = _blank(params)
        form.conf_json = submitted.get("conf_json", form.conf_json)
        form.conf_json_initial = submitted.get("conf_json_initial", form.conf_json_initial)
        form.run_id = submitted.get("run_id", "").strip()
        form.logical_date = submitted.get("logical_date", "").strip()
        form.note = submitted.get("note", "")
        reading = read_fields(form.fields, submitted)
        form.values.update(reading.typed)
        conf: Any
        if not _same_json(form.conf_json, form.conf_json_initial):
            # The person edited the whole conf: it is the conf, and the fields are not read.
            form.json_used = True
            try:
                conf = json.loads(form.conf_json) if form.conf_json.strip() else {}
            except ValueError as exc:
                form.errors["conf"] = f"The advanced JSON is not valid JSON: {exc}"
                conf = None
            if conf is not None and not isinstance(conf, dict):
                form.errors["conf"] = f"The conf must be a JSON object, not {type(conf).__name__}"
                conf = None
        else:
            conf = {**_extra_keys(form), **reading.conf}
            form.errors.update(reading.problems)
        logical_date = _logical_date(form)
        if form.run_id:
            try:
                check_run_id(form.run_id)
            except InvalidInputError as exc:
                form.errors["run_id"] = str(exc)
        if len(form.note) > NOTE_LIMIT:
            form.errors["note"] = f"The note must be at most {NOTE_LIMIT} characters."
        if isinstance(conf, dict):
            # Every problem at once: the params read are checked even when another field
            # could not be read (its own problem already stands beside it).
            for name, reason in parts.services.runs.conf_problems(dag_id, conf).items():
                if name not in form.errors:
                    _place(form, name, reason)
        if form.has_errors:
            return params, form, None
        try:
            result = parts.services.runs.trigger(
                dag_id,
                conf=conf,
                run_id=form.run_id or None,
                logical_date=logical_date,
                note=form.note or None,
                triggered_by=TRIGGERED_BY,
                unique_logical_date=logical_date is not None,
                by=visitor.user.username,
            )
        except RunAlreadyExists as exc:
            form.conflict = True
            form.errors["run_id"] = f"A run with the id {exc.run_id!r} already exists."
        except ConflictError as exc:  # another run has this logical date
            form.conflict = True
            form.errors["logical_date"] = str(exc)
        except InvalidInputError as exc:
            _place(form, exc.field or "", str(exc))
        else:
            return params, form, result.run.run_id
        return params, form, None

    params, form, run_id = await run_in_threadpool(attempt)
    if run_id is not None:
        return RedirectResponse(run_path(dag_id, run_id), status_code=303)
    status = 409 if form.conflict else 400
    return _render(request, parts, params.dag, form, status)


def _logical_date(form: TriggerForm) -> datetime | None:
    if not form.logical_date:
        return None
    try:
        return parse_moment(form.logical_date)
    except ValueError:
        form.errors["logical_date"] = (
            f"Expected a date and time such as 2024-01-31T09:30, got {form.logical_date!r}."
        )
        return None


def _place(form: TriggerForm, name: str, reason: str) -> None:
    """A problem beside its field: a param's own field when the fields made the conf, else
    the top of the form (naming the param) when the advanced JSON did."""
    params = {f.name for f in form.fields}
    if name in params and not form.json_used:
        form.errors[name] = reason
    elif name in params:
        form.general.append(f"conf field {name!r}: {reason}")
    elif name == "dag_run_id":
        form.errors["run_id"] = reason
    elif name in ("logical_date", "note"):
        form.errors[name] = reason
    else:
        form.general.append(reason)


def router() -> APIRouter:
    pages = APIRouter()
    pages.add_api_route("/dags/{dag_id}/trigger", trigger_form, methods=["GET"])
    pages.add_api_route("/dags/{dag_id}/trigger", trigger, methods=["POST"])
    return pages
