"""Where log lines come from: files (plain or gzip, told by their magic bytes), stdin,
and ``follow`` mode, which tails a growing file across rotation as ``tail -F`` does."""

from __future__ import annotations

import gzip
import io
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

Line = tuple[int, str]
"""A 1-based line number and the line without its newline."""


class LogSource:
    """Lines of one log; :attr:`position` and :attr:`size` (bytes) drive a progress bar.

    Args:
        path: a file path, or ``-`` for standard input.
        follow: after the end, wait for more lines; reopen when the file is replaced or
            truncated (rotation). Yields None when idle so callers can flush.
        stop: polled while following; the source ends when it returns True.
        poll: seconds between checks for new data while following.
    """

    def __init__(
        self,
        path: str,
        *,
        follow: bool = False,
        stop: Callable[[], bool] = lambda: False,
        poll: float = 0.25,
    ) -> None:
        self.path = path
        self.follow = follow
        self.stop = stop
        self.poll = poll
        self.position = 0
        self.size = 0
        self._raw: IO[bytes] | None = None

    @property
    def name(self) -> str:
        """What to call the source in messages."""
        return "<stdin>" if self.path == "-" else self.path

    def _open(self) -> IO[bytes]:
        if self.path == "-":
            raw: IO[bytes] = sys.stdin.buffer
            self._raw = raw
            head = raw.peek(2)[:2] if isinstance(raw, io.BufferedReader) else b""
        else:
            raw = open(self.path, "rb")  # noqa: SIM115 - closed by lines()
            self._raw = raw
            self.size = os.fstat(raw.fileno()).st_size
            head = raw.read(2)
            raw.seek(0)
        if head == b"\x1f\x8b":
            unzipped: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
            return unzipped
        return raw

    def _tell(self) -> int:
        try:
            return self._raw.tell() if self._raw is not None else 0
        except (OSError, ValueError):
            return 0

    def lines(self) -> Iterator[Line | None]:
        """The lines in order (None while idle in follow mode)."""
        if self.follow and self.path != "-":
            yield from self._follow()
            return
        handle = self._open()
        try:
            yield from self._read(handle, 0)
        finally:
            if handle is not sys.stdin.buffer:
                handle.close()
                if self._raw is not None and self._raw is not handle:
                    self._raw.close()

    def _read(self, handle: IO[bytes], start: int) -> Iterator[Line]:
        number = start
        for raw in handle:
            number += 1
            if number % 8192 == 0:
                self.position = self._tell()
            yield number, raw.decode("utf-8", "replace").rstrip("\r\n")
        self.position = self._tell()

    def _follow(self) -> Iterator[Line | None]:
        while not self.stop():
            try:
                handle = self._open()
            except FileNotFoundError:
                yield None
                time.sleep(self.poll)
                continue
            try:
                yield from self._tail(handle)
            finally:
                handle.close()
                if self._raw is not None and self._raw is not handle:
                    self._raw.close()

    def _tail(self, handle: IO[bytes]) -> Iterator[Line | None]:
        """Read one incarnation of the file until it is rotated, truncated or stopped."""
        inode = os.fstat(self._raw.fileno()).st_ino if self._raw is not None else 0
        number = 0
        partial = b""
        while not self.stop():
            chunk = handle.readline()
            if chunk.endswith(b"\n"):
                number += 1
                yield number, (partial + chunk).decode("utf-8", "replace").rstrip("\r\n")
                partial = b""
                continue
            partial += chunk  # a line still being written
            self.position = self._tell()
            yield None
            time.sleep(self.poll)
            try:
                stat = os.stat(self.path)
            except FileNotFoundError:
                continue  # rotated away; wait for the new file
            if stat.st_ino != inode or stat.st_size < self.position:
                return
            self.size = stat.st_size


def expand(paths: list[str]) -> list[str]:
    """The paths given, ``-`` (stdin) when none."""
    return [str(Path(p)) if p != "-" else p for p in paths] or ["-"]


__all__ = ["Line", "LogSource", "expand"]
