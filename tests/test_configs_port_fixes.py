"""The port_fixes study (issue 25): a list of ablations (ablation=[init,scale]) applies each listed fix; the
study's 16 cells are the 2^(5-1) resolution-V half fraction I = -ABCDE of the five fixes; Hydra's sweeper (and
the launching process's plan) expands the list-valued sweep into 80 jobs; each cell has its own config label,
ablation tag and short label, the same across its seeds."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from hydra import compose
from omegaconf import OmegaConf

from gansweep.run import contract
from gansweep.run.config import flatten, real_scale, validate

pytestmark = pytest.mark.usefixtures("hydra_conf")

FIXES = ("scale", "init", "batch", "adam_hparams", "bias_correction")  # A..E of the study's header
BASE = ["post=failed1", "recipe=post"]


def resolved(overrides: list[str]) -> dict:
    return OmegaConf.to_container(compose("config", overrides=overrides), resolve=True)


def changes(overrides: list[str]) -> dict[str, object]:
    """The dotted keys (and new values) ``overrides`` change from failed run 1 under the post recipe."""
    base = dict(flatten(resolved(BASE)))
    new = dict(flatten(resolved([*BASE, *overrides])))
    assert new.keys() == base.keys()
    return {k: v for k, v in new.items() if v != base[k]}


def study_cells() -> list[str]:
    params = OmegaConf.load(ROOT / "experiments" / "port_fixes.yaml").hydra.sweeper.params
    from hydra.core.override_parser.overrides_parser import OverridesParser

    (override,) = OverridesParser.create().parse_overrides([f"ablation={params.ablation}"])
    return [str(v) if isinstance(v, str) else f"[{','.join(v)}]" for v in override.sweep_iterator()]


def fixes_of(cell: str) -> set[str]:
    return set(cell.strip("[]").split(",")) - {"none"}


def test_a_list_of_ablations_applies_each_fix_as_alone() -> None:
    alone = {fix: changes([f"ablation={fix}"]) for fix in FIXES}
    for fix, changed in alone.items():
        assert changed, fix
    assert alone["init"] == {"model.init": "he_normal", "model.init_gain": 1.0}
    assert alone["scale"] == {"data.scale": "auto"}
    both = changes(["ablation=[init,scale]"])
    assert both == {**alone["init"], **alone["scale"]}
    assert real_scale(resolved([*BASE, "ablation=[init,scale]"])) == "unit"
    every = changes([f"ablation=[{','.join(FIXES)}]"])
    assert every == {k: v for fix in FIXES for k, v in alone[fix].items()}
    assert every == {
        "data.scale": "auto",
        "model.init": "he_normal",
        "model.init_gain": 1.0,
        "train.batch_size": 64,
        "optimizer.lr": 2e-4,
        "optimizer.beta1": 0.5,
        "optimizer.bias_correction": "standard",
    }
    # the order of a list does not change the config, and a list of one is the option itself
    assert resolved([*BASE, "ablation=[scale,init]"]) == resolved([*BASE, "ablation=[init,scale]"])
    assert resolved([*BASE, "ablation=[batch]"]) == resolved([*BASE, "ablation=batch"])
    assert changes(["ablation=none"]) == {}


def test_the_cells_are_the_resolution_v_half_fraction_with_an_even_number_of_fixes() -> None:
    cells = study_cells()
    assert len(cells) == len(set(cells)) == 16
    sets = [fixes_of(c) for c in cells]
    assert all(s <= set(FIXES) for s in sets)
    assert {frozenset(s) for s in sets} == {
        frozenset(c) for k in (0, 2, 4) for c in itertools.combinations(FIXES, k)
    }
    for cell in cells:  # one spelling per cell: the fixes in alphabetical order
        assert cell == "none" or cell == f"[{','.join(sorted(fixes_of(cell)))}]", cell
    x = np.array([[1 if f in s else -1 for f in FIXES] for s in sets])  # coded: +1 with the fix applied
    assert (x.prod(axis=1) == -1).all()  # I = -ABCDE
    columns = [np.ones(16, int), *x.T, *(x[:, i] * x[:, j] for i, j in itertools.combinations(range(5), 2))]
    model = np.column_stack(columns)  # intercept, 5 main effects, 10 two-way interactions
    np.testing.assert_array_equal(model.T @ model, 16 * np.eye(16, dtype=int))  # all estimable, orthogonal


def test_the_sweep_expands_to_80_jobs_as_the_launching_process_plans_them() -> None:
    from gansweep.runner.jobs import plan_jobs

    cfg = compose("config", overrides=["experiment=port_fixes"], return_hydra_config=True)
    jobs = plan_jobs(cfg)
    assert jobs is not None and len(jobs) == 80
    cells = study_cells()
    assert sorted({o for job in jobs for o in job if o.startswith("ablation=")}) == sorted(
        f"ablation={c}" for c in cells
    )
    for job in jobs[:: 5 * 3]:  # a sample of cells (tests/test_configs.py composes every job)
        cfg = resolved(["experiment=port_fixes", *job])
        validate(cfg)
        assert cfg["study"] == "port_fixes" and cfg["train"]["iterations"] == 6000
        cell = next(o for o in job if o.startswith("ablation=")).split("=", 1)[1]
        assert changes([o for o in job if o.startswith("ablation=")]).keys() == {
            k for fix in fixes_of(cell) for k in changes([f"ablation={fix}"])
        }


def test_each_cell_has_its_own_label_and_ablation_tag_the_same_across_seeds() -> None:
    from analysis.labels import relabel
    from gansweep.runner import runs
    from gansweep.runner.jobs import plan_jobs

    cfg = compose("config", overrides=["experiment=port_fixes"], return_hydra_config=True)
    jobs = plan_jobs(cfg)
    rows = []
    for job in jobs:
        overrides = ["experiment=port_fixes", *job]
        hc = compose("config", overrides=overrides, return_hydra_config=True).hydra
        choices = OmegaConf.to_container(hc.runtime.choices)
        cell = next(o for o in job if o.startswith("ablation=")).split("=", 1)[1]
        assert choices.get("ablation") == (cell if cell == "none" else None)  # Hydra records no list
        assert runs._choice(choices, overrides, "ablation") == cell
        assert (runs._choice(choices, overrides, "recipe"), runs._choice(choices, overrides, "post")) == (
            "post",
            "failed1",
        )
        rows.append({"config_label": runs._config_label(overrides), "cell": cell})
    frame = pd.DataFrame(rows)
    assert frame.groupby("config_label")["cell"].nunique().eq(1).all()
    assert frame["config_label"].nunique() == 16 and frame.groupby("config_label").size().eq(5).all()
    assert "ablation=[init,scale] post=failed1 recipe=post" in set(frame["config_label"])
    labels = relabel(frame)
    assert labels.varying == ("ablation",)
    assert labels.shared == {"post": "failed1", "recipe": "post"}
    short = labels.runs["config_label"]
    assert (short == frame["cell"]).all()  # the short label of a cell is its list: [init,scale]
    assert (labels.runs["factor.ablation"] == frame["cell"]).all()


def test_a_run_tag_names_the_list_of_ablations() -> None:
    from gansweep.runner.runs import _choice

    assert _choice({"ablation": "init"}, ["ablation=init"], "ablation") == "init"
    assert _choice({}, ["post=failed1", "ablation=[init,scale]"], "ablation") == "[init,scale]"
    assert _choice({}, ["+ablation=[batch]"], "ablation") == "[batch]"
    assert _choice({}, ["post=failed1"], "ablation") == "None"  # as before: no ablation selected
    assert contract.TAG_ABLATION == "gansweep.ablation"
