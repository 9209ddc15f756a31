from __future__ import annotations

import pytest

from meterline.errors import ValidationError
from meterline.reports.templates import BUILTIN_TEMPLATES, validate_template


def test_builtin_templates_cover_the_product():
    assert set(BUILTIN_TEMPLATES) == {
        "api_overview", "endpoint_performance", "consumer_usage", "errors_slos", "llm_cost"
    }  # fmt: skip
    for template in BUILTIN_TEMPLATES.values():
        displays = {s.display for s in template.sections}
        assert "kpi" in displays and ("table" in displays or "chart" in displays)


def test_valid_user_template():
    template = validate_template(
        {
            "name": "Checkout health",
            "sections": [
                {"title": "KPIs", "display": "kpi", "query": {"metrics": ["requests"]}},
                {
                    "title": "Checkout latency",
                    "display": "chart",
                    "chart_type": "line",
                    "query": {
                        "metrics": ["latency_p95"],
                        "granularity": "auto",
                        "filters": [{"field": "route", "op": "eq", "value": "/checkout"}],
                    },
                },
                {"title": "Regions", "display": "table",
                 "query": {"metrics": ["requests"], "dimensions": ["region"]}},
            ],
        },
        template_id="tpl_1",
    )  # fmt: skip
    assert [s.display for s in template.sections] == ["kpi", "chart", "table"]


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"title": "x", "display": "kpi", "query": {"metrics": ["nope"]}}, "sections[0].query"),
        ({"title": "x", "display": "kpi", "query": {"metrics": ["requests"],
          "dimensions": ["route"]}}, "sections[0]"),
        ({"title": "x", "display": "chart", "chart_type": "pie",
          "query": {"metrics": ["requests"]}}, "sections[0]"),
        ({"title": "x", "display": "chart", "chart_type": "radar",
          "query": {"metrics": ["requests"]}}, "sections[0].chart_type"),
        ({"title": "x", "display": "chart", "chart_type": "line",
          "query": {"metrics": ["requests"]}}, "sections[0]"),
        ({"title": "x", "display": "table", "query": {"metrics": ["requests"], "range": "7d"}},
         "sections[0].query.range"),
        ({"title": "x", "display": "gauge", "query": {"metrics": ["requests"]}},
         "sections[0].display"),
    ],
)  # fmt: skip
def test_invalid_sections_are_named(section, field):
    with pytest.raises(ValidationError) as caught:
        validate_template({"name": "Some template", "sections": [section]}, template_id="t")
    fields = [e["field"] for e in caught.value.validation_errors or []]
    assert any(f.startswith(field) for f in fields), fields


def test_name_and_sections_required():
    with pytest.raises(ValidationError) as caught:
        validate_template({"name": "abc", "sections": []}, template_id="t")
    assert {e["field"] for e in caught.value.validation_errors or []} == {"name", "sections"}
