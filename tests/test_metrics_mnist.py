"""The metrics on real MNIST, with the trained evaluator classifier (trained once, cached in the real cache).

The session fixture calls the idempotent ``ensure_classifier``: the first run trains the classifier
(a few minutes on 2 cores), later runs load it. Reference statistics are cached beside it.
"""

from __future__ import annotations

import math
import shutil
import time

import numpy as np
import pytest

from gansweep.cli.evaluator import main as evaluator_cli
from gansweep.data import StackedMNIST, load_mnist
from gansweep.metrics import ACCURACY_THRESHOLD, EvaluatorUnavailable, ensure_classifier, load_evaluator
from gansweep.metrics.store import evaluator_dir

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def evaluator():
    _, meta, _ = ensure_classifier(progress=False, log=None)
    assert meta["test_accuracy"] >= ACCURACY_THRESHOLD
    ev = load_evaluator()
    ev.prepare(n_samples=1000)
    return ev


@pytest.fixture(scope="session")
def mnist_test():
    x, y = load_mnist("test")
    return x.astype(np.float32) / 255.0, y


@pytest.fixture(scope="session")
def test_set_scores(evaluator, mnist_test):
    return evaluator.evaluate(mnist_test[0])


@pytest.fixture(scope="session")
def one_digit_scores(evaluator, mnist_test):
    x, y = mnist_test
    return evaluator.evaluate(x[y == 3])


def test_classifier_reaches_threshold_on_test_set(evaluator, mnist_test):
    x, y = mnist_test
    acc = evaluator.classifier.accuracy(x, y)
    assert acc >= ACCURACY_THRESHOLD
    assert acc == pytest.approx(evaluator.metadata["test_accuracy"], abs=1e-12)


def test_mnist_test_set_scores_as_a_perfect_generator(test_set_scores, one_digit_scores):
    s = test_set_scores
    assert s["modes_covered"] == 10
    assert s["kl_to_uniform"] < 0.01
    assert s["kl_from_uniform"] < 0.01
    assert s["entropy"] == pytest.approx(math.log(10), abs=0.01)
    assert s["mnist_score"] > 9.5
    assert s["precision"] >= 0.9 and s["recall"] >= 0.9
    assert s["density"] > 0.8 and s["coverage"] >= 0.9
    assert s["nn_train_ratio"] == pytest.approx(1.0, abs=0.05)  # held-out digits: the reference itself
    # small FD: under a twentieth of a one-digit generator's FD
    assert s["fd"] < 0.05 * one_digit_scores["fd"]
    assert sum(s[f"class_share_{c}"] for c in range(10)) == pytest.approx(1.0)


def test_ndb_of_real_training_digits_is_near_alpha(evaluator, test_set_scores, one_digit_scores):
    """A random draw of training digits lands in the bins like the training set: NDB/K ≈ alpha (0.05).

    (The MNIST *test* set scores higher, ≈ 0.3 at 10k samples: its writers differ from the training
    set's, and the 100-bin z-test is powerful enough to see that shift; it still scores far below
    a one-digit generator.)
    """
    idx = np.random.default_rng(1).choice(evaluator.train_images.shape[0], 5000, replace=False)
    s = evaluator.evaluate(evaluator.train_images[idx], metrics=["ndb"])
    assert s["ndb_k"] <= 0.12
    assert test_set_scores["ndb_k"] < 0.5 < one_digit_scores["ndb_k"]


def test_one_digit_subset_is_one_mode(one_digit_scores):
    s = one_digit_scores
    assert s["modes_covered"] == 1
    assert s["class_share_3"] > 0.97
    assert s["kl_to_uniform"] == pytest.approx(math.log(10), abs=0.15)
    assert s["entropy"] < 0.15
    assert s["mnist_score"] < 1.5
    assert s["recall"] < 0.25  # nine of ten digits are missing
    assert s["precision"] > 0.9  # but every sample is a realistic digit
    assert s["coverage"] < 0.25
    assert s["ndb_k"] > 0.5


def test_three_digit_subset_is_three_modes(evaluator, mnist_test):
    x, y = mnist_test
    s = evaluator.evaluate(x[np.isin(y, [0, 4, 7])], metrics=["modes"])
    assert s["modes_covered"] == 3
    assert s["kl_to_uniform"] == pytest.approx(math.log(10 / 3), abs=0.1)
    assert set(s) == {"modes_covered", "kl_to_uniform", "kl_from_uniform", "entropy", "mnist_score"} | {
        f"class_share_{c}" for c in range(10)
    }


