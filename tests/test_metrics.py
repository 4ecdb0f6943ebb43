import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, hamming_loss

from peakmixer.metrics import compute_metrics, main_metric, multiclass_metrics, multilabel_metrics


@pytest.mark.parametrize("seed", range(5))
def test_multilabel_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random((200, 9)) < 0.3).astype(int)
    y[:, 8] = 0  # a label that never occurs: zero_division must give 0, as sklearn
    scores = rng.normal(size=y.shape) + 1.5 * y
    m = multilabel_metrics(y, scores)
    pred = (scores >= 0).astype(int)
    assert m["micro_f1"] == pytest.approx(f1_score(y, pred, average="micro", zero_division=0))
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
    assert m["samples_f1"] == pytest.approx(f1_score(y, pred, average="samples", zero_division=0))
    assert m["hamming_accuracy"] == pytest.approx(1 - hamming_loss(y, pred))
    assert m["emr"] == pytest.approx(accuracy_score(y, pred))
    per = f1_score(y, pred, average=None, zero_division=0)
    assert [v["f1"] for v in m["per_label"].values()] == pytest.approx(per)


def test_multilabel_known_case_and_baseline():
    y = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0], [1, 1, 0]])
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.4, 0.0], [0.0, 0.0, 0.0], [0.8, 0.7, 0.6]])
    m = multilabel_metrics(y, probs, logits=False, label_names=["a", "b", "c"])
    # TP = 3 (a,a,b), FP = 1 (c in row 4), FN = 1 (b in row 2)
    assert m["micro_f1"] == pytest.approx(6 / 8)
    assert m["emr"] == pytest.approx(2 / 4)
    assert m["hamming_accuracy"] == pytest.approx(10 / 12)
    assert m["all_negative"] == {"hamming_accuracy": pytest.approx(8 / 12), "emr": pytest.approx(1 / 4)}
    assert m["per_label"]["b"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    # logits and probabilities give the same decisions
    logits = np.log(np.clip(probs, 1e-9, 1) / np.clip(1 - probs, 1e-9, 1))
    assert multilabel_metrics(y, logits)["micro_f1"] == m["micro_f1"]


@pytest.mark.parametrize("seed", range(3))
def test_multiclass_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 6, 300)
    scores = rng.normal(size=(300, 7))
    scores[np.arange(300), y] += 1.0  # class 6 never occurs in truth
    m = multiclass_metrics(y, scores)
    pred = scores.argmax(1)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
    assert np.array_equal(m["confusion"], confusion_matrix(y, pred, labels=range(7)))


def test_dispatch_and_shape_errors():
    assert main_metric("multilabel") == "micro_f1" and main_metric("multiclass") == "accuracy"
    with pytest.raises(ValueError, match="must both be"):
        compute_metrics("multilabel", np.zeros((3, 2)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="unknown task"):
        compute_metrics("regression", np.zeros(3), np.zeros((3, 2)))


def test_macro_f1_has_one_rule_for_both_tasks_labels_absent_from_truth_and_predictions_do_not_count():
    # three labels / classes, the third never occurs and is never predicted
    y_ml = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    logits = np.where(np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]]) > 0, 5.0, -5.0)
    ml = multilabel_metrics(y_ml, logits)
    assert ml["macro_f1"] == pytest.approx((1.0 + 2 / 3) / 2)  # labels 0 and 1 only
    y_mc = np.array([0, 1, 1, 0])
    scores = np.eye(3)[[0, 1, 0, 0]]
    mc = multiclass_metrics(y_mc, scores)
    f1_0, f1_1 = 2 * 2 / (2 * 2 + 1), 2 * 1 / (2 * 1 + 1)
    assert mc["macro_f1"] == pytest.approx((f1_0 + f1_1) / 2)  # class 2 does not count
