"""The write-ahead log: acknowledged events are durable here before they reach the store.

Records are appended to numbered segment files as ``[length][crc32][payload]``. A batch of
records is written and fsynced together (group commit). A checkpoint file says up to
where the store already holds the log's contents; segments wholly before it are deleted.
A torn record at the tail (a crash mid-write) is detected by its checksum and cut off.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<II")
_CHECKPOINT = "checkpoint"


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """A place in the log: segment number and byte offset within it."""

    segment: int
    offset: int

    def record_id(self) -> str:
        """A stable string naming the record that starts here."""
        return f"{self.segment}:{self.offset}"


class WriteAheadLog:
    """Append-only, checksummed, segmented log in ``directory``.

    Not thread-safe: one writer thread appends; the checkpoint may be set from another
    thread because it only touches the checkpoint file and closed segments.

    Example:
        >>> wal = WriteAheadLog(Path("/tmp/wal"))  # doctest: +SKIP
        >>> [(start, end)] = wal.append_many([b"payload"])  # doctest: +SKIP
        >>> wal.checkpoint(end)  # doctest: +SKIP
    """

    def __init__(
        self, directory: Path, *, fsync: bool = True, segment_bytes: int = 64 << 20
    ) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        segments = self._segments()
        self._segment = segments[-1] if segments else 1
        self._file = open(self._path(self._segment), "ab")  # noqa: SIM115 - held open for appends
        self._offset = self._file.tell()

    def _path(self, segment: int) -> Path:
        return self.directory / f"wal-{segment:08d}.log"

    def _segments(self) -> list[int]:
        return sorted(int(p.stem.split("-")[1]) for p in self.directory.glob("wal-*.log"))

    @property
    def end(self) -> Position:
        """Where the next record will start."""
        return Position(self._segment, self._offset)

    def append_many(self, payloads: list[bytes]) -> list[tuple[Position, Position]]:
        """Append records and make them durable with one fsync; returns (start, end) of each."""
        if self._offset >= self.segment_bytes:
            self._rotate()
        spans = []
        chunks = []
        offset = self._offset
        for payload in payloads:
            start = Position(self._segment, offset)
            chunks.append(_HEADER.pack(len(payload), zlib.crc32(payload)))
            chunks.append(payload)
            offset += _HEADER.size + len(payload)
            spans.append((start, Position(self._segment, offset)))
        self._file.write(b"".join(chunks))
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())
        self._offset = offset
        return spans

    def _rotate(self) -> None:
        self._file.close()
        self._segment += 1
        self._file = open(self._path(self._segment), "ab")  # noqa: SIM115
        self._offset = 0
        if self.fsync:
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def read_checkpoint(self) -> Position:
        """The position up to which the store holds the log (start of the log if none)."""
        path = self.directory / _CHECKPOINT
        if not path.exists():
            segments = self._segments()
            return Position(segments[0] if segments else 1, 0)
        segment, offset = path.read_text().split(":")
        return Position(int(segment), int(offset))

    def checkpoint(self, position: Position) -> None:
        """Record that everything before ``position`` is in the store; drop old segments."""
        path = self.directory / _CHECKPOINT
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"{position.segment}:{position.offset}")
        if self.fsync:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
        for segment in self._segments():
            if segment < position.segment:
                self._path(segment).unlink(missing_ok=True)

    def replay(self, after: Position) -> Iterator[tuple[Position, Position, bytes]]:
        """Yield ``(start, end, payload)`` of every intact record at or after ``after``.

        A torn or corrupt tail of the last segment is truncated away.
        """
        for segment in self._segments():
            if segment < after.segment:
                continue
            path = self._path(segment)
            data = path.read_bytes()
            offset = after.offset if segment == after.segment else 0
            while offset + _HEADER.size <= len(data):
                length, crc = _HEADER.unpack_from(data, offset)
                body_start = offset + _HEADER.size
                payload = data[body_start : body_start + length]
                if len(payload) != length or zlib.crc32(payload) != crc:
                    break
                end = body_start + length
                yield Position(segment, offset), Position(segment, end), payload
                offset = end
            if offset < len(data):
                log.warning(
                    "write-ahead log %s: cutting %d torn bytes", path.name, len(data) - offset
                )
                if segment == self._segment:
                    self._file.truncate(offset)
                    self._offset = offset
                else:
                    with open(path, "r+b") as handle:
                        handle.truncate(offset)

    def close(self) -> None:
        """Flush and close the current segment."""
        self._file.flush()
        self._file.close()
