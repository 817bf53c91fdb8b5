"""Hand-computed cases for the metric building blocks (no MNIST, no trained classifier needed)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gansweep.metrics.classifier import DigitClassifier, check_images, init_params, params_checksum
from gansweep.metrics.distances import kth_neighbour_radii, nearest_distances, sq_dist_blocks
from gansweep.metrics.evaluator import METRIC_GROUPS, Evaluator, load_evaluator, resolve_groups
from gansweep.metrics.frechet import frechet_distance, frechet_distance_from_features, sqrtm_psd
from gansweep.metrics.kmeans import kmeans
from gansweep.metrics.memorisation import memorisation_figures
from gansweep.metrics.mode_collapse import (
    class_shares,
    entropy,
    kl_from_uniform,
    kl_to_uniform,
    mnist_score,
    mode_figures,
    modes_covered,
)
from gansweep.metrics.ndb import ndb, two_proportion_z
from gansweep.metrics.prdc import prdc
from gansweep.metrics.stacked import stacked_figures, stacked_modes
from gansweep.metrics.store import (
    ACCURACY_THRESHOLD,
    EvaluatorUnavailable,
    evaluator_dir,
    load_classifier,
    save_classifier,
)
from gansweep.metrics.training import TrainConfig, random_shift, train_classifier


def _rot(theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s], [s, c]])


# -- Fréchet distance ---------------------------------------------------------------------------------
def test_fd_diagonal_gaussians_closed_form():
    # FD = |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2 for diagonal covariances
    mu1, mu2 = np.array([0.0, 0.0]), np.array([3.0, 4.0])
    s1, s2 = np.diag([1.0, 4.0]), np.diag([4.0, 9.0])
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(25.0 + 1.0 + 1.0, abs=1e-10)


def test_fd_is_rotation_invariant_for_non_commuting_covariances():
    # rotate only the second Gaussian: covariances no longer commute; hand value via the 2x2 formula
    # tr sqrt(S1 S2) for 2x2 PSD M = S1^{1/2} S2 S1^{1/2}: sqrt(tr M + 2 sqrt(det M))
    s1 = np.diag([1.0, 4.0])
    r = _rot(0.7)
    s2 = r @ np.diag([9.0, 1.0]) @ r.T
    a = np.diag([1.0, 2.0])
    m = a @ s2 @ a
    tr_sqrt = math.sqrt(np.trace(m) + 2.0 * math.sqrt(np.linalg.det(m)))
    expected = 1.0 + (5.0 + 10.0 - 2.0 * tr_sqrt)
    assert frechet_distance(np.zeros(2), s1, np.array([1.0, 0.0]), s2) == pytest.approx(expected, abs=1e-10)
    # a common rotation of both Gaussians leaves FD unchanged
    q = _rot(-1.3)
    rotated = frechet_distance(np.zeros(2), q @ s1 @ q.T, q @ np.array([1.0, 0.0]), q @ s2 @ q.T)
    assert rotated == pytest.approx(expected, abs=1e-10)


def test_fd_from_samples_of_2d_gaussians_matches_closed_form():
    rng = np.random.default_rng(0)
    x = rng.multivariate_normal([0.0, 0.0], np.diag([1.0, 4.0]), size=200_000)
    y = rng.multivariate_normal([1.0, 1.0], np.diag([4.0, 1.0]), size=200_000)
    # 2 + (1 - 2)^2 + (2 - 1)^2 = 4
    assert frechet_distance_from_features(x, y) == pytest.approx(4.0, abs=0.05)
    assert frechet_distance_from_features(x, x) == pytest.approx(0.0, abs=1e-8)


def test_sqrtm_psd_squares_back():
    rng = np.random.default_rng(1)
    b = rng.standard_normal((6, 6))
    s = b @ b.T
    r = sqrtm_psd(s)
    np.testing.assert_allclose(r @ r, s, atol=1e-9)
    np.testing.assert_allclose(r, r.T, atol=1e-12)


def test_fd_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


# -- distances ----------------------------------------------------------------------------------------
def test_chunked_distances_match_brute_force(monkeypatch):
    import gansweep.metrics.distances as dist

    monkeypatch.setattr(dist, "BLOCK_BYTES", 8 * 7 * 3)  # 3 rows of 7 float64 per block
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((10, 4)), rng.standard_normal((7, 4))
    brute = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    blocks = list(sq_dist_blocks(a, b))
    assert len(blocks) == 4
    np.testing.assert_allclose(np.concatenate([d for _, d in blocks]), brute, atol=1e-10)
    d, idx = nearest_distances(a, b)
    np.testing.assert_allclose(d, np.sqrt(brute.min(1)), atol=1e-10)
    np.testing.assert_array_equal(idx, brute.argmin(1))


def test_kth_neighbour_radii_excludes_self():
    x = np.array([[0.0], [1.0], [3.0], [7.0]])
    np.testing.assert_allclose(kth_neighbour_radii(x, 1), [1.0, 1.0, 2.0, 4.0])
    np.testing.assert_allclose(kth_neighbour_radii(x, 2), [3.0, 2.0, 3.0, 6.0])
    with pytest.raises(ValueError, match="k must lie"):
        kth_neighbour_radii(x, 4)


# -- precision / recall / density / coverage ----------------------------------------------------------
def test_prdc_hand_computed_1d():
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    fake = np.array([[0.5], [10.0]])
    # k = 1: real radii all 1; fake radii both 9.5
    # precision: 0.5 lies in the balls of 0 and 1; 10 in none -> 1/2
    # recall: every real lies within 9.5 of fake 0.5 -> 1
    # density: fake 0.5 sits in 2 real balls, fake 10 in 0 -> 2 / (k * M) = 2 / 2 = 1
    # coverage: nearest fake of 0, 1 (0.5 away) within radius 1; of 2, 3 (1.5, 2.5 away) not -> 1/2
    out = prdc(real, fake, k=1)
    assert out == {"precision": 0.5, "recall": 1.0, "density": 1.0, "coverage": 0.5}


def test_prdc_disjoint_and_identical_sets():
    rng = np.random.default_rng(3)
    real = rng.standard_normal((300, 3))
    assert prdc(real, real + 100.0, k=3) == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    same = prdc(real, real.copy(), k=3)
    assert same["precision"] == 1.0 and same["recall"] == 1.0 and same["coverage"] == 1.0


def test_prdc_validates_k_and_radii():
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="k must lie"):
        prdc(x, x, k=5)
    with pytest.raises(ValueError, match="real_radii"):
        prdc(x, x, k=1, real_radii=np.ones(3))


# -- NDB ----------------------------------------------------------------------------------------------
def test_two_proportion_z_hand_computed():
    # 70 of 100 samples vs 500 of 1000 reference points in a bin: pooled p = 570/1100
    p = 570 / 1100
    expected = (0.7 - 0.5) / math.sqrt(p * (1 - p) * (1 / 100 + 1 / 1000))
    z = two_proportion_z(np.array([0.7, 0.3]), 100, np.array([0.5, 0.5]), 1000)
    assert z[0] == pytest.approx(expected, rel=1e-12)
    assert z[0] == pytest.approx(3.8164, abs=1e-3)
    assert z[1] == pytest.approx(-expected, rel=1e-12)


def test_ndb_counts_significant_bins():
    ref = np.array([0.5, 0.5])
    # 70/30 split: |z| = 3.82 > 1.96 in both bins
    count, _ = ndb(np.array([0] * 70 + [1] * 30), ref, 1000)
    assert count == 2
    # 60/40 split: |z| = 1.907 < 1.96 -> not significant at alpha = 0.05, significant at 0.1
    count, z = ndb(np.array([0] * 60 + [1] * 40), ref, 1000)
    assert count == 0 and abs(z[0]) == pytest.approx(1.907, abs=1e-3)
    assert ndb(np.array([0] * 60 + [1] * 40), ref, 1000, alpha=0.1)[0] == 2
    # a bin empty in both samples is never different
    assert ndb(np.array([0] * 50 + [1] * 50), np.array([0.5, 0.5, 0.0]), 1000)[0] == 0


def test_kmeans_recovers_separated_blobs():
    rng = np.random.default_rng(4)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = np.concatenate([c + 0.3 * rng.standard_normal((200, 2)) for c in centres])
    found, labels = kmeans(x, 3, rng=np.random.default_rng(0))
    order = np.argsort(found[:, 0] * 100 + found[:, 1])
    np.testing.assert_allclose(found[order], centres[[0, 2, 1]], atol=0.1)
    assert sorted(np.bincount(labels).tolist()) == [200, 200, 200]
    again, _ = kmeans(x, 3, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(found, again)


# -- mode collapse ------------------------------------------------------------------------------------
def test_mode_figures_hand_computed():
    shares = class_shares(np.array([0, 0, 1, 3]), 4)
    np.testing.assert_allclose(shares, [0.5, 0.25, 0.0, 0.25])
    assert modes_covered(shares, 0.25) == 3 and modes_covered(shares, 0.3) == 1
    assert kl_to_uniform(shares) == pytest.approx(0.5 * math.log(2) + 2 * 0.25 * math.log(1.0))
    assert entropy(shares) == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)))
    assert kl_to_uniform(np.full(10, 0.1)) == pytest.approx(0.0, abs=1e-15)
    assert kl_to_uniform(np.eye(10)[3]) == pytest.approx(math.log(10))
    # reverse KL with add-1/2 smoothing: counts (2, 1, 0, 1) over n = 4 -> (2.5, 1.5, 0.5, 1.5) / 6
    smoothed = np.array([2.5, 1.5, 0.5, 1.5]) / 6
    assert kl_from_uniform(shares, 4) == pytest.approx(np.mean(np.log(0.25 / smoothed)))


def test_mnist_score_bounds():
    confident = np.eye(10)[np.arange(1000) % 10]
    assert mnist_score(confident) == pytest.approx(10.0, rel=1e-6)
    assert mnist_score(np.tile(np.eye(10)[4], (50, 1))) == pytest.approx(1.0, rel=1e-6)
    assert mnist_score(np.full((20, 10), 0.1)) == pytest.approx(1.0)
    figs = mode_figures(confident, min_share=0.05)
    assert figs["modes_covered"] == 10 and figs["class_share_9"] == pytest.approx(0.1)


# -- stacked ------------------------------------------------------------------------------------------
def test_stacked_modes_and_figures():
    digits = np.array([[1, 2, 3], [9, 9, 9], [0, 0, 7], [1, 2, 3]])
    modes = stacked_modes(digits)
    np.testing.assert_array_equal(modes, [123, 999, 7, 123])
    figs = stacked_figures(modes)
    assert figs["stacked_modes_covered"] == 3
    # shares 0.5, 0.25, 0.25 over 1000 modes: KL = sum p log(1000 p)
    expected = 0.5 * math.log(500) + 2 * 0.25 * math.log(250)
    assert figs["stacked_kl_to_uniform"] == pytest.approx(expected)
    assert stacked_figures(modes, min_count=2)["stacked_modes_covered"] == 1
    full = stacked_figures(np.arange(1000))
    assert full["stacked_modes_covered"] == 1000 and full["stacked_kl_to_uniform"] == pytest.approx(0.0)


# -- memorisation -------------------------------------------------------------------------------------
def test_memorisation_hand_computed():
    train = np.zeros((3, 784), dtype=np.float32)
    train[1, 0] = 1.0
    train[2, :4] = 1.0
    samples = np.zeros((2, 784), dtype=np.float32)
    samples[0, :4] = 1.0  # copy of train[2]: distance 0
    samples[1, 0:2] = 1.0  # distance 1 to train[1]
    figs = memorisation_figures(samples, train, held_out_mean=2.0)
    assert figs == {"nn_train_dist": pytest.approx(0.5), "nn_train_ratio": pytest.approx(0.25)}


# -- classifier, training, validation -----------------------------------------------------------------
def test_check_images_refuses_bad_input():
    with pytest.raises(ValueError, match="shape"):
        check_images(np.zeros((3, 10)))
    with pytest.raises(ValueError, match="non-finite"):
        check_images(np.full((2, 784), np.nan))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        check_images(np.full((2, 784), -1.0))
    with pytest.raises(ValueError, match="dtype"):
        check_images(np.zeros((2, 784), dtype=np.uint8))


def test_random_shift_moves_pixels_within_range():
    img = np.zeros((1, 784), dtype=np.float32)
    img[0, 14 * 28 + 14] = 1.0
    rng = np.random.default_rng(5)
    seen = set()
    for _ in range(200):
        out = random_shift(img, 2, rng).reshape(28, 28)
        (r,), (c,) = np.nonzero(out)
        assert out.sum() == 1.0
        seen.add((int(r) - 14, int(c) - 14))
    assert seen == {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)}
    np.testing.assert_array_equal(random_shift(img, 0, rng), img)


def _toy_data(n: int = 400, seed: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, size=n)
    x = np.zeros((n, 784), dtype=np.float32)
    for c in range(10):
        x[y == c, 100 + 50 * c : 120 + 50 * c] = 1.0  # a bright 20-pixel stroke per class
    return np.clip(x + 0.05 * rng.random((n, 784), dtype=np.float32), 0, 1), y


def test_training_is_deterministic_and_learns():
    x, y = _toy_data()
    cfg = TrainConfig(hidden=(32, 16), epochs=10, batch_size=32, lr=3e-3, max_shift=0, seed=11)
    a, rec = train_classifier(x, y, config=cfg, progress=False)
    b, _ = train_classifier(x, y, config=cfg, progress=False)
    assert a.checksum == b.checksum
    assert a.accuracy(x, y) > 0.95
    assert rec["history"][-1]["loss"] < rec["history"][0]["loss"]
    c, _ = train_classifier(x, y, config=TrainConfig(**{**cfg.__dict__, "seed": 12}), progress=False)
    assert c.checksum != a.checksum
    assert a.features(x).shape == (400, 16)


def test_params_checksum_sees_every_byte():
    params = init_params((8,), rng=np.random.default_rng(0))
    before = params_checksum(params)
    params["b1"][3] = np.float32(1e-30)
    assert params_checksum(params) != before


# -- the cached classifier: refusal paths (tmp dirs only) ---------------------------------------------
def _save_toy(tmp_path, accuracy: float) -> DigitClassifier:
    clf = DigitClassifier(init_params((16, 8), rng=np.random.default_rng(0)))
    save_classifier(clf, {"test_accuracy": accuracy}, tmp_path)
    return clf


def test_refuses_missing_classifier(tmp_path):
    with pytest.raises(EvaluatorUnavailable, match="gansweep-evaluator train"):
        load_classifier(tmp_path)
    with pytest.raises(EvaluatorUnavailable, match="no evaluator classifier"):
        load_evaluator(tmp_path)


def test_refuses_checksum_mismatch(tmp_path):
    clf = _save_toy(tmp_path, 0.99)
    assert load_classifier(tmp_path)[0].checksum == clf.checksum  # valid as written
    tampered = dict(clf.params)
    tampered["W0"] = tampered["W0"].copy()
    tampered["W0"][0, 0] += 1.0
    np.savez(evaluator_dir(tmp_path) / "classifier.npz", **tampered)
    with pytest.raises(EvaluatorUnavailable, match=r"checksum mismatch.*gansweep-evaluator train --force"):
        load_evaluator(tmp_path)


def test_refuses_below_threshold(tmp_path):
    _save_toy(tmp_path, ACCURACY_THRESHOLD - 0.001)
    with pytest.raises(EvaluatorUnavailable, match=r"below the 98\.50% threshold.*gansweep-evaluator train"):
        load_evaluator(tmp_path)
    # metadata that lost its checksum field is refused as unreadable
    meta_path = evaluator_dir(tmp_path) / "classifier.json"
    meta = json.loads(meta_path.read_text())
    del meta["checksum"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(EvaluatorUnavailable, match="unreadable evaluator metadata"):
        load_classifier(tmp_path)


def test_evaluator_with_injected_data_and_groups(tmp_path):
    """The evaluator runs end to end on synthetic data (toy classifier) and honours ``metrics=``."""
    x, y = _toy_data(300)
    clf, _ = train_classifier(x, y, config=TrainConfig(hidden=(16,), epochs=1, max_shift=0), progress=False)
    held_out = _toy_data(50, seed=7)[0]
    ev = Evaluator(
        clf, cache_dir=tmp_path, disk_cache=False, ndb_bins=5, train_images=x, test_images=held_out
    )
    out = ev.evaluate(x[:100], n_reference=200, k=3, metrics=["fd", "precision"])
    assert set(out) == {"fd", "precision", "recall", "density", "coverage"}
    full = ev.evaluate(x[:100], n_reference=200, k=3)
    assert set(full) == {f for figs in METRIC_GROUPS.values() for f in figs}
    assert full["nn_train_dist"] == 0.0 and full["nn_train_ratio"] == 0.0  # the samples are training images
    assert 0.0 <= full["precision"] <= 1.0 and full["modes_covered"] >= 1
    assert not evaluator_dir(tmp_path).exists()  # disk_cache=False writes nothing
    with pytest.raises(ValueError, match="unknown metric 'fid'"):
        ev.evaluate(x[:100], metrics=["fid"])
    with pytest.raises(ValueError, match="mode_share"):
        ev.evaluate(x[:100], mode_share=1.5)
    assert resolve_groups(["coverage", "modes"]) == ["modes", "prdc"]
