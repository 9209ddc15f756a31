"""What a report is asked to contain: validated from the ``POST /v2/reports/generate`` body.

The period is resolved to absolute UTC instants when the request is accepted, so a job
that runs later (or again, after a crash) renders exactly the same data.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from meterline.errors import DateFormatError, ValidationError
from meterline.query import DIMENSIONS, TimeRange, iso, parse_instant, resolve_range
from meterline.reports.templates import CHART_TYPES

FORMATS = ("json", "csv", "pdf", "excel")
DELIVERY_METHODS = ("download", "email", "webhook")
MAX_RECIPIENTS = 50
_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class Layout:
    """Page orientation and which charts to draw."""

    orientation: str = "portrait"
    include_charts: bool = True
    chart_types: tuple[str, ...] = CHART_TYPES


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where a finished report goes besides its download link."""

    method: str = "download"
    recipients: tuple[str, ...] = ()
    url: str | None = None
    secret: str | None = None

    def public(self) -> dict[str, Any]:
        """The delivery settings as the API shows them (never the webhook secret)."""
        shown: dict[str, Any] = {"method": self.method}
        if self.method == "email":
            shown["recipients"] = list(self.recipients)
        if self.method == "webhook":
            shown["url"] = self.url
        return shown


@dataclass(frozen=True, slots=True)
class ReportSpec:
    """A validated report request with its period resolved to UTC instants."""

    name: str
    template_id: str
    start: datetime
    end: datetime
    format: str = "pdf"
    description: str = ""
    dimension_filters: dict[str, list[Any]] = field(default_factory=dict)
    layout: Layout = field(default_factory=Layout)
    delivery: Delivery = field(default_factory=Delivery)

    def as_json(self) -> dict[str, Any]:
        """The stored form; :func:`spec_from_json` reads it back."""
        body = asdict(self)
        body["start"], body["end"] = iso(self.start), iso(self.end)
        return body

    def filters_applied(self) -> dict[str, Any]:
        """The filters as the report API shows them."""
        return {
            "date_range": {"start": iso(self.start), "end": iso(self.end)},
            **self.dimension_filters,
        }


def spec_from_json(body: dict[str, Any]) -> ReportSpec:
    """Read back :meth:`ReportSpec.as_json`."""
    layout = dict(body["layout"])
    layout["chart_types"] = tuple(layout["chart_types"])
    delivery = dict(body["delivery"])
    delivery["recipients"] = tuple(delivery["recipients"])
    return ReportSpec(
        name=body["name"],
        template_id=body["template_id"],
        start=parse_instant(body["start"], "start"),
        end=parse_instant(body["end"], "end"),
        format=body["format"],
        description=body["description"],
        dimension_filters=body["dimension_filters"],
        layout=Layout(**layout),
        delivery=Delivery(**delivery),
    )


def _problem(errors: list[dict[str, Any]], where: str, message: str, value: Any = None) -> None:
    item: dict[str, Any] = {"field": where, "message": message}
    if value is not None:
        item["provided_value"] = value
    errors.append(item)


def _period(filters: dict[str, Any], now: datetime) -> TimeRange:
    date_range = filters.get("date_range")
    if date_range is None:
        range_ = filters.get("range", "7d")
        if not isinstance(range_, str):
            raise ValidationError(
                "'filters.range' must be a string such as 7d",
                validation_errors=[{"field": "filters.range", "message": "must be a string"}],
            )
        return resolve_range(range_=range_, start=None, end=None, now=now)
    if not isinstance(date_range, dict) or not {"start", "end"} <= set(date_range):
        raise ValidationError(
            "'filters.date_range' must be {start, end}",
            validation_errors=[{"field": "filters.date_range", "message": "give start and end"}],
        )
    bounds: dict[str, datetime] = {}
    for key in ("start", "end"):
        value = date_range[key]
        where = f"filters.date_range.{key}"
        if not isinstance(value, str):
            raise DateFormatError(
                f"'{where}' must be an ISO 8601 date",
                validation_errors=[{"field": where, "message": "must be ISO 8601"}],
            )
        try:
            moment = parse_instant(value, where)
        except DateFormatError as exc:
            exc.validation_errors = [
                {"field": where, "message": "must be ISO 8601", "provided_value": value}
            ]
            exc.details = f"The {where} field must be a valid ISO 8601 date (got {value!r})"
            raise
        # An end given as a plain date includes that whole day, as people read it.
        if key == "end" and _DATE_ONLY.match(value.strip()):
            moment += timedelta(days=1)
        bounds[key] = moment
    return resolve_range(range_=None, start=iso(bounds["start"]), end=iso(bounds["end"]), now=now)


