"""Continuous anomaly detection over each org's minute rollups, and its history.

:class:`AnomalyEngine` judges complete minutes through the query model (volume spikes
and drops, error rate, p95 latency, region mix, consumers' endpoint use);
:class:`AnomalyHistory` keeps what it found as episodes in the metadata database.
"""

from __future__ import annotations

from meterline.insight.anomalies.detectors import Finding, MinuteSettings, z_for
from meterline.insight.anomalies.engine import KINDS, AnomalyEngine, DetectionSettings
from meterline.insight.anomalies.history import AnomalyHistory, Episode, anomaly_json, iso

__all__ = [
    "KINDS",
    "AnomalyEngine",
    "AnomalyHistory",
    "DetectionSettings",
    "Episode",
    "Finding",
    "MinuteSettings",
    "anomaly_json",
    "iso",
    "z_for",
]
