"""Two-level screening designs and main-effect estimates with confidence intervals.

Designs are ``(runs, columns)`` arrays of -1 (low) / +1 (high).

* **Plackett-Burman** (Plackett & Burman 1946, "The design of optimum multifactorial experiments", Biometrika 33):
  for ``N`` = 8, 12, 16, 20, 24 runs, rows 1..N-1 are the ``N-1`` cyclic shifts of the published generator row and
  the last row is all -1. Every column is balanced (N/2 highs) and every pair of columns is orthogonal, so up to
  ``N-1`` main effects are estimated independently. (N = 8 and 16 are also regular fractions of 2^k; N = 12, 20 and
  24 are not, and their two-factor interactions are partially aliased with every main effect.)
* **Regular fractional factorial 2^(k-p)**: a full factorial in ``k-p`` base factors (letters A, B, ...; see
  :func:`full_factorial`; column A alternates fastest) plus ``p`` generated columns, each the product of the base
  columns named by a word (``"D": "ABC"``). The defining relation's shortest word gives the resolution.

Effects (:func:`main_effects`): for a factor, ``effect = mean(y | high) - mean(y | low)`` over all runs and
replicates. With ``r >= 2`` replicates per design point (folds x seeds, each replicate a complete block over the
design), the error variance is that of the residuals of the additive model ``y = point + replicate``
(``(N-1)(r-1)`` degrees of freedom; the replicate blocks take out fold-to-fold differences shared by all points),
``SE(effect) = 2 s / sqrt(N r)``, and the interval is ``effect +- t_{1-alpha/2, df} SE``. With one replicate there
are no error degrees of freedom and the intervals are ``nan`` (use the dummy columns of a non-saturated design to
judge noise then).

Example:
    >>> d = plackett_burman(8)
    >>> d.shape, bool((d.T @ d == 8 * np.eye(7)).all())
    ((8, 7), True)
"""

from __future__ import annotations

import itertools
import math
import string
from typing import Dict, List, Optional, Sequence

import numpy as np
from scipy import stats

# Generator rows of Plackett & Burman (1946), as tabulated e.g. in Montgomery, Design and Analysis of Experiments.
PB_GENERATORS = {
    8: "+++-+--",
    12: "++-+++---+-",
    16: "++++-+-++--+---",
    20: "++--++++-+-+----++-",
    24: "+++++-+-++--++--+-+----",
}


def plackett_burman(runs: int) -> np.ndarray:
    """The ``runs x (runs-1)`` Plackett-Burman design (cyclic generator rows, then a row of all -1).

    Example:
        >>> plackett_burman(8)[:2].tolist()
        [[1, 1, 1, -1, 1, -1, -1], [-1, 1, 1, 1, -1, 1, -1]]
    """
    if runs not in PB_GENERATORS:
        raise ValueError(f"Plackett-Burman design with runs={runs!r}; available: {sorted(PB_GENERATORS)}")
    generator = np.array([1 if c == "+" else -1 for c in PB_GENERATORS[runs]])
    rows = [np.roll(generator, shift) for shift in range(runs - 1)]
    rows.append(-np.ones(runs - 1, dtype=int))
    return np.array(rows, dtype=int)


