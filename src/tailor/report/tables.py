"""Markdown tables of mean ± std over seeds, from the `summary` block of results.json."""

from __future__ import annotations

from typing import Iterable, Sequence


def fmt_mean_std(stat: dict | None, scale: float = 100.0, digits: int = 2) -> str:
    if not stat:
        return "–"
    if stat.get("n", 1) < 2:
        return f"{stat['mean'] * scale:.{digits}f}"
    return f"{stat['mean'] * scale:.{digits}f} ± {stat['std'] * scale:.{digits}f}"


def summary_rows(results: dict, metrics: Sequence[str]) -> list[list[str]]:
    """One row per stage of one run: [run, stage, seeds, metric...]."""
    rows = []
    for stage_id, stats in results["summary"].items():
        if not any(m in stats for m in metrics):
            continue
        n = max((s["n"] for s in stats.values()), default=0)
        rows.append([results["recipe"], stage_id, str(n), *(fmt_mean_std(stats.get(m)) for m in metrics)])
    return rows


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
