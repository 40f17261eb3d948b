"""F1 score (macro by default) as a local `evaluate` metric module, loadable offline with ``evaluate.load(<folder>)``.

Example:
    >>> import evaluate                                              # doctest: +SKIP
    >>> metric = evaluate.load("modeling_qllm/experiments/metrics/f1")  # doctest: +SKIP
    >>> metric.compute(predictions=[0, 1, 1], references=[0, 1, 0])   # doctest: +SKIP
    {'f1': 0.6666666666666666}
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """\
F1 = 2 * TP / (2 * TP + FP + FN) per class, the harmonic mean of precision and recall. `macro` averages the
per-class scores of every class present in the references or predictions with equal weight, `weighted` by their
support in the references, `micro` pools the counts (equal to accuracy for single-label data), `binary` reports
the class `pos_label`. A class with no true and no predicted example scores 0 (scikit-learn's zero_division=0).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): true class ids, same length as predictions.
    average (str, default "macro"): one of "macro", "weighted", "micro", "binary".
    pos_label (int, default 1): the class scored when average="binary".
    labels (list of int, optional): the classes to average over (default: those present in either input).
Returns:
    f1 (float): in [0, 1].
Example:
    >>> metric.compute(predictions=[0, 0], references=[0, 1])  # doctest: +SKIP
    {'f1': 0.3333333333333333}
"""

_CITATION = """\
@article{pedregosa2011scikit,
  title={Scikit-learn: Machine Learning in {P}ython},
  author={Pedregosa, F. and Varoquaux, G. and Gramfort, A. and others},
  journal={Journal of Machine Learning Research}, volume={12}, pages={2825--2830}, year={2011}
}
"""

_AVERAGES = ("macro", "weighted", "micro", "binary")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class F1(evaluate.Metric):
    """F1 score for single-label classification."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.f1_score.html"],
        )

    def _compute(self, predictions, references, average="macro", pos_label=1, labels=None):
        if average not in _AVERAGES:
            raise ValueError(f"average={average!r} is not supported; expected one of {_AVERAGES}.")
        pred, ref = np.asarray(predictions), np.asarray(references)
        if pred.size == 0:
            raise ValueError("F1 of zero predictions is undefined; got empty predictions and references.")
        if average == "binary":
            labels = [pos_label]
        elif labels is None:
            labels = np.union1d(pred, ref)
        labels = np.asarray(labels)
        tp = np.array([np.sum((pred == c) & (ref == c)) for c in labels], dtype=float)
        fp = np.array([np.sum((pred == c) & (ref != c)) for c in labels], dtype=float)
        fn = np.array([np.sum((pred != c) & (ref == c)) for c in labels], dtype=float)
        if average == "micro":
            denom = 2 * tp.sum() + fp.sum() + fn.sum()
            return {"f1": float(2 * tp.sum() / denom) if denom else 0.0}
        denom = 2 * tp + fp + fn
        per_class = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
        if average == "weighted":
            support = tp + fn
            return {"f1": float((per_class * support).sum() / support.sum()) if support.sum() else 0.0}
        return {"f1": float(per_class.mean())}