def full_factorial(k: int) -> np.ndarray:
    """All ``2**k`` combinations of ``k`` two-level factors in standard (Yates) order: column 0 alternates fastest.

    Example:
        >>> full_factorial(2).tolist()
        [[-1, -1], [1, -1], [-1, 1], [1, 1]]
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k={k!r}; expected a positive integer")
    return np.array([[1 if (i >> j) & 1 else -1 for j in range(k)] for i in range(2**k)], dtype=int)


def fractional_factorial(base: int, generators: Dict[str, str]) -> np.ndarray:
    """A regular ``2^(k-p)`` design: ``base`` factors (letters A, B, ...) in full factorial, then one column per
    generator, the product of the base columns its word names, in the order given.

    Example:
        >>> d = fractional_factorial(3, {"D": "AB", "E": "AC", "F": "BC", "G": "ABC"})   # 2^(7-4), resolution III
        >>> d.shape, design_resolution(3, {"D": "AB", "E": "AC", "F": "BC", "G": "ABC"})
        ((8, 7), 3)
    """
    design = full_factorial(base)
    letters = string.ascii_uppercase[:base]
    columns = [design[:, j] for j in range(base)]
    for name, word in generators.items():
        word = word.replace("-", "")
        bad = [c for c in word if c not in letters]
        if not word or bad:
            raise ValueError(f"generator {name}={word!r}: use products of the base factors {list(letters)}")
        column = np.prod([design[:, letters.index(c)] for c in word], axis=0)
        columns.append(column)
    return np.stack(columns, axis=1).astype(int)


def design_resolution(base: int, generators: Dict[str, str]) -> Optional[int]:
    """Length of the shortest word of the defining relation (None for a full factorial: no generators)."""
    if not generators:
        return None
    words = [frozenset(word.replace("-", "")) ^ {name} for name, word in generators.items()]
    shortest = math.inf
    for size in range(1, len(words) + 1):
        for combo in itertools.combinations(words, size):
            product = frozenset()
            for w in combo:
                product = product ^ w
            if product:
                shortest = min(shortest, len(product))
    return int(shortest)


def make_design(spec: Dict, n_factors: int) -> np.ndarray:
    """A design from a YAML-style spec: ``{"type": "plackett_burman", "runs": 8}`` or
    ``{"type": "fractional_factorial", "base": 3, "generators": {"D": "AB", ...}}``; its first ``n_factors``
    columns get the factors, the others are dummy columns."""
    kind = spec.get("type", "plackett_burman")
    if kind == "plackett_burman":
        design = plackett_burman(int(spec.get("runs", 8)))
    elif kind == "fractional_factorial":
        design = fractional_factorial(int(spec["base"]), dict(spec.get("generators", {})))
    elif kind == "full_factorial":
        design = full_factorial(n_factors)
    else:
        raise ValueError(f"design type {kind!r}; expected plackett_burman, fractional_factorial or full_factorial")
    if design.shape[1] < n_factors:
        raise ValueError(f"a {kind} design with {design.shape[0]} runs has {design.shape[1]} columns, fewer than the "
                         f"{n_factors} factors; use more runs")
    return design


def main_effects(design: np.ndarray, responses: np.ndarray, names: Sequence[str], alpha: float = 0.05) -> List[Dict]:
    """Main effects of every column of ``design`` on ``responses`` (``(runs, replicates)``), with t intervals.

    Returns one dict per column: ``factor``, ``effect``, ``se``, ``ci_low``, ``ci_high``, ``t``, ``p_value``,
    ``df`` (see the module docstring for the error model).

    Example:
        >>> d = plackett_burman(8); rng = np.random.default_rng(0)
        >>> y = 0.8 + 0.05 * d[:, [0]] + 0.001 * rng.standard_normal((8, 3))   # effect of column 0: 2 x 0.05
        >>> round(main_effects(d, y, list("ABCDEFG"))[0]["effect"], 2)
        0.1
    """
    design = np.asarray(design, dtype=float)
    y = np.asarray(responses, dtype=float)
    if y.ndim == 1:
        y = y[:, None]
    n, r = y.shape
    if design.shape[0] != n:
        raise ValueError(f"design has {design.shape[0]} runs but responses have {n} rows")
    if len(names) != design.shape[1]:
        raise ValueError(f"{len(names)} names for {design.shape[1]} design columns")
    if not np.isfinite(y).all():
        raise ValueError("responses hold NaN or infinity; every run of every replicate must have finished")
    df = (n - 1) * (r - 1)
    if df > 0:
        residual = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + y.mean()
        s2 = float((residual**2).sum() / df)
        se = 2 * math.sqrt(s2 / (n * r))
        t_crit = float(stats.t.ppf(1 - alpha / 2, df))
    else:
        se, t_crit = math.nan, math.nan
    out = []
    for j, name in enumerate(names):
        high, low = y[design[:, j] > 0], y[design[:, j] < 0]
        effect = float(high.mean() - low.mean())
        t = effect / se if se and se > 0 else math.nan
        p = float(2 * stats.t.sf(abs(t), df)) if df > 0 and math.isfinite(t) else math.nan
        out.append({"factor": name, "effect": effect, "se": se, "ci_low": effect - t_crit * se,
                    "ci_high": effect + t_crit * se, "t": t, "p_value": p, "df": df,
                    "mean_low": float(low.mean()), "mean_high": float(high.mean())})
    return out
