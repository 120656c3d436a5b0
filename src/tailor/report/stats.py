"""Paired statistics for a reproduction's claims: is the method better than the paper's baseline arm?

Arms of a repro share the seed, and with it the training subset and the head's draw, so the right
test pairs them by seed (and task): d_i = method_i − baseline_i. We report the mean difference and a
95 % **paired t** interval, mean ± t_{0.975, n−1} · sd(d, ddof=1) / √n (the t quantile from
scipy.stats), and a verdict read off the interval: *holds* (interval above 0), *contradicted*
(below 0), *inconclusive* (it contains 0, or fewer than 2 pairs). Only this verdict rule and the
pairing are written here; the interval is the textbook one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np

METHOD = "paired t, 95 %"
HOLDS, CONTRADICTED, INCONCLUSIVE = "holds", "contradicted", "inconclusive"


@dataclass(frozen=True)
class Paired:
    """Mean of the paired differences, its 95 % paired-t interval and the verdict."""

    n: int
    mean: float
    low: float
    high: float
    verdict: str
    method: str = METHOD

    def as_dict(self) -> dict:
        return asdict(self)


def paired(
    method: Sequence[float], baseline: Sequence[float], confidence: float = 0.95, higher_is_better: bool = True
) -> Paired:
    """Paired-t summary of ``method − baseline`` (``baseline − method`` when lower is better, e.g.
    perplexity), so a positive difference always means the method is better."""
    from scipy import stats

    m, b = np.asarray(method, dtype=float), np.asarray(baseline, dtype=float)
    if m.shape != b.shape:
        raise ValueError(f"paired values need equal lengths, got {m.size} and {b.size}")
    d = m - b if higher_is_better else b - m
    n = d.size
    if n < 2:
        mean = float(d.mean()) if n else math.nan
        return Paired(n, mean, math.nan, math.nan, INCONCLUSIVE)
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1) * d.std(ddof=1) / math.sqrt(n))
    mean = float(d.mean())
    low, high = mean - half, mean + half
    verdict = HOLDS if low > 0 else CONTRADICTED if high < 0 else INCONCLUSIVE
    return Paired(n, mean, low, high, verdict)


def paired_by_key(method: Mapping, baseline: Mapping, **kwargs) -> Paired:
    """``paired`` over the keys (seeds, or (task, seed) pairs) both arms have."""
    keys = [k for k in method if k in baseline]
    return paired([method[k] for k in keys], [baseline[k] for k in keys], **kwargs)


def fmt_paired(p: Paired | dict | None, scale: float = 100.0, digits: int = 2) -> list[str]:
    """Table cells: mean difference, 95 % interval, verdict (with the number of pairs)."""
    if p is None:
        return ["–", "–", "–"]
    if not isinstance(p, Paired):  # a dict from results.json, possibly with more keys beside these
        p = Paired(**{k: p[k] for k in ("n", "mean", "low", "high", "verdict")})
    mean = f"{p.mean * scale:+.{digits}f}"
    interval = "–" if math.isnan(p.low) else f"[{p.low * scale:+.{digits}f}, {p.high * scale:+.{digits}f}]"
    return [mean, interval, f"{p.verdict} (n={p.n})"]


PAIRED_HEADER = ("mean difference", "95 % interval (paired t)", "verdict")


def paired_runs(results: list[dict], metric: str = "test/accuracy") -> list[list[str]]:
    """Rows for ``tailor report``: each run's last stage against the first run's, paired by seed."""

    def last_stage(res: dict) -> dict[str, float]:
        out = {}
        for seed, stages in res["seeds"].items():
            value = _get(list(stages.values())[-1], metric)
            if value is not None:
                out[seed] = value
        return out

    base = last_stage(results[0])
    return [
        [res["recipe"], results[0]["recipe"], *fmt_paired(paired_by_key(last_stage(res), base))] for res in results[1:]
    ]


def _get(metrics: dict, path: str) -> float | None:
    for key in path.split("/"):
        if not isinstance(metrics, dict) or key not in metrics:
            return None
        metrics = metrics[key]
    return float(metrics) if isinstance(metrics, (int, float)) else None
