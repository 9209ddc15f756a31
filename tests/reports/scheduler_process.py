"""A scheduler process for the concurrency test: ticks until nothing is due."""

from __future__ import annotations

import os
import sys
import time

from meterline.clock import system_clock
from meterline.metadb import engine_from_url
from meterline.reports.scheduler import Scheduler


def main(url: str) -> None:
    engine = engine_from_url(url)
    scheduler = Scheduler(engine, system_clock, f"w_{os.getpid()}")
    idle = 0
    while idle < 3:
        idle = 0 if scheduler.tick() else idle + 1
        time.sleep(0.05)


if __name__ == "__main__":
    main(sys.argv[1])
