"""``POST /oauth/token``: the OAuth2 client-credentials grant."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import msgspec
from fastapi import APIRouter, Request

from meterline.api.deps import services
from meterline.api.schemas import TokenRequest, TokenResponse, errors
from meterline.errors import ParameterRequiredError, UnsupportedMediaTypeError, ValidationError

router = APIRouter(tags=["auth"])


async def _form_or_json(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if content_type == "application/x-www-form-urlencoded":
        return dict(parse_qsl(body.decode("utf-8", "replace")))
    if content_type in ("application/json", ""):
        try:
            data = msgspec.json.decode(body) if body else {}
        except msgspec.DecodeError:
            raise ValidationError("the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ValidationError("the body must be a JSON object")
        return data
    raise UnsupportedMediaTypeError(
        f"Content-Type {content_type!r} is not supported",
        details="Send application/json or application/x-www-form-urlencoded.",
    )


@router.post(
    "/oauth/token",
    response_model=TokenResponse,
    responses=errors(400, 401, 403, 415),
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": TokenRequest.model_json_schema()},
                "application/x-www-form-urlencoded": {"schema": TokenRequest.model_json_schema()},
            }
        }
    },
    summary="Exchange client credentials for an access token",
)
async def token(request: Request) -> dict[str, Any]:
    """Client-credentials grant (JSON or form body); returns a one-hour JWT bearer token."""
    data = await _form_or_json(request)
    grant = data.get("grant_type", "client_credentials")
    if grant != "client_credentials":
        raise ValidationError(
            f"unsupported grant_type {grant!r}",
            details="Only client_credentials is supported.",
            validation_errors=[{"field": "grant_type", "message": "must be client_credentials"}],
        )
    missing = [
        k
        for k in ("client_id", "client_secret")
        if not isinstance(data.get(k), str) or not data.get(k)
    ]
    if missing:
        raise ParameterRequiredError(
            f"{' and '.join(missing)} required",
            validation_errors=[{"field": k, "message": "required"} for k in missing],
        )
    scope = data.get("scope")
    return services(request).auth.issue_token(
        data["client_id"], data["client_secret"], scope if isinstance(scope, str) else None
    )
