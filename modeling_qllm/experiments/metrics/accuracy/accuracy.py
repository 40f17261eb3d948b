"""Accuracy as a local `evaluate` metric module, loadable offline with ``evaluate.load(<this folder>)``.

Example:
    >>> import evaluate                                                     # doctest: +SKIP
    >>> metric = evaluate.load("modeling_qllm/experiments/metrics/accuracy")  # doctest: +SKIP
    >>> metric.compute(predictions=[0, 1, 1], references=[0, 1, 0])          # doctest: +SKIP
    {'accuracy': 0.6666666666666666}
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Fraction of predictions equal to the reference labels: (1/N) * sum_i [prediction_i == reference_i]."

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): true class ids, same length as predictions.
    normalize (bool, default True): return the fraction correct; False returns the number correct.
Returns:
    accuracy (float): in [0, 1] when normalize is True, else a count.
Example:
    >>> metric.compute(predictions=[0, 1], references=[1, 1])  # doctest: +SKIP
    {'accuracy': 0.5}
"""

_CITATION = """\
@article{pedregosa2011scikit,
  title={Scikit-learn: Machine Learning in {P}ython},
  author={Pedregosa, F. and Varoquaux, G. and Gramfort, A. and others},
  journal={Journal of Machine Learning Research}, volume={12}, pages={2825--2830}, year={2011}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Accuracy(evaluate.Metric):
    """Single-label classification accuracy."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.accuracy_score.html"],
        )

    def _compute(self, predictions, references, normalize=True):
        predictions, references = np.asarray(predictions), np.asarray(references)
        if predictions.size == 0:
            raise ValueError("accuracy of zero predictions is undefined; got empty predictions and references.")
        correct = predictions == references
        return {"accuracy": float(correct.mean()) if normalize else float(correct.sum())}
