"""What every API endpoint shares: authorization, request bodies, JSON answers, errors."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from ivr.api.auth import Person, require
from ivr.core.review import ReviewError
from ivr.db.errors import DB_ERRORS
from ivr.recordings.storage import StorageError
from ivr.review.service import ImportRejected

log = logging.getLogger("ivr.api")

STATUS = {
    "invalid": 400,
    "not-permitted": 403,
    "not-found": 404,
    "conflict": 409,
    "unavailable": 503,
}
STATUS_TAMPERED = 409

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[Request, Person], Awaitable[Any]]
Endpoint = Callable[[Request], Awaitable[Response]]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(type(value).__name__)


def answer(data: Any, status: int = 200) -> Response:
    text = json.dumps(data, ensure_ascii=False, default=_default)
    return Response(text, status, media_type="application/json")


def error(kind: str, message: str, status: int, **more: Any) -> Response:
    return answer({"error": kind, "message": message, **more}, status)


async def body(request: Request, model: type[M]) -> M:
    """The request's JSON body as `model`; a clear `invalid` error otherwise."""
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ReviewError(f"{where}: {first['msg']}") from None


def endpoint(scope: str) -> Callable[[Handler], Endpoint]:
    """An endpoint for people holding `scope`; errors become JSON with a kind the CLI maps to
    its exit codes."""

    def wrap(handler: Handler) -> Endpoint:
        @functools.wraps(handler)
        async def run(request: Request) -> Response:
            try:
                person = require(request.user, request.auth.scopes, scope)
                data = await handler(request, person)
            except ImportRejected as exc:
                return error(exc.kind, str(exc), 400, problems=exc.problems)
            except ReviewError as exc:
                return error(exc.kind, str(exc), STATUS.get(exc.kind, STATUS_TAMPERED))
            except StorageError as exc:
                return error("failed", f"storage: {exc}", 502)
            except DB_ERRORS as exc:
                log.warning("API %s %s: database: %r", request.method, request.url.path, exc)
                return error("unavailable", f"the database did not answer: {exc}", 503)
            if isinstance(data, Response):
                return data
            return answer(data)

        return run

    return wrap