def _dimension_filters(filters: dict[str, Any], errors: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, list[Any]] = {}
    for key, value in filters.items():
        if key in ("date_range", "range"):
            continue
        name = key if key in DIMENSIONS else key.removesuffix("s")
        if name not in DIMENSIONS:
            _problem(
                errors,
                f"filters.{key}",
                f"unknown filter; use date_range, range or a dimension: {', '.join(DIMENSIONS)}",
            )
            continue
        values = value if isinstance(value, list) else [value]
        numeric = DIMENSIONS[name].value_type != "String"
        kind = int if numeric else str
        if (
            not values
            or len(values) > 1000
            or not all(isinstance(v, kind) and not isinstance(v, bool) for v in values)
        ):
            _problem(errors, f"filters.{key}", f"give 1 to 1000 {kind.__name__} values")
            continue
        out[name] = values
    return out


def parse_spec(body: Any, *, now: datetime, known_template: bool) -> ReportSpec:
    """Validate a generate request. ``known_template`` says whether ``template_id`` exists
    for the caller (checked by the caller, so this stays free of storage)."""
    if not isinstance(body, dict):
        raise ValidationError("the body must be a JSON object")
    errors: list[dict[str, Any]] = []
    name = body.get("name")
    if name is None:
        _problem(errors, "name", "is required")
    elif not isinstance(name, str) or not 5 <= len(name.strip()) <= 100:
        _problem(errors, "name", "must be 5 to 100 characters", name)
    template_id = body.get("template_id")
    if not isinstance(template_id, str) or not template_id:
        _problem(errors, "template_id", "is required")
    filters = body.get("filters")
    if filters is None:
        filters = {}
    if not isinstance(filters, dict):
        _problem(errors, "filters", "must be an object")
        filters = {}
    fmt = body.get("format", "pdf")
    if fmt == "xlsx":
        fmt = "excel"
    if fmt not in FORMATS:
        _problem(errors, "format", f"must be one of {', '.join(FORMATS)}", fmt)
    description = body.get("description") or ""
    if not isinstance(description, str) or len(description) > 1000:
        _problem(errors, "description", "must be a string of at most 1000 characters")
        description = ""
    layout = _layout(body.get("layout"), errors)
    delivery = _delivery(body.get("delivery"), errors)
    dims = _dimension_filters(filters, errors)
    if errors:
        raise ValidationError(
            "request validation failed",
            details="The following fields are invalid: "
            + ", ".join(f"{e['field']} ({e['message']})" for e in errors),
            validation_errors=errors,
        )
    if not known_template:
        raise ValidationError(
            f"template {template_id!r} does not exist",
            code="TEMPLATE_NOT_FOUND",
            status=404,
            details="GET /v2/reports/templates lists the templates you can use.",
            validation_errors=[{"field": "template_id", "message": "unknown template"}],
        )
    period = _period(filters, now)
    return ReportSpec(
        name=str(name).strip(),
        template_id=str(template_id),
        start=period.start,
        end=period.end,
        format=str(fmt),
        description=description,
        dimension_filters=dims,
        layout=layout,
        delivery=delivery,
    )


def _layout(raw: Any, errors: list[dict[str, Any]]) -> Layout:
    if raw is None:
        return Layout()
    if not isinstance(raw, dict):
        _problem(errors, "layout", "must be an object")
        return Layout()
    orientation = raw.get("orientation", "portrait")
    if orientation not in ("portrait", "landscape"):
        _problem(errors, "layout.orientation", "must be portrait or landscape", orientation)
    include = raw.get("include_charts", True)
    if not isinstance(include, bool):
        _problem(errors, "layout.include_charts", "must be true or false")
    types = raw.get("chart_types", list(CHART_TYPES))
    if not isinstance(types, list) or not all(t in CHART_TYPES for t in types):
        _problem(errors, "layout.chart_types", f"must be a list of {', '.join(CHART_TYPES)}")
        types = list(CHART_TYPES)
    return Layout(str(orientation), bool(include), tuple(types))


def _delivery(raw: Any, errors: list[dict[str, Any]]) -> Delivery:
    if raw is None:
        return Delivery()
    if not isinstance(raw, dict):
        _problem(errors, "delivery", "must be an object")
        return Delivery()
    method = raw.get("method", "download")
    if method not in DELIVERY_METHODS:
        _problem(errors, "delivery.method", f"must be one of {', '.join(DELIVERY_METHODS)}")
        return Delivery()
    recipients = raw.get("recipients") or []
    if method == "email":
        if (
            not isinstance(recipients, list)
            or not 1 <= len(recipients) <= MAX_RECIPIENTS
            or not all(isinstance(r, str) and _EMAIL.match(r) for r in recipients)
        ):
            _problem(
                errors,
                "delivery.recipients",
                f"give 1 to {MAX_RECIPIENTS} e-mail addresses",
                recipients,
            )
            recipients = []
        return Delivery("email", tuple(dict.fromkeys(recipients)))
    if method == "webhook":
        url = raw.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            _problem(errors, "delivery.url", "must be an http(s) URL")
            url = None
        secret = raw.get("secret")
        if secret is not None and (not isinstance(secret, str) or not 16 <= len(secret) <= 200):
            _problem(errors, "delivery.secret", "must be a string of 16 to 200 characters")
            secret = None
        return Delivery("webhook", (), url, secret)
    return Delivery()
