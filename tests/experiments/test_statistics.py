import math

import numpy as np
import pytest
from scipy import stats

from modeling_qllm.experiments.statistics import mean_std, paired_difference, summarize


def test_mean_std_sample_std():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    mean, std = mean_std(np.array([0.88, 0.9, 0.91, 0.87]))
    assert std == pytest.approx(np.std([0.88, 0.9, 0.91, 0.87], ddof=1)) and mean == pytest.approx(0.89)
    assert mean_std([0.5]) == (0.5, 0.0)


def test_mean_std_errors():
    with pytest.raises(ValueError, match="at least one value"):
        mean_std([])
    with pytest.raises(ValueError, match=r"values\[1\] is nan; expected a finite number"):
        mean_std([1.0, float("nan")])
    with pytest.raises(ValueError, match=r"values\[0\] is '0.9'; expected a finite number"):
        mean_std(["0.9"])


def test_summarize_plain_and_grouped():
    recs = [{"head": "q", "fold": f, "acc": a, "f1": a - 0.01} for f, a in enumerate([0.88, 0.90, 0.92])]
    recs.append({"head": "lr", "fold": 0, "acc": 0.89, "f1": 0.885})
    out = summarize(recs[:3], ["acc", "f1"])
    assert out["acc"] == {"mean": pytest.approx(0.90), "std": pytest.approx(0.02), "n": 3}
    assert out["f1"]["mean"] == pytest.approx(0.89)
    grouped = summarize(recs, ["acc"], group_by="head")
    assert list(grouped) == ["q", "lr"]
    assert grouped["lr"]["acc"] == {"mean": 0.89, "std": 0.0, "n": 1}


def test_summarize_errors():
    with pytest.raises(ValueError, match=r"Record 1 lacks \['acc'\]; it has \['accuracy', 'fold'\]"):
        summarize([{"acc": 0.9}, {"accuracy": 0.9, "fold": 1}], ["acc"])
    with pytest.raises(ValueError, match="at least one record"):
        summarize([], ["acc"])
    with pytest.raises(ValueError, match=r"got the string 'acc'; write \['acc'\]"):
        summarize([{"acc": 0.9}], "acc")
    with pytest.raises(ValueError, match=r"Record 0 lacks \['head'\]"):
        summarize([{"acc": 0.9}], ["acc"], group_by="head")


def test_paired_difference_matches_hand_computed_t_test():
    a, b = [0.90, 0.91, 0.89, 0.92, 0.90], [0.88, 0.90, 0.89, 0.89, 0.87]
    d = np.subtract(a, b)
    t = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
    p = 2 * stats.t.sf(abs(t), df=len(d) - 1)
    r = paired_difference(a, b)
    assert (r.mean, r.std, r.n) == (pytest.approx(d.mean()), pytest.approx(d.std(ddof=1)), 5)
    assert r.t_statistic == pytest.approx(t) and r.p_value == pytest.approx(p)
    assert paired_difference(b, a).t_statistic == pytest.approx(-t)


def test_paired_difference_constant_difference_reports_nan():
    r = paired_difference([0.9, 0.9], [0.9, 0.9])
    assert r.mean == 0.0 and r.std == 0.0 and math.isnan(r.p_value)


def test_paired_difference_errors():
    with pytest.raises(ValueError, match="same length, got 3 and 2"):
        paired_difference([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least 2 pairs, got 1"):
        paired_difference([1.0], [0.5])
    with pytest.raises(ValueError, match=r"b\[0\] is inf"):
        paired_difference([1.0, 2.0], [float("inf"), 1.0])
