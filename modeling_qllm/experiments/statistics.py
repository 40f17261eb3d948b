"""Mean and spread over folds and seeds, and paired comparisons of two heads on the same splits.

Example:
    >>> mean_std([0.88, 0.89, 0.90])
    (0.89, 0.010000000000000009)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Any, Iterable

import numpy as np
from scipy import stats


def _as_finite_list(values: Iterable[float], name: str) -> list[float]:
    out = list(values)
    for i, v in enumerate(out):
        if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(v):
            raise ValueError(f"{name}[{i}] is {v!r}; expected a finite number.")
    return [float(v) for v in out]


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1); a single value has std 0.0.

    Example:
        >>> mean_std([0.5])
        (0.5, 0.0)
    """
    vals = _as_finite_list(values, "values")
    if not vals:
        raise ValueError("mean_std needs at least one value, got none.")
    std = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
    return float(np.mean(vals)), std


def summarize(records: list[dict[str, Any]], keys: list[str],
              group_by: str | None = None) -> dict[str, Any]:
    """Mean, std and count of ``keys`` over records (one record per fold or seed).

    Returns ``{key: {"mean", "std", "n"}}``, or with ``group_by`` the same nested under each value of that field
    (in order of first appearance).

    Example:
        >>> recs = [{"head": "q", "acc": 0.8}, {"head": "q", "acc": 0.9}, {"head": "lr", "acc": 0.85}]
        >>> summarize(recs, ["acc"], group_by="head")["lr"]
        {'acc': {'mean': 0.85, 'std': 0.0, 'n': 1}}
    """
    if not records:
        raise ValueError("summarize needs at least one record, got none.")
    if isinstance(keys, str):
        raise ValueError(f"keys must be a list of field names, got the string {keys!r}; write [{keys!r}].")
    needed = list(keys) + ([group_by] if group_by is not None else [])
    for i, rec in enumerate(records):
        missing = [k for k in needed if k not in rec]
        if missing:
            raise ValueError(f"Record {i} lacks {missing}; it has {sorted(rec)}.")
    if group_by is not None:
        groups: dict[Any, list[dict[str, Any]]] = {}
        for rec in records:
            groups.setdefault(rec[group_by], []).append(rec)
        return {g: summarize(recs, keys) for g, recs in groups.items()}
    out = {}
    for k in keys:
        mean, std = mean_std(_as_finite_list((r[k] for r in records), k))
        out[k] = {"mean": mean, "std": std, "n": len(records)}
    return out


@dataclass(frozen=True)
class PairedDifference:
    """``a - b`` over paired runs: mean, sample std, count, t statistic and two-sided p-value (paired t-test)."""

    mean: float
    std: float
    n: int
    t_statistic: float
    p_value: float


def paired_difference(a: Iterable[float], b: Iterable[float]) -> PairedDifference:
    """Compare two heads run on the same folds/seeds (``a[i]`` and ``b[i]`` share split and seed).

    The p-value is scipy's two-sided paired t-test; it is ``nan`` when all differences are equal (the test is
    undefined there), which this function reports rather than hides.

    Example:
        >>> d = paired_difference([0.90, 0.91, 0.89], [0.88, 0.885, 0.87])
        >>> round(d.mean, 4), d.n, d.p_value < 0.05
        (0.0217, 3, True)
    """
    a, b = _as_finite_list(a, "a"), _as_finite_list(b, "b")
    if len(a) != len(b):
        raise ValueError(f"Paired samples must have the same length, got {len(a)} and {len(b)}.")
    if len(a) < 2:
        raise ValueError(f"A paired t-test needs at least 2 pairs, got {len(a)}.")
    diff = np.asarray(a) - np.asarray(b)
    result = stats.ttest_rel(a, b)
    return PairedDifference(float(diff.mean()), float(diff.std(ddof=1)), len(a),
                            float(result.statistic), float(result.pvalue))
