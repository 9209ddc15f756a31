"""LLM usage helpers: recorded calls reach a real server and show in the LLM metrics."""

from __future__ import annotations

import pytest

from meterline.capture import CaptureClient
from tests.capture.conftest import Org
from tests.helpers import eventually

pytestmark = pytest.mark.e2e


class ProviderDown(Exception):
    pass


def test_record_and_track_llm(org: Org) -> None:
    client = CaptureClient(org.server.url, org.key, interval=0.1)
    client.record_llm("gpt-4o", input_tokens=800, output_tokens=200, cost_usd=0.5, user_id="u1")
    with client.track_llm("gpt-4o", user_id="u2", session_id="s1") as call:
        call.usage(100, 50, cost_usd=0.25)
    with pytest.raises(ProviderDown), client.track_llm("claude-x", user_id="u2") as call:
        raise ProviderDown
    assert client.flush(timeout=20)
    assert client.exporter is not None and client.exporter.stats.sent == 3

    def seen() -> None:
        rows = org.query(
            {
                "metrics": ["llm_requests", "input_tokens", "output_tokens", "cost_usd"],
                "dimensions": ["model"],
            }
        )
        got = {r["model"]: r for r in rows}
        assert set(got) == {"gpt-4o", "claude-x"}
        assert got["gpt-4o"]["llm_requests"] == 2
        assert got["gpt-4o"]["input_tokens"] == 900
        assert got["gpt-4o"]["output_tokens"] == 250
        assert got["gpt-4o"]["cost_usd"] == pytest.approx(0.75)
        assert got["claude-x"]["llm_requests"] == 1

    eventually(seen)
    client.close()


def test_unconfigured_client_is_a_silent_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("METERLINE_URL", raising=False)
    monkeypatch.delenv("METERLINE_INGEST_KEY", raising=False)
    client = CaptureClient()
    assert not client.enabled
    client.record_llm("gpt-4o", input_tokens=1)
    assert client.flush(timeout=1)
