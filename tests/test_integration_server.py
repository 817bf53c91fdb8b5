"""The team tracking server for real: scripts/mlflow-server.sh starts PostgreSQL (its own cluster) and
``mlflow server --serve-artifacts`` on 127.0.0.1; sweeps log to it concurrently, the analysis reads it back,
and a server stopped mid-sweep fails the affected runs without hanging a worker, after which ``resume=auto``
finishes the study. Every count is checked in full, in MLflow and in the PostgreSQL tables themselves."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
from conftest import BIN, ROOT, Store
from scaleout import ARTIFACTS, Server, running_server, start_train, train, wait_for
from sweeps import LONG, SMOKE_MODELS, assert_no_process_left, check_smoke_store, checkpoint_params

from gansweep.run import contract

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Per child of the smoke study (30 iterations): metrics every 5 (6 points per key), the fixed-noise grid at
# 0, 10, 20, 30 and the fresh-noise grid at 0 (each a PNG and MLflow's WebP thumbnail).
SMOKE_IMAGE_STEPS = {"samples": {0, 10, 20, 30}, "samples_fresh": {0}}


@pytest.fixture(scope="module")
def server() -> Server:
    with running_server("srv") as s:
        yield s


@pytest.fixture(scope="module")
def smoke(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Store:
    """The smoke study on 2 joblib workers, both logging to the server at once."""
    tmp = tmp_path_factory.mktemp("smoke-server")
    proc = train(
        "-m",
        "experiment=smoke",
        "tracking=server",
        f"tracking.uri={server.uri}",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={tmp / 'multirun'}",
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "2 parallel workers" in proc.stderr
    return Store(server.uri, "smoke", tmp, tmp / "multirun", proc)


def count_server_store(server: Server, experiment: str, children: int, steps: int) -> dict[str, str]:
    """Count, in PostgreSQL and in the served artifact folder, everything the experiment's children logged:
    every run, every metric point of every key, every image and checkpoint. Returns {run_id: model}."""
    (exp_id,) = server.sql(f"select experiment_id from experiments where name = '{experiment}'")[0]
    runs = server.sql(
        "select r.run_uuid, r.status, t.value from runs r join tags t on t.run_uuid = r.run_uuid "
        f"and t.key = 'gansweep.role' where r.experiment_id = {exp_id} and r.lifecycle_stage = 'active'"
    )
    assert sorted(role for _, _, role in runs) == ["child"] * children + ["parent"], runs
    assert {status for _, status, _ in runs} == {"FINISHED"}, runs
    child_ids = [run for run, _, role in runs if role == "child"]
    points = server.sql(
        "select m.run_uuid, m.key, count(*) from metrics m join runs r on r.run_uuid = m.run_uuid "
        f"where r.experiment_id = {exp_id} and m.key not like 'eval%' group by m.run_uuid, m.key"
    )
    # the training curves, gradient norms, lr, speed, D's logits and (the post's 0-255 reals) D(x/255)
    keys = {
        *contract.TRAINING_CURVES,
        *contract.GRAD_NORMS,
        "lr",
        "img_per_s",
        *contract.D_LOGITS,
        contract.D_REAL_UNIT,
    }
    for run in child_ids:
        mine = {key: n for r, key, n in points if r == run}
        assert mine == dict.fromkeys(keys, steps), (run, mine)
    models = dict(
        server.sql(
            "select t.run_uuid, t.value from tags t join runs r on r.run_uuid = t.run_uuid "
            f"where r.experiment_id = {exp_id} and t.key = 'gansweep.model'"
        )
    )
    for run in child_ids:
        folder = server.dir / "artifacts" / str(exp_id) / run / "artifacts"
        assert (folder / "checkpoint" / "last.npz").stat().st_size > 1000, folder
        assert (folder / "samples_final.png").is_file() and (folder / "progress.gif").is_file()
        for key, expected in SMOKE_IMAGE_STEPS.items():
            for ext in (".png", "+compressed.webp"):
                found = [p.name for p in (folder / "images").glob(f"{key}+step+*{ext}")]
                if ext == ".png":
                    found = [f for f in found if not f.endswith("+compressed.png")]
                assert sorted(int(f.split("+")[2]) for f in found) == sorted(expected), (run, key, ext)
    return {run: models[run] for run in child_ids}


def test_a_2_worker_sweep_logs_everything_to_postgres(smoke: Store, server: Server) -> None:
    check_smoke_store(smoke)  # through the server's REST API, as a user reads it
    models = count_server_store(server, "smoke", children=len(SMOKE_MODELS), steps=6)
    assert sorted(models.values()) == sorted(SMOKE_MODELS)
    (version,) = server.sql("select version()")[0]
    assert version.startswith("PostgreSQL"), version


def test_analyze_regenerates_the_report_from_the_server(smoke: Store, server: Server, tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = subprocess.run(
        [str(BIN / "gansweep-analyze"), "experiment=smoke", "--tracking-uri", server.uri, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = (out / "report.md").read_text()
    assert "smoke" in report
    table = (out / "tables" / "runs.csv").read_text().splitlines()
    assert len(table) == 1 + len(SMOKE_MODELS), table[:3]
    client = mlflow.MlflowClient(server.uri)
    exp = client.get_experiment_by_name("smoke").experiment_id
    (parent,) = client.search_runs([exp], filter_string="tags.`gansweep.role` = 'parent'")
    uploaded = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert uploaded, "the report was not logged to the parent run on the server"


# the sweep tests' LONG job at 3,000 iterations (checkpoint every 100), in its own study
OUTAGE_JOB = (
    "study=outage",
    *(o for o in LONG if not o.startswith(("study=", "train.iterations="))),
    "train.iterations=3000",
)
OUTAGE_SWEEP = (*OUTAGE_JOB, "seed=0,1,2")


@pytest.fixture(scope="module")
def outage(server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 2-worker sweep of three 3,000-iteration jobs; once jobs 0 and 1 have checkpointed, the whole server
    (MLflow and PostgreSQL) is stopped. Records how the sweep ends, then starts the server again."""
    tmp = tmp_path_factory.mktemp("outage")
    sweep = ("-m", *OUTAGE_SWEEP, "tracking=server", f"tracking.uri={server.uri}", "hydra/launcher=joblib")
    proc = start_train(*sweep, "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={tmp / 's1'}")
    try:
        wait_for(
            lambda: (
                proc.poll() is not None or all((tmp / "s1" / j / "last.npz").exists() for j in ("0", "1"))
            ),
            "both workers' first checkpoints",
        )
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        time.sleep(1.0)  # let that checkpoint's upload finish
        server.stop()
        stopped = time.monotonic()
        _, err = proc.communicate(timeout=600)
        ended_after = time.monotonic() - stopped
        assert_no_process_left(proc)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
    server.start()
    return {"sweep": sweep, "tmp": tmp, "returncode": proc.returncode, "stderr": err, "seconds": ended_after}