def test_uniform_noise_has_no_precision(evaluator):
    noise = np.random.default_rng(0).random((1000, 784), dtype=np.float32)
    s = evaluator.evaluate(noise, metrics=["prdc", "fd", "memorisation"])
    assert s["precision"] < 0.02
    assert s["density"] < 0.02
    assert s["recall"] < 0.05
    assert s["nn_train_ratio"] > 2.0


def test_copied_training_images_look_memorised(evaluator):
    copies = evaluator.train_images[5000:6000]
    s = evaluator.evaluate(copies, metrics=["memorisation"])
    assert s["nn_train_dist"] == pytest.approx(0.0, abs=1e-6)
    assert s["nn_train_ratio"] == pytest.approx(0.0, abs=1e-6)


def test_real_stacked_mnist_covers_about_1000_modes(evaluator, mnist_test):
    x, y = load_mnist("test")
    stacked = StackedMNIST(x, y, seed=0, size=20_000)
    samples, labels = stacked.get(np.arange(20_000))
    s = evaluator.evaluate_stacked(samples.astype(np.float32) / 255.0)
    assert s["stacked_modes_covered"] >= 990
    assert s["stacked_kl_to_uniform"] < 0.05
    # the labels of the stack agree with the classified modes for (nearly) every sample
    digits = evaluator.classifier.predict(samples.reshape(-1, 784).astype(np.float32) / 255.0).reshape(-1, 3)
    assert np.mean(digits @ np.array([100, 10, 1]) == labels) > 0.96
    # every channel replaced by the first one's digit (a, a, a): exactly the 10 diagonal modes
    collapsed = np.tile(samples[:, :784], (1, 3)).astype(np.float32) / 255.0
    c = evaluator.evaluate_stacked(collapsed)
    assert c["stacked_modes_covered"] == 10
    assert c["stacked_kl_to_uniform"] == pytest.approx(math.log(1000 / 10), abs=0.05)


def test_evaluate_at_eval_points_is_fast(evaluator, mnist_test):
    x = mnist_test[0][:1000]
    evaluator.evaluate(x)  # the first call at this size may build its PRDC radii
    t0 = time.perf_counter()
    evaluator.evaluate(x)
    assert time.perf_counter() - t0 < 10.0


def test_real_cache_refusals_on_copies(evaluator, tmp_path):
    """Copies of the real classifier in tmp dirs: tampered weights and a lowered accuracy are refused."""
    src = evaluator_dir()
    for bad in ("weights", "accuracy"):
        dst = evaluator_dir(tmp_path / bad)
        dst.mkdir(parents=True)
        for name in ("classifier.npz", "classifier.json"):
            shutil.copy2(src / name, dst / name)
        assert load_evaluator(tmp_path / bad).checksum == evaluator.checksum
        if bad == "weights":
            params = dict(np.load(dst / "classifier.npz"))
            params["W2"] = params["W2"] * np.float32(1.001)
            np.savez(dst / "classifier.npz", **params)
            with pytest.raises(EvaluatorUnavailable, match="checksum mismatch"):
                load_evaluator(tmp_path / bad)
        else:
            text = (dst / "classifier.json").read_text()
            acc = evaluator.metadata["test_accuracy"]
            (dst / "classifier.json").write_text(text.replace(repr(acc), "0.97"))
            with pytest.raises(EvaluatorUnavailable, match=r"below the 98\.50% threshold"):
                load_evaluator(tmp_path / bad)
    # the real cache is untouched
    assert load_evaluator().checksum == evaluator.checksum


def test_cli_train_is_idempotent_and_info_verifies(evaluator, capsys):
    weights = evaluator_dir() / "classifier.npz"
    before = weights.stat().st_mtime_ns
    assert evaluator_cli(["train", "--no-references"]) == 0
    assert "already cached" in capsys.readouterr().out
    assert weights.stat().st_mtime_ns == before
    assert evaluator_cli(["info"]) == 0
    out = capsys.readouterr().out
    assert evaluator.checksum in out and "re-measured test accuracy" in out


def test_cli_reports_a_missing_classifier(tmp_path, capsys):
    assert evaluator_cli(["--cache-dir", str(tmp_path), "info"]) == 1
    assert "gansweep-evaluator train" in capsys.readouterr().out
    assert evaluator_cli(["--cache-dir", str(tmp_path), "bench", "--sizes", "100"]) == 1
    assert "gansweep-evaluator train --cache-dir" in capsys.readouterr().err
