from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from meterline.clock import FrozenClock
from meterline.metadb import engine_from_url, migrate
from meterline.query import QueryService
from meterline.reports import ArtifactStore, ReportRunner, ReportsConfig, ReportService
from meterline.store import Store

_orgs = itertools.count()


@dataclass
class Reports:
    service: ReportService
    runner: ReportRunner
    clock: FrozenClock
    org_id: str

    def settle(self, rounds: int = 20) -> None:
        """Run worker rounds until one does nothing."""
        for _ in range(rounds):
            if not self.runner.run_once():
                return


@pytest.fixture
def make_reports(tmp_path: Path, chdb_store: Store) -> Iterator[object]:
    engines = []

    def make(**config: object) -> Reports:
        engine = engine_from_url(f"sqlite:///{tmp_path / 'metadata.db'}")
        migrate(engine)
        engines.append(engine)
        clock = FrozenClock(time.time())
        settings = ReportsConfig(**{"render_timeout": 60.0, **config})  # type: ignore[arg-type]
        service = ReportService(
            engine,
            ArtifactStore(tmp_path / "artifacts"),
            clock,
            base_url="http://reports.test",
            config=settings,
        )
        runner = ReportRunner(service, QueryService(chdb_store, clock))
        return Reports(service, runner, clock, f"org_reports_{next(_orgs)}")

    yield make
    for engine in engines:
        engine.dispose()
