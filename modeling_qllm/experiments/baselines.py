"""Classical heads on the same embeddings and splits as the quantum head: the comparison the paper needs.

Every baseline takes ``(x_train, y_train, x_eval, y_eval)`` (tensors or arrays; embeddings and integer labels)
and returns a :class:`BaselineResult` with accuracy and macro-F1 on the eval set, a parameter count whose
meaning is spelled out in ``parameter_note``, and the wall time of fitting plus prediction.

Example:
    >>> import numpy as np
    >>> x = np.array([[0.0, 1.0], [1.0, 0.0]] * 10); y = np.array([0, 1] * 10)
    >>> r = logistic_regression(x, y, x, y)
    >>> (r.accuracy, r.num_parameters)
    (1.0, 3)
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.svm import SVC

from ..heads import mlp_hidden_for_budget, mlp_num_parameters  # one rule for the model and the baselines


@dataclass
class BaselineResult:
    """Scores of one baseline on one split.

    Example:
        >>> BaselineResult("svm", 0.9, 0.89, 100, "support vectors", 0.1).accuracy
        0.9
    """

    name: str
    accuracy: float
    macro_f1: float
    num_parameters: int
    parameter_note: str
    wall_time_s: float
    extra: dict[str, Any] = field(default_factory=dict)


def _as_arrays(x_train, y_train, x_eval, y_eval) -> tuple[np.ndarray, ...]:
    """Convert to numpy and check shapes: 2-D features, 1-D integer labels, matching rows and widths."""
    out = []
    for name, a in (("x_train", x_train), ("y_train", y_train), ("x_eval", x_eval), ("y_eval", y_eval)):
        a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        want = 2 if name.startswith("x") else 1
        if a.ndim != want or a.shape[0] == 0:
            raise ValueError(f"{name} must be a non-empty {want}-D array, got shape {a.shape}.")
        if name.startswith("y") and not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name} must hold integer class ids, got dtype {a.dtype}.")
        out.append(a)
    xt, yt, xe, ye = out
    if len(xt) != len(yt) or len(xe) != len(ye):
        raise ValueError(f"Row counts differ: x_train {len(xt)} vs y_train {len(yt)}, x_eval {len(xe)} vs y_eval {len(ye)}.")
    if xt.shape[1] != xe.shape[1]:
        raise ValueError(f"Feature widths differ: x_train has {xt.shape[1]}, x_eval has {xe.shape[1]}.")
    return xt, yt, xe, ye


def _scores(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    return float(accuracy_score(y_true, y_pred)), float(f1_score(y_true, y_pred, average="macro"))


def logistic_regression(x_train, y_train, x_eval, y_eval, C: float = 1.0, max_iter: int = 1000,
                        seed: int = 0) -> BaselineResult:
    """Multinomial logistic regression (scikit-learn, L2, lbfgs).

    Parameters are counted as sklearn stores them: ``coef_`` + ``intercept_``, i.e. ``d + 1`` for two classes and
    ``d * k + k`` for ``k > 2``.

    Example:
        >>> x = np.eye(3).repeat(4, axis=0); y = np.arange(3).repeat(4)
        >>> logistic_regression(x, y, x, y).num_parameters
        12
    """
    xt, yt, xe, ye = _as_arrays(x_train, y_train, x_eval, y_eval)
    start = time.perf_counter()
    model = LogisticRegression(C=C, max_iter=max_iter, random_state=seed).fit(xt, yt)
    pred = model.predict(xe)
    wall = time.perf_counter() - start
    acc, f1 = _scores(ye, pred)
    n = int(model.coef_.size + model.intercept_.size)
    return BaselineResult("logistic_regression", acc, f1, n, "coef_ + intercept_ as stored by scikit-learn", wall,
                          {"C": C, "n_iter": int(np.max(model.n_iter_))})


def svm(x_train, y_train, x_eval, y_eval, C: float = 1.0, kernel: str = "rbf", seed: int = 0) -> BaselineResult:
    """Kernel support-vector classifier (scikit-learn ``SVC``).

    A kernel SVM has no fixed weight vector; it stores its support vectors. The count reported is the numbers it
    keeps to predict: ``n_support_vectors * d`` + dual coefficients + intercepts (``parameter_note`` says so).
    Compare it with trained-weight counts of other heads with that in mind.

    Example:
        >>> x = np.array([[0.0], [1.0]] * 5); y = np.array([0, 1] * 5)
        >>> svm(x, y, x, y, kernel="linear").accuracy
        1.0
    """
    xt, yt, xe, ye = _as_arrays(x_train, y_train, x_eval, y_eval)
    start = time.perf_counter()
    model = SVC(C=C, kernel=kernel, random_state=seed).fit(xt, yt)
    pred = model.predict(xe)
    wall = time.perf_counter() - start
    acc, f1 = _scores(ye, pred)
    n_sv = int(model.support_vectors_.shape[0])
    n = int(model.support_vectors_.size + model.dual_coef_.size + model.intercept_.size)
    note = (f"stored numbers, not trained weights: {n_sv} support vectors x {xt.shape[1]} dims + "
            f"{model.dual_coef_.size} dual coefficients + {model.intercept_.size} intercepts")
    return BaselineResult("svm", acc, f1, n, note, wall, {"C": C, "kernel": kernel, "n_support_vectors": n_sv})


def mlp(x_train, y_train, x_eval, y_eval, hidden: int, num_labels: int | None = None, epochs: int = 100,
        lr: float = 1e-3, batch_size: int = 64, weight_decay: float = 0.0, seed: int = 0,
        x_val=None, y_val=None) -> BaselineResult:
    """Train ``Linear -> ReLU -> Linear`` with Adam and cross-entropy (torch, CPU, deterministic given ``seed``).

    If ``x_val``/``y_val`` are given, the weights of the epoch with the best validation accuracy are kept
    (first best on ties); otherwise those of the last epoch.

    Example:
        >>> x = np.array([[0.0, 1.0], [1.0, 0.0]] * 8, dtype=np.float32); y = np.array([0, 1] * 8)
        >>> r = mlp(x, y, x, y, hidden=4, epochs=200, lr=1e-2)
        >>> (r.accuracy, r.num_parameters)
        (1.0, 22)
    """
    xt, yt, xe, ye = _as_arrays(x_train, y_train, x_eval, y_eval)
    if not isinstance(hidden, Integral) or hidden < 1:
        raise ValueError(f"hidden must be a positive integer, got {hidden!r}.")
    k = int(num_labels) if num_labels is not None else int(max(yt.max(), ye.max())) + 1
    if yt.min() < 0 or yt.max() >= k or ye.min() < 0 or ye.max() >= k:
        raise ValueError(f"Labels must lie in [0, {k}); got train range [{yt.min()}, {yt.max()}], eval range "
                         f"[{ye.min()}, {ye.max()}].")
    if (x_val is None) != (y_val is None):
        raise ValueError("Pass both x_val and y_val, or neither.")
    gen = torch.Generator().manual_seed(seed)
    torch_state = torch.random.get_rng_state()
    torch.manual_seed(seed)  # nn.Linear draws its initial weights from the global generator
    model = torch.nn.Sequential(torch.nn.Linear(xt.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, k))
    torch.random.set_rng_state(torch_state)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    xt_t, yt_t = torch.as_tensor(xt, dtype=torch.float32), torch.as_tensor(yt, dtype=torch.long)
    predict = lambda x: model(torch.as_tensor(x, dtype=torch.float32)).argmax(-1).numpy()
    best = (-1.0, None, -1)
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        for idx in torch.randperm(len(xt_t), generator=gen).split(batch_size):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt_t[idx]), yt_t[idx]).backward()
            opt.step()
        if x_val is not None:
            model.eval()
            with torch.no_grad():
                val_acc = float((predict(x_val) == np.asarray(y_val)).mean())
            if val_acc > best[0]:
                best = (val_acc, copy.deepcopy(model.state_dict()), epoch)
    if best[1] is not None:
        model.load_state_dict(best[1])
    model.eval()
    with torch.no_grad():
        pred = predict(xe)
    wall = time.perf_counter() - start
    acc, f1 = _scores(ye, pred)
    n = sum(p.numel() for p in model.parameters())
    extra = {"hidden": hidden, "epochs": epochs, "lr": lr, "batch_size": batch_size, "weight_decay": weight_decay}
    if x_val is not None:
        extra.update(best_epoch=best[2], best_validation_accuracy=best[0])
    return BaselineResult("mlp", acc, f1, n, f"Linear({xt.shape[1]}->{hidden}) + ReLU + Linear({hidden}->{k})",
                          wall, extra)
