"""Issue 25's measurements, each logged without changing the run: D's mean logits (d_real_logit,
d_fake_logit), D's output on 0-255 reals rescaled to [0, 1] (d_real_unit), and train.imprint_steps (the
correlation of the final fixed-noise samples with those of earlier iterations). Each leaves every other
metric, the parameters and the random streams bit-identical, and resumes bit for bit."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from hydra import compose
from omegaconf import OmegaConf
from test_gan import make_gan

from gansweep.images import to_unit
from gansweep.metrics.diversity import contrast_stretch
from gansweep.metrics.imprint import mean_correlation, row_correlations
from gansweep.run import contract
from gansweep.run.build import build
from gansweep.run.checkpoint import load_checkpoint
from gansweep.run.config import ConfigError, config_hash, real_scale, run_params, validate
from gansweep.run.logger import NullLogger
from gansweep.run.loop import train, train_step

pytestmark = pytest.mark.usefixtures("hydra_conf")

TINY = [
    "tracking=off",
    "eval=off",
    "data.subset=600",
    "train.iterations=24",
    "train.log_every=4",
    "train.sample_every=8",
    "train.checkpoint_every=8",
    "train.fresh_grid_every=null",
    "train.grid_size=9",
]
POST = ["post=failed1", "recipe=post", "model.generator.hidden=[16,24]", *TINY]  # reals in 0-255, batch 1
TF = ["post=tf_reference", "train.batch_size=16", *TINY]  # reals in [0, 1]
IMPRINT = [0, 1, 5, 9, 24]


def resolved(overrides: list[str]) -> dict:
    cfg = OmegaConf.to_container(compose("config", overrides=overrides), resolve=True)
    validate(cfg)
    return cfg


class Recorder(NullLogger):
    """Keeps every metric the loop logs, by step."""

    def __init__(self) -> None:
        self.metrics: dict[int, dict[str, float]] = {}

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self.metrics.setdefault(step, {}).update(metrics)


TIMING = ("img_per_s",)


def _logged(rec: Recorder, drop: tuple[str, ...] = ()) -> dict[int, dict[str, float]]:
    return {
        step: {k: v for k, v in m.items() if k not in TIMING and not k.startswith(drop or "\0")}
        for step, m in rec.metrics.items()
    }


def _state(path: Path) -> dict[str, np.ndarray]:
    kept = ("param/", "opt_", "rng/", "sampler/", "frames")
    return {k: v for k, v in load_checkpoint(path).items() if k.startswith(kept)}


# ------------------------------------------------------------------------------------------ D's logits
def test_the_d_step_reports_d_s_mean_logits_before_its_update() -> None:
    gan = make_gan(3)
    rng = np.random.default_rng(1)
    real, z = rng.uniform(0, 1, (4, 7)), gan.sample_z(4, rng)
    real_logits, fake_logits = gan.D.predict(real), gan.D.predict(gan.G.predict(z))
    stats = gan.d_step(real, z, lr=1e-2)
    assert stats["d_real_logit"] == pytest.approx(float(np.mean(real_logits)), rel=1e-12)
    assert stats["d_fake_logit"] == pytest.approx(float(np.mean(fake_logits)), rel=1e-12)
    assert (contract.D_LOGITS, contract.D_REAL_UNIT) == (("d_real_logit", "d_fake_logit"), "d_real_unit")


def test_d_output_is_a_pure_probe() -> None:
    gan = make_gan(4)
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (3, 7))
    before = gan.D.flat_params.copy(), gan.D.flat_grads.copy()
    value = gan.d_output(x)
    assert value == pytest.approx(float(np.mean(1 / (1 + np.exp(-gan.D.predict(x))))), rel=1e-12)
    np.testing.assert_array_equal(gan.D.flat_params, before[0])
    np.testing.assert_array_equal(gan.D.flat_grads, before[1])


def test_the_unit_probe_changes_no_statistic_parameter_or_stream() -> None:
    cfg = resolved(POST)
    scale = real_scale(cfg)
    assert scale == "raw255"
    plain, probed = build(cfg), build(cfg)
    for it in range(12):
        _, a = train_step(plain, scale, 1, it)
        _, b = train_step(probed, scale, 1, it, unit_probe=True)
        assert set(b) - set(a) == {contract.D_REAL_UNIT} and 0 <= b[contract.D_REAL_UNIT] <= 1
        assert a == {k: v for k, v in b.items() if k != contract.D_REAL_UNIT}
    np.testing.assert_array_equal(plain.gan.G.flat_params, probed.gan.G.flat_params)
    np.testing.assert_array_equal(plain.gan.D.flat_params, probed.gan.D.flat_params)
    for name in ("noise", "data"):
        assert plain.rngs[name].bit_generator.state == probed.rngs[name].bit_generator.state


def test_d_real_unit_is_d_on_the_real_batch_divided_by_255() -> None:
    cfg = resolved(POST)
    setup, twin = build(cfg), build(cfg)
    # the twin draws the same real batch; D before the step is the same in both
    real = twin.reals[twin.sampler.next_indices()]
    want = twin.gan.d_output(real / 255.0)
    _, stats = train_step(setup, "raw255", 1, 0, unit_probe=True)
    assert stats[contract.D_REAL_UNIT] == pytest.approx(want, rel=1e-12)


def test_a_run_logs_the_logits_at_every_log_line_and_d_real_unit_only_with_0_255_reals(
    tmp_path: Path,
) -> None:
    for overrides, unit in ((POST, True), (TF, False)):
        rec = Recorder()
        result = train(resolved(overrides), logger=rec, workdir=tmp_path / str(unit))
        assert result.status == "FINISHED"
        logged = [m for m in rec.metrics.values() if "loss_d" in m]
        assert len(logged) == 24 // 4
        for m in logged:
            assert {*contract.D_LOGITS} <= m.keys() and (contract.D_REAL_UNIT in m) == unit
            if unit:
                assert 0 <= m[contract.D_REAL_UNIT] <= 1
        assert all(np.isfinite(m["d_real_logit"]) for m in logged)


def test_the_new_curves_leave_every_old_metric_as_it_was(tmp_path: Path) -> None:
    """A run's old curves are window means of the same per-step values: recomputed by hand from train_step
    (the loop's own statistics), they match what the loop logs."""
    cfg = resolved(POST)
    rec = Recorder()
    train(cfg, logger=rec, workdir=tmp_path)
    setup = build(cfg)
    steps = [train_step(setup, "raw255", 1, it, unit_probe=True)[1] for it in range(24)]
    for end in range(4, 25, 4):
        window = steps[end - 4 : end]
        for key in (
            *contract.TRAINING_CURVES,
            *contract.GRAD_NORMS,
            *contract.D_LOGITS,
            contract.D_REAL_UNIT,
        ):
            assert rec.metrics[end][key] == sum(s[key] for s in window) / 4, (end, key)


def test_a_checkpoint_without_the_new_window_sums_resumes_without_a_wrong_mean(tmp_path: Path) -> None:
    """A run checkpointed before d_real_logit existed: the first log line after the resume leaves the new
    curves out (their window is partial); every later line has them, as an uninterrupted run."""
    cfg = resolved(POST)
    full = Recorder()
    train(cfg, logger=full, workdir=tmp_path / "full")
    calls = iter(range(1000))
    stopped = train(cfg, logger=Recorder(), workdir=tmp_path / "part", should_stop=lambda: next(calls) == 10)
    state = {
        k: v
        for k, v in load_checkpoint(stopped.checkpoint).items()
        if k not in {f"window/{c}" for c in (*contract.D_LOGITS, contract.D_REAL_UNIT)}
    }
    rec = Recorder()
    train(cfg, logger=rec, workdir=tmp_path / "part", resume_state=state)
    new = {*contract.D_LOGITS, contract.D_REAL_UNIT}
    assert not new & rec.metrics[12].keys() and "loss_d" in rec.metrics[12]
    assert rec.metrics[12]["loss_d"] == full.metrics[12]["loss_d"]
    for step in (16, 20, 24):
        assert {k: rec.metrics[step][k] for k in new} == {k: full.metrics[step][k] for k in new}


# --------------------------------------------------------------------------------------- imprint steps
def test_row_correlations_are_pearson_per_row() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random((5, 30)), rng.random((5, 30))
    b[1] = 3 * a[1] + 2  # an affine copy: correlation 1
    b[2] = -a[2]
    want = [np.corrcoef(a[i], b[i])[0, 1] for i in range(5)]
    r = row_correlations(a, b)
    np.testing.assert_allclose(r, want, rtol=1e-12)
    assert r[1] == pytest.approx(1.0) and r[2] == pytest.approx(-1.0)
    a[3] = 0.5  # a flat sample has no correlation and is left out of the mean
    r = row_correlations(a, b)
    assert np.isnan(r[3]) and mean_correlation(a, b) == pytest.approx(np.nanmean(r))
    assert np.isnan(mean_correlation(np.zeros((2, 4)), b[:2, :4]))
    with pytest.raises(ValueError, match="one shape"):
        row_correlations(a, b[:, :5])


def test_imprint_correlations_are_in_range_and_equal_a_direct_recomputation(tmp_path: Path) -> None:
    cfg = resolved([*POST, f"train.imprint_steps={IMPRINT}"])
    rec = Recorder()
    result = train(cfg, logger=rec, workdir=tmp_path)
    got = {k: v for k, v in rec.metrics[24].items() if k.startswith(contract.IMPRINT_PREFIX)}
    assert sorted(got) == sorted(contract.imprint_key(s) for s in IMPRINT)
    assert all(-1 <= v <= 1 for v in got.values()) and got["imprint/corr_24"] == pytest.approx(1.0)
    assert {k: result.final[k] for k in got} == got
    # by hand: the same training, G's fixed-noise samples after 0, 1, 5, 9 and 24 iterations
    setup = build(cfg)
    samples = {}

    def keep(step: int) -> None:
        if step in IMPRINT:
            samples[step] = to_unit(setup.gan.generate(setup.fixed_z), "sigmoid")

    keep(0)
    for it in range(24):
        train_step(setup, "raw255", 1, it)
        keep(it + 1)
    final = contrast_stretch(samples[24])
    for step in IMPRINT:
        earlier = contrast_stretch(samples[step])
        rows = [np.corrcoef(final[i], earlier[i])[0, 1] for i in range(len(final)) if np.ptp(earlier[i]) > 0]
        assert got[contract.imprint_key(step)] == pytest.approx(np.mean(rows), rel=1e-9, abs=1e-12), step


def test_imprint_steps_change_nothing_else_and_resume_bit_for_bit(tmp_path: Path) -> None:
    plain_cfg = resolved(POST)
    cfg = resolved([*POST, f"train.imprint_steps={IMPRINT}"])
    plain, full = Recorder(), Recorder()
    a = train(plain_cfg, logger=plain, workdir=tmp_path / "plain")
    b = train(cfg, logger=full, workdir=tmp_path / "full")
    assert _logged(plain) == _logged(full, drop=(contract.IMPRINT_PREFIX,))
    sa, sb = _state(a.checkpoint), _state(b.checkpoint)
    assert sa.keys() == sb.keys()
    for key in sa:
        np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)
    # stopped after 7 iterations (0, 1 and 5 recorded; 9 and 24 not yet), resumed from the checkpoint
    calls = iter(range(1000))
    stopped = train(cfg, logger=Recorder(), workdir=tmp_path / "part", should_stop=lambda: next(calls) == 7)
    assert stopped.status == "KILLED" and stopped.iteration == 7
    saved = load_checkpoint(stopped.checkpoint)
    assert sorted(k for k in saved if k.startswith("imprint/")) == ["imprint/0", "imprint/1", "imprint/5"]
    rec = Recorder()
    resumed = train(cfg, logger=rec, workdir=tmp_path / "part", resume_state=saved)
    assert resumed.status == "FINISHED"
    imprint = {k: v for k, v in full.metrics[24].items() if k.startswith(contract.IMPRINT_PREFIX)}
    assert {k: rec.metrics[24][k] for k in imprint} == imprint  # identical, not just close
    sc = _state(resumed.checkpoint)
    for key in sb:
        np.testing.assert_array_equal(sb[key], sc[key], err_msg=key)


