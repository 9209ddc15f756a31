"""The ingest writer against the real embedded store: durability, replay, poison records."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec

from meterline.events.arrow import ipc_to_batch
from meterline.ingest import IngestWriter
from meterline.ingest.wal import WriteAheadLog
from meterline.ingest.writer import FlushDelay
from meterline.store import Store
from tests.helpers import event_row


def rows(org: str, n: int) -> list[list[Any]]:
    now_ms = int(time.time() * 1000)
    return [event_row(org, now_ms, event_id=f"w{i}", path="/w", status=200) for i in range(n)]


def stored(store: Store, org: str) -> int:
    return int(
        store.select("SELECT count() AS n FROM {db}.events WHERE org_id = {o:String}", {"o": org})[
            0
        ]["n"]
    )


def test_a_refused_record_is_quarantined_and_the_rest_land(
    chdb_store: Store, tmp_path: Path
) -> None:
    org = f"org_{uuid.uuid4().hex[:8]}"
    writer = IngestWriter(chdb_store, tmp_path / "wal", flush_interval=0.05, fsync=False)
    writer.start()
    try:

        async def send() -> None:
            await writer.write(rows(org, 5))
            await writer.write_payload(b"not an arrow stream", 1)
            await writer.write(rows(org, 3))

        asyncio.run(send())
        writer.flush_now()
    finally:
        writer.stop()
    assert stored(chdb_store, org) == 8
    quarantined = list((tmp_path / "wal" / "quarantine").iterdir())
    assert len(quarantined) == 1 and b"not" in quarantined[0].read_bytes()


def test_replay_after_a_crash_skips_records_already_stored(
    chdb_store: Store, tmp_path: Path
) -> None:
    org = f"org_{uuid.uuid4().hex[:8]}"
    writer = IngestWriter(chdb_store, tmp_path / "wal", flush_interval=60, fsync=False)
    writer.start()

    async def send() -> None:
        await writer.write(rows(org, 4))

    asyncio.run(send())
    # Simulate a crash after the store insert but before the checkpoint: insert the
    # logged rows by hand, then start a new writer on the same log.
    for _start, _end, payload in writer.wal.replay(writer.wal.read_checkpoint()):
        chdb_store.insert_batches([ipc_to_batch(payload)])
    writer.wal.close()
    again = IngestWriter(chdb_store, tmp_path / "wal", flush_interval=0.05, fsync=False)
    again.start()
    again.stop()
    assert stored(chdb_store, org) == 4
    assert not again.recent.reserve(org, "w0")  # the dedup memory was rebuilt


def test_a_log_written_before_arrow_records_still_replays(
    chdb_store: Store, tmp_path: Path
) -> None:
    # Logs from earlier versions hold JSON lines; an upgrade must not lose them.
    org = f"org_{uuid.uuid4().hex[:8]}"
    legacy = rows(org, 3)
    for row in legacy:
        row[-1] = "legacy-record-1"
    wal = WriteAheadLog(tmp_path / "wal", fsync=False)
    wal.append_many([b"\n".join(msgspec.json.encode(row) for row in legacy)])
    wal.close()
    writer = IngestWriter(chdb_store, tmp_path / "wal", flush_interval=0.05, fsync=False)
    writer.start()
    writer.stop()
    assert stored(chdb_store, org) == 3
    assert not writer.recent.reserve(org, "w2")


def test_flush_delay_follows_the_store_between_its_bounds() -> None:
    delay = FlushDelay(1.0, 5.0)
    assert delay.seconds == 1.0
    assert delay.after_insert(0.05) == 1.0  # an idle store: the minimum
    assert delay.after_insert(1.5) == 3.0  # a busy one: twice the insert
    assert delay.after_insert(10.0) == 5.0  # never beyond the maximum
    assert delay.after_insert(0.2) == 1.0
    # A minimum set above the maximum is deliberate and wins.
    assert FlushDelay(60.0, 5.0).after_insert(0.01) == 60.0


def test_flush_now_does_not_wait_for_the_flush_delay(chdb_store: Store, tmp_path: Path) -> None:
    org = f"org_{uuid.uuid4().hex[:8]}"
    writer = IngestWriter(chdb_store, tmp_path / "wal", flush_interval=600, fsync=False)
    writer.start()
    try:

        async def send() -> None:
            await writer.write(rows(org, 7))

        asyncio.run(send())
        writer.flush_now(timeout=20)
        assert stored(chdb_store, org) == 7
        assert writer.pending_rows == 0
    finally:
        writer.stop()
