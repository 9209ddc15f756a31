"""Response and request shapes, for validation-free documentation in ``/openapi.json``.

Handlers build plain dicts (the query model already validated them); these models only
describe those dicts to API users and code generators.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ValidationProblem(BaseModel):
    field: str
    message: str


class ErrorObject(BaseModel):
    code: str = Field(examples=["VALIDATION_ERROR"])
    message: str
    details: str | None = None
    request_id: str
    timestamp: str
    validation_errors: list[ValidationProblem] | None = None


class ErrorResponse(BaseModel):
    """Every 4xx and 5xx response has this body."""

    error: ErrorObject


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given error statuses."""
    text = {
        400: "Invalid input (VALIDATION_ERROR, DATE_FORMAT_INVALID, PARAMETER_REQUIRED)",
        401: "Missing or invalid credentials (AUTH_TOKEN_MISSING, AUTH_TOKEN_INVALID)",
        403: "Credentials lack the scope (AUTH_SCOPE_INSUFFICIENT)",
        404: "Not found",
        409: "Conflict with existing state",
        413: "Body or batch too large (PAYLOAD_TOO_LARGE)",
        415: "Unsupported Content-Type or Content-Encoding",
        429: "Rate limit or quota exceeded",
        503: "Temporarily unavailable; retry after Retry-After seconds",
    }
    return {s: {"model": ErrorResponse, "description": text.get(s, "Error")} for s in statuses}


class TokenRequest(BaseModel):
    grant_type: str = Field("client_credentials", examples=["client_credentials"])
    client_id: str
    client_secret: str
    scope: str | None = Field(None, description="Space-separated subset of the client's scopes")


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int = 3600
    scope: str


class Rejection(BaseModel):
    index: int
    code: str
    message: str


class IngestResponse(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[Rejection]


class StatusDistribution(BaseModel):
    model_config = {"populate_by_name": True}
    s2xx: int = Field(alias="2xx")
    s3xx: int = Field(alias="3xx")
    s4xx: int = Field(alias="4xx")
    s5xx: int = Field(alias="5xx")


class Overview(BaseModel):
    total_requests: int
    requests_per_minute: float
    avg_latency_ms: float | None
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    p99_latency_ms: float | None
    error_rate: float
    unique_consumers: int
    bandwidth_bytes: int
    status_distribution: StatusDistribution
    start: str
    end: str


class Point(BaseModel):
    timestamp: str
    value: int | float | None


class Timeseries(BaseModel):
    metric: str
    granularity: str
    unit: str
    points: list[Point]
    start: str
    end: str


class EndpointRow(BaseModel):
    method: str
    route: str
    requests: int
    error_rate: float
    avg_latency_ms: float | None
    p95_latency_ms: float | None
    p99_latency_ms: float | None


class Endpoints(BaseModel):
    data: list[EndpointRow]
    start: str
    end: str


class ConsumerRow(BaseModel):
    consumer_id: str
    requests: int
    errors: int
    error_rate: float
    bandwidth_bytes: int
    first_seen: str | None
    last_seen: str | None


class Paging(BaseModel):
    total: int
    limit: int
    offset: int


class Consumers(BaseModel):
    data: list[ConsumerRow]
    pagination: Paging
    start: str
    end: str


class QueryFilter(BaseModel):
    field: str
    op: str = "eq"
    value: Any


class QueryOrder(BaseModel):
    field: str
    direction: str = "desc"


class QueryRequest(BaseModel):
    """The one metric query model; see the metric and dimension vocabulary."""

    metrics: list[str] = Field(examples=[["requests", "error_rate", "latency_p95"]])
    dimensions: list[str] = Field(default_factory=list, examples=[["route"]])
    filters: list[QueryFilter] = Field(default_factory=list)
    range: str | None = Field(None, examples=["24h"])
    start: str | None = None
    end: str | None = None
    granularity: str | None = Field(None, description="minute, hour, day or null")
    order_by: list[QueryOrder] = Field(default_factory=list)
    limit: int | None = None
    offset: int = 0


class QueryResponse(BaseModel):
    data: list[dict[str, Any]]
    start: str
    end: str
    granularity: str | None


class VisualizationRequest(BaseModel):
    metric: str = Field(examples=["requests"])
    time_range: str | dict[str, str] = Field("7d", examples=["7d"])
    aggregation: str = Field("daily", description="minute/minutely, hourly/hour, daily/day")
    format: str = "chart_ready"
    filters: list[QueryFilter] = Field(default_factory=list)


class DataPoint(BaseModel):
    timestamp: str
    value: int | float | None
    display_value: str


class VisualizationResponse(BaseModel):
    metric: str
    aggregation: str
    unit: str
    data_points: list[DataPoint]
    start: str
    end: str
