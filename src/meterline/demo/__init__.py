"""Realistic demo traffic: the generator behind ``meterline demo`` and ``make run``."""

from __future__ import annotations

from meterline.demo.generator import TrafficModel, send_traffic

__all__ = ["TrafficModel", "send_traffic"]
