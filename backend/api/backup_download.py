"""GET /addon-backups/<id>: download one add-on backup file (issue 15).

Authorised like GraphQL: the bearer token of the Client owning the backup. Anything else,
including another Client's backup id, answers 404 with the same body (its existence is not
revealed); no token answers 401.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from backend.api.context import bearer_from_header
from backend.errors import NotFound
from backend.services import accounts, addon_backups


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status)


async def download_backup(request: Request) -> Response:
    token = bearer_from_header(request.headers.get("authorization"))
    found = await accounts.authenticate(token) if token else None
    if found is None:
        return _error(401, "UNAUTHENTICATED", "send a valid bearer token")
    client, _token = found
    raw = request.path_params["backup_id"]
    try:
        backup = await addon_backups.get_owned_backup(client, int(raw))
    except (ValueError, NotFound):
        return _error(404, "NOT_FOUND", f"backup {str(raw)[:20]!r} not found")
    return FileResponse(
        addon_backups.path_of(backup),
        media_type="application/octet-stream",
        filename=backup.file_name,
    )
