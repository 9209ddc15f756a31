"""Several scheduler processes on one metadata database fire each due time exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from meterline.metadb import engine_from_url, migrate
from meterline.reports.tables import reports, schedule_runs, schedules

SCHEDULES = 200


def seed(url: str) -> float:
    engine = engine_from_url(url)
    migrate(engine)
    now = time.time()
    report = {"name": "Weekly report", "template_id": "api_overview", "format": "pdf",
              "filters": {"range": "7d"}}  # fmt: skip
    with engine.begin() as conn:
        conn.execute(
            schedules.insert(),
            [
                {"schedule_id": f"sch_{i:04d}", "org_id": f"org_{i % 7}", "name": "Weekly",
                 "cron": "0 9 * * 1", "timezone": "Europe/Berlin", "report": json.dumps(report),
                 "status": "active", "next_run_at": now - 1, "created_at": now}
                for i in range(SCHEDULES)
            ],
        )  # fmt: skip
    engine.dispose()
    return now


@pytest.mark.slow
def test_four_processes_fire_200_schedules_exactly_once_even_when_one_is_killed(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    now = seed(url)
    procs = [
        subprocess.Popen([sys.executable, "-m", "tests.reports.scheduler_process", url])
        for _ in range(4)
    ]
    engine = engine_from_url(url)
    # kill one process as soon as firing is under way
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.execute(select(func.count()).select_from(schedule_runs)).scalar_one() > 5:
                break
        time.sleep(0.02)
    procs[0].kill()
    for proc in procs[1:]:
        assert proc.wait(timeout=120) == 0
    procs[0].wait()
    with engine.connect() as conn:
        runs = conn.execute(select(schedule_runs.c.schedule_id, schedule_runs.c.report_id)).all()
        made = conn.execute(
            select(reports.c.report_id, reports.c.schedule_id).where(reports.c.source == "schedule")
        ).all()
        pending = conn.execute(
            select(func.count()).select_from(schedules).where(schedules.c.next_run_at <= now)
        ).scalar_one()
    engine.dispose()
    assert len(runs) == SCHEDULES
    assert len({s for s, _ in runs}) == SCHEDULES
    assert len(made) == SCHEDULES
    assert {r for r, _ in made} == {r for _, r in runs}
    assert pending == 0
