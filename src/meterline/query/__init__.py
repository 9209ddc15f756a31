"""The one metric query model: vocabulary, parsing, planning over rollups, SQL, results.

Every analytics number — API routes, dashboard, reports, stream seeding — is a
:class:`MetricQuery` run by :class:`QueryService`.
"""

from __future__ import annotations

from meterline.query import presets
from meterline.query.compiler import CompiledQuery, compile_query
from meterline.query.events import EVENT_COLUMNS, EventQuery, compile_events
from meterline.query.model import FILTER_OPS, Filter, MetricQuery, OrderBy, parse_query
from meterline.query.planner import Segment, plan_segments
from meterline.query.service import QueryResult, QueryService, iso, metric_value
from meterline.query.timerange import TimeRange, parse_instant, resolve_range
from meterline.query.vocabulary import DIMENSIONS, METRICS, Dimension, Metric

__all__ = [
    "DIMENSIONS",
    "EVENT_COLUMNS",
    "FILTER_OPS",
    "METRICS",
    "CompiledQuery",
    "Dimension",
    "EventQuery",
    "Filter",
    "Metric",
    "MetricQuery",
    "OrderBy",
    "QueryResult",
    "QueryService",
    "Segment",
    "TimeRange",
    "compile_events",
    "compile_query",
    "iso",
    "metric_value",
    "parse_instant",
    "parse_query",
    "plan_segments",
    "presets",
    "resolve_range",
]
