"""What answers cost: prices per model (`[pricing]`), and usage totals of a project from the
ledger of runs (`usage_records`: one row per finished run, see `services.messages`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import peewee as pw

from botical.config import ModelPrice
from botical.db import Database
from botical.db.models import UsageRecord

PER = 1_000_000  # prices are per million tokens


class Pricing:
    """Prices by model reference, as answers name their model (`"openai/gpt-4o"`, `"echo"`)."""

    def __init__(self, prices: Mapping[str, ModelPrice] | None = None) -> None:
        self.prices = dict(prices or {})

    def cost(self, model: str, usage: Mapping[str, int]) -> float:
        """The cost of `usage` on `model`; 0 for a model without a price. Cached input tokens
        are part of the input tokens and cost the `cached` price instead of `input`."""
        price = self.prices.get(model)
        if price is None:
            return 0.0
        cached = min(usage.get("cachedTokens", 0), usage["inputTokens"])
        cached_price = price.input if price.cached is None else price.cached
        total = (
            (usage["inputTokens"] - cached) * price.input
            + cached * cached_price
            + usage["outputTokens"] * price.output
        )
        return total / PER


class UsageService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def project(
        self, project_id: str, since: int | None = None, until: int | None = None
    ) -> dict[str, Any]:
        """A project's usage: totals and by model, of the runs finished in [since, until)."""

        def select() -> dict[str, Any]:
            record = UsageRecord
            query = record.select(
                record.model,
                pw.fn.COUNT(record.id).alias("answers"),
                pw.fn.SUM(record.input_tokens).alias("input_tokens"),
                pw.fn.SUM(record.output_tokens).alias("output_tokens"),
                pw.fn.SUM(record.cached_tokens).alias("cached_tokens"),
                pw.fn.SUM(record.cost).alias("cost"),
            ).where(record.project_id == project_id)
            if since is not None:
                query = query.where(record.created_at >= since)
            if until is not None:
                query = query.where(record.created_at < until)
            rows: list[Any] = list(query.group_by(record.model).order_by(record.model).dicts())
            return _totals(project_id, rows, since, until)

        return await self._db.run(select)


def _totals(
    project_id: str, rows: list[dict[str, Any]], since: int | None, until: int | None
) -> dict[str, Any]:
    by_model = [
        {
            "model": row["model"],
            "answers": int(row["answers"]),
            "inputTokens": int(row["input_tokens"] or 0),
            "outputTokens": int(row["output_tokens"] or 0),
            "cachedTokens": int(row["cached_tokens"] or 0),
            "cost": float(row["cost"] or 0.0),
        }
        for row in rows
    ]
    keys = ("answers", "inputTokens", "outputTokens", "cachedTokens")
    total: dict[str, Any] = {key: sum(m[key] for m in by_model) for key in keys}
    total["cost"] = sum(m["cost"] for m in by_model)
    return {"projectId": project_id, "since": since, "until": until, **total, "byModel": by_model}