def test_a_stopped_server_fails_the_sweep_without_hanging_and_resume_auto_finishes_it(
    outage: dict, server: Server
) -> None:
    err = outage["stderr"]
    assert outage["returncode"] != 0, err[-3000:]
    # MLflow gives up after its (fail-fast) retries: no worker waits on the dead server for minutes
    assert outage["seconds"] < 240, (
        f"the sweep took {outage['seconds']:.0f} s to end after the server stopped"
    )
    assert f"{server.uri}" in err and "Connection refused" in err, err[-3000:]
    client = mlflow.MlflowClient(server.uri)
    exp = client.get_experiment_by_name("outage").experiment_id
    left = client.search_runs([exp], filter_string="attributes.status = 'RUNNING'")
    # the runs the dead server could not close: their processes are gone, so the next command closes them
    assert all(not Path(f"/proc/{r.data.tags['gansweep.pid']}").exists() for r in left), left
    interrupted = {
        r.data.tags["gansweep.seed"]: r.info.run_id
        for r in client.search_runs([exp], filter_string="tags.`gansweep.role` = 'child'")
    }
    assert {"0", "1"} <= set(interrupted), interrupted
    tmp = outage["tmp"]
    again = train(*outage["sweep"], "resume=auto", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={tmp / 's2'}")
    assert again.returncode == 0, again.stderr[-4000:]
    assert "3 finished" in again.stderr, again.stderr[-3000:]
    assert not client.search_runs([exp], filter_string="attributes.status = 'RUNNING'")
    children = client.search_runs(
        [exp], filter_string="tags.`gansweep.role` = 'child' and attributes.status = 'FINISHED'"
    )
    by_seed = {r.data.tags["gansweep.seed"]: r for r in children}
    assert set(by_seed) == {"0", "1", "2"}
    for seed in ("0", "1"):  # continued from their checkpoints on the server, not started afresh
        run = by_seed[seed]
        assert run.info.run_id == interrupted[seed] and run.data.tags["gansweep.resumed"] == "true"
        history = client.get_metric_history(run.info.run_id, "loss_d")
        assert sorted({m.step for m in history}) == list(range(50, 3001, 50))
    # bit-identical to a run that was never interrupted (trained here without tracking)
    full = train(*OUTAGE_JOB, "seed=0", "tracking=off", f"hydra.run.dir={tmp / 'full'}")
    assert full.returncode == 0, full.stderr[-3000:]
    a, b = checkpoint_params(tmp / "full" / "last.npz"), checkpoint_params(tmp / "s2" / "0" / "last.npz")
    assert a.keys() == b.keys() and len(a) > 4
    for k in a:
        assert np.array_equal(a[k], b[k]), f"{k} differs after resuming through the server"


def test_a_stopped_server_ends_the_sweep_with_a_summary_naming_the_failed_jobs(outage: dict) -> None:
    err = outage["stderr"]
    assert "[gansweep] sweep done:" in err and "failed" in err.split("[gansweep] sweep done:")[1], err[-3000:]
    assert "Traceback" not in err, err[-3000:]


# --- The MLflow UI in a real browser (Debian's chromium, driven by Selenium through chromedriver) ----------

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,1000",
)
UI_WAIT_S = 120  # a page's first render on a busy 2-core machine


