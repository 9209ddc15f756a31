"""The reports service and worker in-process, on chDB and SQLite, with a frozen clock."""

from __future__ import annotations

import pytest

from meterline.errors import ConflictError, NotFoundError, ValidationError
from meterline.reports import QuotaExceededError

BODY = {"name": "Weekly overview", "template_id": "api_overview", "filters": {"range": "7d"},
        "format": "csv"}  # fmt: skip


def test_a_job_whose_worker_died_is_taken_over_and_completes_once(make_reports):
    env = make_reports(lease_seconds=60)
    created, _ = env.service.generate(env.org_id, "basic", BODY, None)
    report_id = created["report_id"]
    dead = env.runner.jobs.claim("w_dead")  # claims, then "dies" without finishing
    assert dead is not None and dead.report_id == report_id
    assert not env.runner.render_next()  # the lease is still held
    assert env.service.get(env.org_id, report_id)["status"] == "processing"
    env.clock.advance(61)
    assert env.runner.render_next()
    report = env.service.get(env.org_id, report_id)
    assert report["status"] == "completed" and report["progress"] == 100
    # the dead worker coming back cannot finish it a second time
    assert not env.runner.jobs.complete(
        report_id, "w_dead", content_hash="x", size=1, pages=None, expires_at=0
    )
    assert env.service.get(env.org_id, report_id)["file_info"]["size_bytes"] > 0


def test_a_job_that_keeps_losing_its_worker_fails_visibly(make_reports):
    env = make_reports(lease_seconds=10, max_attempts=2)
    created, _ = env.service.generate(env.org_id, "basic", BODY, None)
    for owner in ("w_a", "w_b"):
        assert env.runner.jobs.claim(owner) is not None
        env.clock.advance(11)
    assert env.runner.jobs.claim("w_c") is None
    report = env.service.get(env.org_id, created["report_id"])
    assert report["status"] == "failed"
    assert "interrupted" in report["error_message"]


def test_render_time_limit_fails_the_report(make_reports):
    env = make_reports(render_timeout=0.01)
    created, _ = env.service.generate(env.org_id, "basic", {**BODY, "format": "pdf"}, None)
    env.settle()
    report = env.service.get(env.org_id, created["report_id"])
    assert report["status"] == "failed"
    assert "longer than" in report["error_message"]


def test_download_expires_with_410_and_the_file_is_swept(make_reports):
    env = make_reports(artifact_ttl_days=1)
    created, _ = env.service.generate(env.org_id, "basic", BODY, None)
    env.settle()
    report = env.service.get(env.org_id, created["report_id"])
    found = env.service.download(env.org_id, created["report_id"])
    assert found.path.read_bytes().startswith(b"\xef\xbb\xbf")
    url = report["download_url"]
    query = dict(p.split("=") for p in url.split("?")[1].split("&"))
    signed = env.service.download_signed(created["report_id"], int(query["expires"]),
                                         query["signature"])  # fmt: skip
    assert signed.path == found.path
    with pytest.raises(NotFoundError):
        env.service.download_signed(created["report_id"], int(query["expires"]) + 1,
                                    query["signature"])  # fmt: skip
    env.clock.advance(86400 + 1)
    assert env.service.get(env.org_id, created["report_id"])["status"] == "expired"
    with pytest.raises(ConflictError) as caught:
        env.service.download(env.org_id, created["report_id"])
    assert caught.value.status == 410
    assert env.service.sweep() == 1
    assert not found.path.exists()


def test_daily_quota_per_plan_and_idempotent_replays(make_reports):
    env = make_reports()
    first, replayed = env.service.generate(env.org_id, "basic", BODY, "key-1")
    assert not replayed
    for i in range(9):
        env.service.generate(env.org_id, "basic", {**BODY, "name": f"Report number {i}"}, None)
    again, replayed = env.service.generate(env.org_id, "basic", BODY, "key-1")
    assert replayed and again["report_id"] == first["report_id"]
    with pytest.raises(QuotaExceededError) as caught:
        env.service.generate(env.org_id, "basic", BODY, None)
    assert caught.value.decision.limit == 10 and caught.value.decision.remaining == 0
    with pytest.raises(ConflictError):
        env.service.generate(env.org_id, "basic", {**BODY, "format": "pdf"}, "key-1")
    # another org is not affected; the next UTC day starts afresh
    env.service.generate(env.org_id + "_other", "basic", BODY, None)
    env.clock.advance(86400)
    env.service.generate(env.org_id, "basic", BODY, None)
    for _ in range(12):
        env.service.generate(env.org_id + "_big", "enterprise", BODY, None)


