from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from meterline.errors import DateFormatError, ValidationError
from meterline.query import compile_query, parse_query

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def test_values_are_parameters_never_sql_text() -> None:
    hostile = "x' OR 1=1 --"
    query = parse_query(
        {
            "metrics": ["requests"],
            "filters": [
                {"field": "route", "op": "in", "value": [hostile, "/a"]},
                {"field": "consumer_id", "op": "contains", "value": hostile},
                {"field": "status", "op": "gte", "value": 500},
            ],
            "range": "1h",
        },
        now=NOW,
    )
    compiled = compile_query(query, "org'; DROP TABLE events; --")
    assert hostile not in compiled.sql and "DROP" not in compiled.sql
    assert hostile in compiled.params.values()
    assert "org'; DROP TABLE events; --" in compiled.params.values()
    assert "{p0:String}" in compiled.sql
    assert compiled.sql.count("org_id = {p0:String}") == len({s.table for s in compiled.segments})


def test_every_level_of_a_range_is_one_read_of_one_table() -> None:
    query = parse_query(
        {
            "metrics": ["requests", "latency_p95"],
            "dimensions": ["route"],
            "start": "2026-11-01T22:31:00Z",
            "end": "2026-11-04T05:10:00Z",
        },
        now=NOW,
    )
    compiled = compile_query(query, "o")
    assert {s.level for s in compiled.segments} == {"minute", "tenminute", "hour", "day"}
    assert compiled.sql.count(" FROM ") == 1
    assert "FROM {db}.rollup_endpoints WHERE" in compiled.sql
    for level in ("minute", "tenminute", "hour", "day"):
        assert f"level = '{level}' AND bucket >= " in compiled.sql
    # One read aggregates to final values: no partial bin maps merged a second time.
    assert "sumMapIf(latency_bins, type = 'request')" in compiled.sql
    assert "sumMap(i_" not in compiled.sql


def test_rollup_and_raw_reads_merge_partial_states() -> None:
    query = parse_query(
        {
            "metrics": ["latency_p95"],
            "start": "2026-11-01T22:30:15Z",
            "end": "2026-11-02T01:00:00Z",
        },
        now=NOW,
    )
    compiled = compile_query(query, "o")
    assert {s.table for s in compiled.segments} == {"events", "rollup_totals"}
    assert " UNION ALL " in compiled.sql
    # Both reads give latency bin maps (raw events binned as rollups are), merged once.
    assert "sumMapIf(latency_bins, type = 'request') AS i_req_latency_p95" in compiled.sql
    assert "sumMapIf(map(" in compiled.sql and "sumMap(i_req_latency_p95)" in compiled.sql


def test_only_needed_intermediates_are_computed() -> None:
    query = parse_query({"metrics": ["requests"], "range": "1h"}, now=NOW)
    assert "quantiles" not in compile_query(query, "o").sql
    assert "latency_bins" not in compile_query(query, "o").sql
    query = parse_query({"metrics": ["latency_p95"], "range": "1h"}, now=NOW)
    assert "latency_bins" in compile_query(query, "o").sql


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metrics": []}, "metrics"),
        ({"metrics": ["nope"]}, "metrics"),
        ({"metrics": ["requests"], "dimensions": ["route", "route"]}, "dimensions"),
        (
            {"metrics": ["requests"], "filters": [{"field": "route", "op": "like", "value": "x"}]},
            "filters[0].op",
        ),
        (
            {"metrics": ["requests"], "filters": [{"field": "route", "op": "in", "value": []}]},
            "filters[0].value",
        ),
        (
            {"metrics": ["requests"], "filters": [{"field": "route", "op": "eq", "value": ["a"]}]},
            "filters[0].value",
        ),
        (
            {
                "metrics": ["requests"],
                "filters": [{"field": "status", "op": "contains", "value": 5}],
            },
            "filters[0].op",
        ),
        ({"metrics": ["requests"], "limit": 0}, "limit"),
        ({"metrics": ["requests"], "offset": -1}, "offset"),
        ({"metrics": ["requests"], "granularity": "week"}, "granularity"),
        ({"metrics": ["requests"], "order_by": [{"field": "route"}]}, "order_by[0]"),
    ],
)
def test_invalid_queries_name_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_query(body, now=NOW)
    assert any(e["field"] == field for e in caught.value.validation_errors or [])


def test_ranges() -> None:
    query = parse_query({"metrics": ["requests"], "range": "7d"}, now=NOW)
    assert query.time_range.seconds == 7 * 86400
    query = parse_query(
        {"metrics": ["requests"], "start": "2026-11-01", "end": "2026-11-02T00:00:00+02:00"},
        now=NOW,
    )
    assert query.time_range.start == datetime(2026, 11, 1, tzinfo=UTC)
    assert query.time_range.end == datetime(2026, 11, 1, 22, tzinfo=UTC)
    with pytest.raises(DateFormatError):
        parse_query({"metrics": ["requests"], "start": "2026-13-45"}, now=NOW)
    with pytest.raises(ValidationError):
        parse_query({"metrics": ["requests"], "range": "1h", "start": "2026-11-01"}, now=NOW)
    with pytest.raises(ValidationError):
        parse_query({"metrics": ["requests"], "range": "30d", "granularity": "minute"}, now=NOW)


def test_quantiles_across_tables_share_one_partial_bin_map() -> None:
    query = parse_query(
        {
            "metrics": ["latency_p50", "latency_p95", "latency_p99"],
            "start": "2026-11-01T22:30:15Z",
            "end": "2026-11-02T01:00:00Z",
        },
        now=NOW,
    )
    sql = compile_query(query, "o").sql
    assert " UNION ALL " in sql
    # Each table read carries the bins once; all three quantiles merge that column.
    assert sql.count("AS i_req_latency_p50") == 2 and "AS i_req_latency_p95" not in sql
    assert "i_req_latency_p99" not in sql
    # The map is merged, and its total counted, once for all three quantiles.
    assert sql.count("sumMap(i_req_latency_p50)") == 1
    assert sql.count("arraySum(") == 1


def test_quantiles_of_one_statement_define_their_shared_parts_once() -> None:
    for metrics, granularity in (
        (["latency_p50", "latency_p95", "latency_p99"], None),
        (["latency_p95", "latency_p99"], "minute"),
    ):
        query = parse_query(
            {"metrics": metrics, "range": "24h", "granularity": granularity}, now=NOW
        )
        sql = compile_query(query, "o").sql
        defined = re.findall(r" AS (lq[0-9a-f]{8}_[a-z]+)\)", sql)
        assert defined and len(defined) == len(set(defined)), sql
        # Each part is named once and read again by the other quantiles (or the parts
        # built from it).
        assert all(sql.count(alias) >= 2 for alias in defined), sql
