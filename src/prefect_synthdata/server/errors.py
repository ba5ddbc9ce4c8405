"""Every error is JSON with a readable `detail` (and a stable `code`); never an HTML page or a 500.

Example:
    >>> ApiError(404, "batch 'x' not found").body()
    {'detail': "batch 'x' not found", 'code': 'not_found'}
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from prefect_synthdata.server.faults import InjectedFault

logger = logging.getLogger("prefect_synthdata.server")

CODES = {
    400: "bad_request",
    401: "unauthorized",
    402: "quota_exceeded",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "bad_request",
}


class ApiError(Exception):
    """An error answer: status, readable detail, optional machine-readable `code` and extras."""

    def __init__(self, status: int, detail: str, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.detail, self.extra = status, detail, extra
        self.code = code or CODES.get(status, "error")

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, "code": self.code, **self.extra}


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc if part not in ("body", "query", "path", "header"))


def validation_detail(exc: RequestValidationError) -> tuple[str, list[dict[str, str]]]:
    """One readable sentence plus a `[{field, problem}]` list from a request validation error."""
    problems = []
    for error in exc.errors():
        field = _location(tuple(error.get("loc", ()))) or "body"
        message = str(error.get("msg", "invalid value"))
        if error.get("type") == "json_invalid":
            field, message = "body", "malformed JSON"
        elif error.get("type") == "extra_forbidden":
            message = "unknown field"
        problems.append({"field": field, "problem": message})
    return "invalid request: " + "; ".join(
        f"{p['field']}: {p['problem']}" for p in problems
    ), problems


def http_error_response(exc: StarletteHTTPException) -> JSONResponse:
    """The JSON answer of an `HTTPException` (also sent by middleware, outside the routes)."""
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    body = {"detail": detail, "code": CODES.get(exc.status_code, "error")}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Map framework and unexpected errors onto JSON answers."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail, problems = validation_detail(exc)
        return JSONResponse(
            {"detail": detail, "code": "bad_request", "errors": problems}, status_code=400
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return http_error_response(exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, InjectedFault):
            logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"detail": "internal server error", "code": "internal"}, status_code=500
        )