def test_validation(make_reports):
    env = make_reports()
    with pytest.raises(ValidationError) as caught:
        env.service.generate(env.org_id, "basic", {**BODY, "name": "abc"}, None)
    assert caught.value.code == "VALIDATION_ERROR"
    with pytest.raises(ValidationError) as caught:
        env.service.generate(env.org_id, "basic", {**BODY, "template_id": "sales"}, None)
    assert caught.value.code == "TEMPLATE_NOT_FOUND"
    bad_date = {**BODY, "filters": {"date_range": {"start": "2025-13-45", "end": "2026-01-01"}}}
    with pytest.raises(ValidationError) as caught:
        env.service.generate(env.org_id, "basic", bad_date, None)
    assert caught.value.code == "DATE_FORMAT_INVALID"
    assert caught.value.validation_errors == [{"field": "filters.date_range.start",
        "message": "must be ISO 8601", "provided_value": "2025-13-45"}]  # fmt: skip
    with pytest.raises(NotFoundError) as missing:
        env.service.get("org_someone_else", env.service.generate(
            env.org_id, "basic", BODY, None)[0]["report_id"])  # fmt: skip
    assert missing.value.code == "REPORT_NOT_FOUND"


def test_user_template_report_and_date_range(make_reports):
    env = make_reports()
    template = env.service.save_template(
        env.org_id,
        {"name": "Errors by region", "sections": [
            {"title": "Totals", "display": "kpi", "query": {"metrics": ["requests", "errors"]}},
            {"title": "Regions", "display": "table",
             "query": {"metrics": ["errors"], "dimensions": ["region"]}}]},
    )  # fmt: skip
    created, _ = env.service.generate(
        env.org_id,
        "basic",
        {"name": "November errors", "template_id": template["template_id"], "format": "json",
         "filters": {"date_range": {"start": "2026-11-01", "end": "2026-11-07"},
                     "regions": ["DE", "FR"]}},
        None,
    )  # fmt: skip
    env.settle()
    report = env.service.get(env.org_id, created["report_id"])
    assert report["status"] == "completed"
    assert report["filters_applied"] == {
        "date_range": {"start": "2026-11-01T00:00:00Z", "end": "2026-11-08T00:00:00Z"},
        "region": ["DE", "FR"],
    }
    import json

    document = json.loads(env.service.download(env.org_id, created["report_id"]).path.read_text())
    assert [s["kind"] for s in document["sections"]] == ["kpi", "table"]
    assert document["sections"][0]["items"][0]["value"] == 0
    # another org cannot use it
    with pytest.raises(ValidationError):
        env.service.generate(env.org_id + "_x", "basic",
                             {**BODY, "template_id": template["template_id"]}, None)  # fmt: skip


def test_a_broken_schedule_is_skipped_without_blocking_others(make_reports):
    import json

    from sqlalchemy import update

    from meterline.reports.tables import schedules

    env = make_reports()
    spec = {"template_id": "api_overview", "format": "csv", "filters": {"range": "1d"}}
    broken = env.service.create_schedule(
        env.org_id, {"name": "Broken daily", "cron": "* * * * *", "report": spec}
    )
    fine = env.service.create_schedule(
        env.org_id, {"name": "Fine daily", "cron": "* * * * *", "report": spec}
    )
    with env.service.engine.begin() as conn:
        conn.execute(
            update(schedules)
            .where(schedules.c.schedule_id == broken["schedule_id"])
            .values(report=json.dumps({**spec, "name": "abc"}))
        )
    env.clock.advance(61)
    assert env.runner.scheduler.tick() == 1
    listed = env.service.list(env.org_id)["reports"]
    assert [r["name"] for r in listed] == ["Fine daily"]
    after = env.service.get_schedule(env.org_id, broken["schedule_id"])
    assert after["next_run_at"] > broken["next_run_at"]
    assert env.service.get_schedule(env.org_id, fine["schedule_id"])["last_run_at"]


