import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from modeling_qllm.experiments.baselines import (
    logistic_regression,
    mlp,
    mlp_hidden_for_budget,
    mlp_num_parameters,
    svm,
)


def blobs(n_per_class, num_classes, dim, seed=0, spread=1.5):
    """Gaussian blobs around random centres; overlapping enough that accuracy is below 1."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_classes, dim)) * 2
    x = np.concatenate([c + spread * rng.normal(size=(n_per_class, dim)) for c in centres]).astype(np.float32)
    y = np.repeat(np.arange(num_classes), n_per_class)
    perm = rng.permutation(len(y))
    return x[perm], y[perm]


@pytest.fixture(scope="module")
def binary():
    x, y = blobs(120, 2, 8, spread=4.0)
    return x[:160], y[:160], x[160:], y[160:]


def test_logistic_regression_binary_counts_and_scores(binary):
    xt, yt, xe, ye = binary
    r = logistic_regression(torch.from_numpy(xt), torch.from_numpy(yt), xe, ye)
    assert r.name == "logistic_regression" and r.num_parameters == 8 + 1
    ref = LogisticRegression(max_iter=1000, random_state=0).fit(xt, yt).predict(xe)
    assert r.accuracy == pytest.approx(float((ref == ye).mean()))
    assert r.macro_f1 == pytest.approx(f1_score(ye, ref, average="macro"))
    assert 0.6 < r.accuracy < 1.0 and r.wall_time_s > 0


def test_logistic_regression_multiclass_counts():
    x, y = blobs(40, 3, 5)
    assert logistic_regression(x, y, x, y).num_parameters == 5 * 3 + 3


def test_svm_counts_support_vectors_honestly(binary):
    xt, yt, xe, ye = binary
    r = svm(xt, yt, xe, ye)
    n_sv = r.extra["n_support_vectors"]
    assert 0 < n_sv <= len(xt)
    assert r.num_parameters == n_sv * 8 + n_sv + 1  # vectors + one dual coefficient each + one intercept (binary)
    assert f"{n_sv} support vectors x 8 dims" in r.parameter_note and "not trained weights" in r.parameter_note
    x3, y3 = blobs(30, 3, 4)
    r3 = svm(x3, y3, x3, y3, kernel="linear")
    assert r3.num_parameters == r3.extra["n_support_vectors"] * (4 + 2) + 3  # one-vs-one: k-1 duals, k(k-1)/2 intercepts


def test_mlp_hidden_for_budget():
    assert mlp_hidden_for_budget(768, 2, 886) == 1
    assert mlp_hidden_for_budget(10, 2, 1000) == 76
    for d, k, budget in [(768, 2, 5000), (384, 3, 100_000), (5, 7, 13 + 7)]:
        h = mlp_hidden_for_budget(d, k, budget)
        assert mlp_num_parameters(d, h, k) <= budget < mlp_num_parameters(d, h + 1, k)
    with pytest.raises(ValueError, match=r"budget of 700 parameters is below the smallest MLP .* which has 773"):
        mlp_hidden_for_budget(768, 2, 700)
    with pytest.raises(ValueError, match="embedding_size must be a positive integer, got 0"):
        mlp_hidden_for_budget(0, 2, 100)


def test_mlp_learns_counts_and_is_deterministic(binary):
    xt, yt, xe, ye = binary
    a = mlp(xt, yt, xe, ye, hidden=6, epochs=30, lr=1e-2, seed=3)
    b = mlp(xt, yt, xe, ye, hidden=6, epochs=30, lr=1e-2, seed=3)
    assert a.num_parameters == mlp_num_parameters(8, 6, 2) == 68
    assert (a.accuracy, a.macro_f1) == (b.accuracy, b.macro_f1)
    assert a.accuracy > 0.6 and "Linear(8->6)" in a.parameter_note


def test_mlp_keeps_best_validation_epoch(binary):
    xt, yt, xe, ye = binary
    r = mlp(xt[:120], yt[:120], xe, ye, hidden=4, epochs=15, lr=1e-2, x_val=xt[120:], y_val=yt[120:])
    assert 0 <= r.extra["best_epoch"] < 15 and 0.5 <= r.extra["best_validation_accuracy"] <= 1.0


def test_baseline_input_errors(binary):
    xt, yt, xe, ye = binary
    with pytest.raises(ValueError, match=r"Row counts differ: x_train 160 vs y_train 159"):
        logistic_regression(xt, yt[:-1], xe, ye)
    with pytest.raises(ValueError, match="y_train must hold integer class ids, got dtype float64"):
        svm(xt, yt.astype(float), xe, ye)
    with pytest.raises(ValueError, match="Feature widths differ: x_train has 8, x_eval has 7"):
        svm(xt, yt, xe[:, :7], ye)
    with pytest.raises(ValueError, match=r"x_eval must be a non-empty 2-D array, got shape \(80,\)"):
        logistic_regression(xt, yt, xe[:, 0], ye)
    with pytest.raises(ValueError, match=r"Labels must lie in \[0, 1\)"):
        mlp(xt, yt, xe, ye, hidden=2, num_labels=1)
    with pytest.raises(ValueError, match="Pass both x_val and y_val"):
        mlp(xt, yt, xe, ye, hidden=2, x_val=xt)
    with pytest.raises(ValueError, match="hidden must be a positive integer, got 0"):
        mlp(xt, yt, xe, ye, hidden=0)
