"""Reading an HTML form's fields from a request body (application/x-www-form-urlencoded, what
the UI's forms and htmx send), parsed once per request and kept on it."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qs

from fastapi import Request

from slipstream.web.errors import PageError

FORM_MEDIA = "application/x-www-form-urlencoded"


async def form_of(request: Request) -> Mapping[str, str]:
    """The form's fields (the last value of a repeated one); empty for a body that is not a
    form. A body that is not UTF-8 is refused with 400."""
    cached: Mapping[str, str] | None = getattr(request.state, "form", None)
    if cached is not None:
        return cached
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    fields: dict[str, str] = {}
    if media == FORM_MEDIA:
        raw = await request.body()
        try:
            parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise PageError(400, "Bad request", "The form was not sent as UTF-8.") from None
        fields = {key: values[-1] for key, values in parsed.items()}
    request.state.form = fields
    return fields


async def form_list(request: Request, name: str) -> list[str]:
    """Every value of a field a form may repeat (checkboxes of one name), in order."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != FORM_MEDIA:
        return []
    await form_of(request)  # refuses a body that is not UTF-8
    raw = await request.body()  # kept by the request: not read twice from the client
    return parse_qs(raw.decode("utf-8"), keep_blank_values=True).get(name, [])
