"""Access logs to request events: parsers, sources (files, .gz, stdin, follow) and the
importer behind ``meterline import``."""

from __future__ import annotations

from meterline.logs.importer import ImportStats, LogImporter
from meterline.logs.parse import FORMATS, BadLine, LineParser, detect_format, parser_for
from meterline.logs.source import LogSource

__all__ = [
    "FORMATS",
    "BadLine",
    "ImportStats",
    "LineParser",
    "LogImporter",
    "LogSource",
    "detect_format",
    "parser_for",
]