def test_quota_holds_across_processes_sharing_redis(make_reports):
    """Four limiters on one real redis-server (as four server processes would be), each
    taking reports from four threads: the basic plan's 10 per day are granted exactly."""
    import threading

    from meterline.ratelimit import RateLimiter, RedisStorage
    from meterline.reports import LimiterReportQuota
    from tests.ratelimit.redis_server import RedisServer

    env = make_reports()
    server = RedisServer()
    server.start()
    try:
        limiters = [
            RateLimiter(RedisStorage(server.url, timeout=5.0), clock=env.clock) for _ in range(4)
        ]
        quotas = [LimiterReportQuota(limiter) for limiter in limiters]
        granted: list[bool] = []

        def take(quota) -> None:
            for _ in range(5):
                granted.append(quota.acquire(env.org_id, "basic").allowed)

        threads = [threading.Thread(target=take, args=(q,)) for q in quotas for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert granted.count(True) == 10 and len(granted) == 80
        refused = quotas[0].acquire(env.org_id, "basic")
        assert (refused.allowed, refused.limit, refused.remaining) == (False, 10, 0)
        assert not any(limiter.stats.storage_errors for limiter in limiters)
        for limiter in limiters:
            limiter.close()
    finally:
        server.stop()


def test_report_quota_follows_rate_limit_overrides(make_reports):
    from meterline.ratelimit import PlanBook, RateLimiter
    from meterline.reports import LimiterReportQuota

    env = make_reports()
    book = PlanBook()
    book.set_override(env.org_id, None, {"reports_per_day": 2})
    env.service.quota = LimiterReportQuota(RateLimiter(plans=book, clock=env.clock))
    for i in range(2):
        env.service.generate(env.org_id, "enterprise", {**BODY, "name": f"Report {i:03d}"}, None)
    with pytest.raises(QuotaExceededError) as caught:
        env.service.generate(env.org_id, "enterprise", BODY, None)
    assert caught.value.decision.limit == 2
    book.set_override(env.org_id, None, {"reports_per_day": None})  # unlimited again
    env.service.generate(env.org_id, "enterprise", BODY, None)
    # another org on the same plan keeps the plan's own allowance (unlimited)
    for _ in range(3):
        env.service.generate(env.org_id + "_other", "enterprise", BODY, None)


def test_a_refused_report_leaves_no_row_and_racing_replays_count_once(make_reports):
    import threading

    env = make_reports()
    results: list[bool] = []

    def same_key() -> None:
        results.append(env.service.generate(env.org_id, "basic", BODY, "race-key")[1])

    threads = [threading.Thread(target=same_key) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] + [True] * 5  # one report, five replays
    for i in range(9):  # the other nine of the day are still there
        env.service.generate(env.org_id, "basic", {**BODY, "name": f"Report {i:03d}"}, None)
    with pytest.raises(QuotaExceededError):
        env.service.generate(env.org_id, "basic", BODY, None)
    assert env.service.list(env.org_id, page=1, limit=100)["pagination"]["total_count"] == 10


def test_layout_options_shape_the_document(make_reports):
    import json

    env = make_reports()
    kinds = {}
    for label, layout in (("none", {"include_charts": False}), ("bar", {"chart_types": ["bar"]}),
                          ("all", {})):  # fmt: skip
        created, _ = env.service.generate(
            env.org_id, "professional", {**BODY, "format": "json", "layout": layout}, None
        )
        env.settle()
        document = json.loads(
            env.service.download(env.org_id, created["report_id"]).path.read_text()
        )
        kinds[label] = [s.get("chart_type", s["kind"]) for s in document["sections"]]
    assert kinds["all"] == ["kpi", "line", "line", "pie", "bar", "table"]
    assert kinds["none"] == ["kpi", "table"]
    assert kinds["bar"] == ["kpi", "bar", "bar", "bar", "bar", "table"]