@pytest.fixture
def browser(tmp_path: Path):
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    chrome.set_page_load_timeout(UI_WAIT_S)
    try:
        yield chrome
    finally:
        chrome.quit()


def _shot(chrome, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"ui-{name}.png"
    assert chrome.save_screenshot(str(path)), path
    return path


def _wait_text(chrome, *texts: str) -> str:
    """Wait until the page shows every one of ``texts``; returns the page's visible text."""
    from selenium.webdriver.common.by import By

    body = ""

    def shown() -> bool:
        nonlocal body
        body = chrome.find_element(By.TAG_NAME, "body").text
        return all(t in body for t in texts)

    try:
        wait_for(shown, f"the page to show {texts}", timeout=UI_WAIT_S)
    except AssertionError:
        _shot(chrome, "timeout")
        raise AssertionError(f"{chrome.current_url} never showed {texts}; it shows: {body[:2000]}") from None
    return body


def test_the_mlflow_ui_shows_the_study_in_a_real_browser(smoke: Store, server: Server, browser) -> None:
    from selenium.webdriver.common.by import By

    client = mlflow.MlflowClient(server.uri)
    exp = client.get_experiment_by_name("smoke").experiment_id
    runs = client.search_runs([exp])
    (parent,) = [r for r in runs if r.data.tags["gansweep.role"] == "parent"]
    children = {r.data.tags["gansweep.model"]: r for r in runs if r.data.tags["gansweep.role"] == "child"}
    labels = sorted(r.data.tags["gansweep.config_label"] for r in children.values())
    assert labels == sorted(f"model={m}" for m in SMOKE_MODELS)

    # 1. the experiments list shows the study's experiment
    browser.get(f"{server.uri}/#/experiments")
    _wait_text(browser, "smoke")
    _shot(browser, "1-experiments")

    # 2. its runs: the sweep's parent run; expanded, its nine children named by their config labels
    browser.get(f"{server.uri}/#/experiments/{exp}/runs")
    _wait_text(browser, parent.info.run_name)
    assert "model=failed1" not in browser.find_element(By.TAG_NAME, "body").text  # collapsed under the parent
    cell = browser.find_element(
        By.XPATH, f"//*[text()='{parent.info.run_name}']/ancestor::*[@role='gridcell'][1]"
    )
    cell.find_element(By.TAG_NAME, "button").click()  # the parent's expand (+) button
    _wait_text(browser, parent.info.run_name, *labels)
    _shot(browser, "2-parent-and-children")

    # 3. a child's metric charts: the training curves, drawn
    child = children["failed3"]
    browser.get(f"{server.uri}/#/experiments/{exp}/runs/{child.info.run_id}/model-metrics")
    _wait_text(browser, "model=failed3", "Model metrics")
    for section in browser.find_elements(By.XPATH, "//*[text()='Model metrics' and not(@role='tab')]"):
        browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", section)
    # the section's first charts (alphabetical: D's outputs and logits come first), each titled by its metric,
    # its legend naming the run by its label
    labels = ("model=failed3 (d_fake)", "model=failed3 (d_real)")
    _wait_text(browser, "d_fake", "d_fake_logit", "d_real", *labels)
    wait_for(
        lambda: len(browser.find_elements(By.CSS_SELECTOR, "svg.main-svg")) >= 4,
        "the metric charts to be drawn",
        timeout=UI_WAIT_S,
    )
    _shot(browser, "3-child-metric-charts")

    # 4. the sample grid logged at step 20, opened in the artifacts view, and its image loaded
    (grid,) = [
        a.path
        for a in client.list_artifacts(child.info.run_id, "images")
        if a.path.startswith("images/samples+step+20+") and a.path.endswith(".png")
    ]
    browser.get(f"{server.uri}/#/experiments/{exp}/runs/{child.info.run_id}/artifacts/{grid}")
    _wait_text(browser, "samples+step+20", "Artifacts")

    def image_loaded() -> bool:
        for img in browser.find_elements(By.CSS_SELECTOR, "img"):
            size = browser.execute_script(
                "const i = arguments[0]; return i.complete ? [i.naturalWidth, i.naturalHeight] : null", img
            )
            if size == [2 * 122 + 6, 122]:  # the 4 x 4 raw | stretched panel of the smoke study
                return True
        return False

    wait_for(image_loaded, "the step-20 sample grid to load in the artifacts view", timeout=UI_WAIT_S)
    _shot(browser, "4-sample-grid-step-20")
