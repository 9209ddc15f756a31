"""Insight engine: anomaly detection and its evaluation (NAB scoring)."""

from __future__ import annotations

from meterline.insight.detector import DetectorConfig, NoveltyDetector, score_series
from meterline.insight.nab import PROFILES, CostProfile, ProfileResult

__all__ = [
    "PROFILES",
    "CostProfile",
    "DetectorConfig",
    "NoveltyDetector",
    "ProfileResult",
    "score_series",
]
