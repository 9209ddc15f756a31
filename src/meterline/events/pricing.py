"""LLM price table: USD per million input and output tokens, editable per deployment."""

from __future__ import annotations

import json
from pathlib import Path

# List prices per 1M tokens (input, output); a deployment overrides or extends these with
# a ``prices.json`` in its data directory. Unknown models cost 0 unless the event says.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "o3-mini": (1.10, 4.40),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-sonnet-4": (3.00, 15.00),
    "gemini-1.5-pro": (1.25, 5.00),
    "gemini-1.5-flash": (0.075, 0.30),
    "llama-3.1-70b": (0.59, 0.79),
}


class PriceTable:
    """Computes ``cost_usd`` for LLM events that do not carry one.

    Example:
        >>> PriceTable().cost("gpt-4o-mini", 1_000_000, 0)
        0.15
    """

    def __init__(self, prices: dict[str, tuple[float, float]] | None = None) -> None:
        self.prices = dict(DEFAULT_PRICES if prices is None else prices)

    @classmethod
    def from_file(cls, path: Path) -> PriceTable:
        """Defaults overlaid with ``{"model": [input_per_m, output_per_m]}`` from ``path``."""
        table = cls()
        if path.exists():
            for model, (inp, out) in json.loads(path.read_text()).items():
                table.prices[model] = (float(inp), float(out))
        return table

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float:
        """USD cost of one call; 0.0 for a model the table does not know."""
        price = self.prices.get(model)
        if price is None:
            return 0.0
        return round((input_tokens * price[0] + output_tokens * price[1]) / 1_000_000, 10)
