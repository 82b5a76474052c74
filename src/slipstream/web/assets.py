"""The UI's static files (CSS, JS, the vendored htmx), served from the package under /static.
Each URL carries a digest of the file's content (`?v=...`), so browsers may keep a file for a
year and still fetch a new one the moment it changes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_FOLDER = Path(__file__).with_name("static")
STATIC_PREFIX = "/static"


class Assets:
    """Content digests of the static files, read once per app."""

    def __init__(self, folder: Path = STATIC_FOLDER) -> None:
        self._digests = {
            path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            for path in folder.iterdir()
            if path.is_file()
        }

    def url(self, name: str) -> str:
        digest = self._digests.get(name)
        if digest is None:
            raise LookupError(f"no static file {name!r} in the package")
        return f"{STATIC_PREFIX}/{name}?v={digest}"


class CachedStaticFiles(StaticFiles):
    """StaticFiles that lets browsers keep a versioned URL for a year."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200 and b"v=" in scope.get("query_string", b""):
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        else:
            response.headers.setdefault("Cache-Control", "no-cache")
        return response
