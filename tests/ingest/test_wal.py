from __future__ import annotations

from pathlib import Path

from meterline.ingest import Position, RecentKeys, WriteAheadLog


def test_replay_returns_appended_records_after_checkpoint(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, fsync=False)
    spans = wal.append_many([b"one", b"two"])
    spans += wal.append_many([b"three"])
    wal.checkpoint(spans[0][1])
    assert [p for _, _, p in wal.replay(wal.read_checkpoint())] == [b"two", b"three"]
    wal.close()
    reopened = WriteAheadLog(tmp_path, fsync=False)
    assert [p for _, _, p in reopened.replay(reopened.read_checkpoint())] == [b"two", b"three"]
    reopened.close()


def test_torn_tail_is_cut_and_appends_continue(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, fsync=False)
    wal.append_many([b"complete"])
    wal.close()
    segment = next(tmp_path.glob("wal-*.log"))
    with open(segment, "ab") as handle:
        handle.write(b"\x20\x00\x00\x00\x01\x02")  # a header whose payload never arrived
    wal = WriteAheadLog(tmp_path, fsync=False)
    assert [p for _, _, p in wal.replay(Position(1, 0))] == [b"complete"]
    wal.append_many([b"after"])
    assert [p for _, _, p in wal.replay(Position(1, 0))] == [b"complete", b"after"]
    wal.close()


def test_corrupt_record_stops_replay(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, fsync=False)
    wal.append_many([b"good", b"flipped"])
    wal.close()
    segment = next(tmp_path.glob("wal-*.log"))
    data = bytearray(segment.read_bytes())
    data[-1] ^= 0xFF
    segment.write_bytes(bytes(data))
    wal = WriteAheadLog(tmp_path, fsync=False)
    assert [p for _, _, p in wal.replay(Position(1, 0))] == [b"good"]
    wal.close()


def test_segments_rotate_and_old_ones_are_deleted(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, fsync=False, segment_bytes=40)
    ends = [wal.append_many([b"x" * 40])[0][1] for _ in range(4)]
    assert len(list(tmp_path.glob("wal-*.log"))) == 4
    wal.checkpoint(ends[2])
    assert len(list(tmp_path.glob("wal-*.log"))) == 2
    assert [p for _, _, p in wal.replay(wal.read_checkpoint())] == [b"x" * 40]
    wal.close()


def test_recent_keys_are_bounded_and_per_org() -> None:
    keys = RecentKeys(capacity=3)
    assert keys.reserve("a", "1") and keys.reserve("b", "1")
    assert not keys.reserve("a", "1")
    keys.reserve("a", "2")
    keys.reserve("a", "3")
    assert len(keys) == 3
    assert keys.reserve("a", "1")  # the oldest was forgotten past capacity
    keys.release([RecentKeys.key("a", "1")])
    assert keys.reserve("a", "1")