def test_imprint_steps_off_keep_the_config_hash_and_on_change_it() -> None:
    cfg = resolved(POST)
    assert cfg["train"]["imprint_steps"] is None
    bare = {**cfg, "train": {k: v for k, v in cfg["train"].items() if k != "imprint_steps"}}
    assert config_hash(cfg) == config_hash(bare)
    on = resolved([*POST, "train.imprint_steps=[1,5]"])
    assert config_hash(on) != config_hash(cfg)
    assert dict(run_params(on))["train.imprint_steps"] == [1, 5]


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("[]", "train.imprint_steps"),
        ("[1,1]", "train.imprint_steps"),
        ("[1,-1]", "train.imprint_steps[1]"),
        ("[1,25]", "train.imprint_steps[1]"),
    ],
)
def test_bad_imprint_steps_are_refused_naming_the_key(value: str, key: str) -> None:
    cfg = OmegaConf.to_container(
        compose("config", overrides=[*POST, f"train.imprint_steps={value}"]), resolve=True
    )
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert str(err.value).startswith(f"{key}=") and "train.iterations=24" in str(err.value)


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("5", "train.imprint_steps"),
        ("[1.5]", "train.imprint_steps[0]"),
        ("[true]", "train.imprint_steps[0]"),
        ("[x]", "train.imprint_steps[0]"),
    ],
)
def test_imprint_steps_of_the_wrong_type_are_refused_by_hydra_naming_the_key(value: str, key: str) -> None:
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException) as err:
        compose("config", overrides=[*POST, f"train.imprint_steps={value}"])
    assert f"full_key: {key}" in str(err.value.__cause__)


def test_a_search_may_score_the_new_figures() -> None:
    from gansweep.search.space import final_metric_keys

    post = final_metric_keys(resolved([*POST, "train.imprint_steps=[1,5]"]))
    assert {*contract.D_LOGITS, contract.D_REAL_UNIT, "imprint/corr_1", "imprint/corr_5"} <= post
    tf = final_metric_keys(resolved(TF))
    assert {*contract.D_LOGITS} <= tf and contract.D_REAL_UNIT not in tf
