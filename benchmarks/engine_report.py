"""What :mod:`benchmarks.engine` prints: which workers were contended, the targets checked against the
clean ones, and the tables."""

from __future__ import annotations

import os
from typing import Any

from benchmarks import measure

TARGETS = {"ratio_b64_b256_2threads": 1.2, "ratio_b1": 1.0, "peak_fraction_b256_1thread": 0.60}


def contended(worker: dict[str, Any], workers: list[dict[str, Any]]) -> str | None:
    """Why a worker's figures are not a fair measurement of this machine (None if nothing suggests so):
    other processes loaded the cores (load average, sgemm peak falling during the run), or more BLAS
    threads did not raise the sgemm peak."""
    for when in ("before", "after"):
        if why := measure.busy([worker.get(f"load_{when}")], worker["threads"]):
            return f"{why} {when} the run"
    start, end = (
        worker["sgemm_peak_gflops"],
        worker.get("sgemm_peak_gflops_after", worker["sgemm_peak_gflops"]),
    )
    if end < 0.67 * start:
        return f"sgemm peak fell from {start:.0f} to {end:.0f} GFLOP/s during the run"
    one = [w["sgemm_peak_gflops"] for w in workers if w["threads"] == 1]
    if worker["threads"] > 1 and one and worker["sgemm_peak_gflops"] < 1.5 * one[0]:
        return (
            f"sgemm peak {worker['sgemm_peak_gflops']:.0f} GFLOP/s with {worker['threads']} threads vs "
            f"{one[0]:.0f} with 1: the extra core was busy"
        )
    return None


def summarise(workers: list[dict[str, Any]]) -> dict[str, Any]:
    """Targets checked against the measured figures. A target's value is the worst over the thread counts it
    covers, leaving out contended workers (see :func:`contended`); ``met`` is None when nothing is left."""
    rows = {(r["threads"], r["batch"]): r for w in workers for r in w["results"]}
    noisy = {w["threads"]: contended(w, workers) for w in workers}

    def values(key: str, cells: list[tuple[int, int]]) -> dict[int, list[float]]:
        out: dict[int, list[float]] = {}
        for t, b in cells:
            if (v := rows.get((t, b), {}).get(key)) is not None:
                out.setdefault(t, []).append(v)
        return out

    checks = {
        "ratio_b64_b256_2threads": values("ratio", [(2, 64), (2, 256)]),
        "ratio_b1": values("ratio", [(1, 1), (2, 1)]),
        "peak_fraction_b256_1thread": values("peak_fraction", [(1, 256)]),
    }
    report = {}
    for k, by_threads in checks.items():
        clean = [v for t, vs in by_threads.items() if not noisy.get(t) for v in vs]
        left_out = "; ".join(f"{t} threads: {noisy[t]}" for t in by_threads if noisy.get(t)) or None
        value = min(clean) if clean else None
        met = None if value is None else value >= TARGETS[k]
        report[k] = {"measured": value, "target": TARGETS[k], "met": met, "left_out": left_out}
    return report


def _mark(w: dict[str, Any], workers: list[dict[str, Any]]) -> str:
    return "  (contended)" if contended(w, workers) else ""


def _threads(w: dict[str, Any]) -> str:
    return f"{w['threads']} thread{'s' * (w['threads'] > 1)}"


def _throughput(workers: list[dict[str, Any]]) -> list[str]:
    lines = ["threads     B   numpy img/s   torch img/s   numpy/torch   matmul GFLOP/s   of sgemm peak"]
    for w in workers:
        for r in w["results"]:
            t = f"{r['torch_img_s']:13,.0f}" if "torch_img_s" in r else f"{'-':>13}"
            ratio = f"{r['ratio']:13.2f}" if "ratio" in r else f"{'-':>13}"
            lines.append(
                f"{r['threads']:7d} {r['batch']:5d} {r['numpy_img_s']:13,.0f} {t} {ratio} "
                f"{r['gflops']:16.1f} {r['peak_fraction']:14.0%}{_mark(w, workers)}"
            )
    return lines


def _machine(workers: list[dict[str, Any]]) -> list[str]:
    lines = []
    for w in workers:
        lines.append(
            f"sgemm peak (2048² float32, {_threads(w)}): "
            f"{w['sgemm_peak_gflops']:.1f} GFLOP/s at the start, "
            f"{w.get('sgemm_peak_gflops_after', 0):.1f} at the end"
        )
        if w.get("load_before") is not None:
            lines.append(
                f"  1-min load average {w['load_before']:.2f} -> {w['load_after']:.2f} on {os.cpu_count()} "
                f"CPUs (this worker adds up to {w['threads']}; more means other processes shared the cores)"
            )
        if w.get("torch_error"):
            lines.append(f"  PyTorch comparison skipped: {w['torch_error']}")
    for w in workers:
        m = w.get("memory")
        if m:
            lines.append(
                f"memory: RSS {m['rss_before_mib']:.1f} MiB before, {m['rss_after_mib']:.1f} MiB after "
                f"{m['iterations']:,} iterations at B = {m['batch']} "
                f"({m['rss_after_mib'] - m['rss_before_mib']:+.2f} MiB, {m['seconds']:.1f} s)"
            )
    return lines


# (key in a worker, title, the rows' name key, column head)
_COSTS = (
    ("remedies", "mode-collapse remedies", "remedy", "remedy"),
    ("stabilizers", "stabilisers", "stabilizer", "stabiliser"),
)


def _costs(workers: list[dict[str, Any]]) -> list[str]:
    lines = []
    for w in workers:
        for key, title, name, head in _COSTS:
            if w.get(key):
                lines += [
                    "",
                    f"{title}, {_threads(w)}, B = {w[key][0]['batch']}{_mark(w, workers)}",
                    f"{head:16s} ms / iteration   x plain",
                ]
                lines += [f"{r[name]:16s} {r['ms_per_iteration']:14.2f} {r['vs_plain']:9.2f}" for r in w[key]]
    return lines


def render(report: dict[str, Any]) -> str:
    """The engine's figures as printed: throughput, machine and memory, the remedies and stabilisers, the
    targets."""
    workers = report["workers"]
    lines = [f"gansweep-bench  {report['machine']}", "", *_throughput(workers), "", *_machine(workers)]
    lines += [*_costs(workers), ""]
    for k, c in report["targets"].items():
        verdict = "not measured" if c["met"] is None else ("met" if c["met"] else "NOT met")
        if c["left_out"]:
            verdict += f" (left out as contended: {c['left_out']})"
        value = "-" if c["measured"] is None else f"{c['measured']:.2f}"
        lines.append(f"target {k}: {value} (>= {c['target']}) {verdict}")
    return "\n".join(lines)
