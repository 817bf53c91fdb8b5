"""``gansweep-evaluator``: train, inspect and benchmark the NumPy digit classifier behind the metrics.

gansweep-evaluator train [--force]     # idempotent: skips when a valid classifier is cached
gansweep-evaluator info                # where it is, its checksum, recorded and re-measured accuracy
gansweep-evaluator bench               # evaluate() time on 1k and 10k samples, peak memory
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from gansweep.metrics.store import (
    ACCURACY_THRESHOLD,
    EvaluatorUnavailable,
    ensure_classifier,
    evaluator_dir,
    load_classifier,
    read_metadata,
)
from gansweep.metrics.training import TrainConfig, hidden_from_arg


def _cmd_train(args: argparse.Namespace) -> int:
    defaults = TrainConfig()
    cfg = TrainConfig(
        hidden=hidden_from_arg(args.hidden) if args.hidden else defaults.hidden,
        epochs=args.epochs if args.epochs is not None else defaults.epochs,
        seed=args.seed,
    )
    try:
        _, meta, trained = ensure_classifier(args.cache_dir, force=args.force, config=cfg)
    except EvaluatorUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not args.no_references:
        from gansweep.metrics.evaluator import load_evaluator

        t0 = time.perf_counter()
        load_evaluator(args.cache_dir).prepare()
        print(f"reference statistics ready in {time.perf_counter() - t0:.1f} s")
    if trained:
        print(
            f"evaluator trained: test accuracy {meta['test_accuracy']:.2%} in {meta['train_seconds']:.0f} s"
        )
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    d = evaluator_dir(args.cache_dir)
    print(f"evaluator directory: {d}")
    meta = read_metadata(args.cache_dir)
    if meta is None:
        print("no classifier cached; run `gansweep-evaluator train`")
        return 1
    try:
        clf, meta = load_classifier(args.cache_dir)
    except EvaluatorUnavailable as exc:
        print(f"INVALID: {exc}")
        return 1
    print(f"checksum (sha256 of weights): {meta['checksum']}")
    print(
        f"architecture: 784 -> {' -> '.join(str(h) for h in clf.hidden)} -> 10, ReLU; "
        f"features {clf.feature_dim}-d"
    )
    print(f"recorded test accuracy: {meta['test_accuracy']:.2%} (threshold {ACCURACY_THRESHOLD:.2%})")
    print(
        f"training: {meta.get('train_seconds', float('nan')):.0f} s, config {json.dumps(meta.get('config'))}"
    )
    print(f"created: {meta.get('created_utc')} with numpy {meta.get('numpy')}")
    if not args.no_verify:
        from gansweep.data import load_mnist

        x, y = load_mnist("test", cache_dir=args.cache_dir)
        acc = clf.accuracy(x.astype("float32") / 255.0, y)
        print(f"re-measured test accuracy: {acc:.2%}")
        if abs(acc - meta["test_accuracy"]) > 1e-9:
            print("warning: the re-measured accuracy differs from the recorded one")
            return 1
    refs = sorted(p.name for p in d.glob(f"reference-{meta['checksum'][:16]}-*.npz"))
    print(f"cached reference statistics: {', '.join(refs) if refs else 'none (built on first evaluate)'}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from gansweep.cli.bench import load

    try:
        load("evaluator").run_bench(
            args.sizes, cache_dir=args.cache_dir, repeats=args.repeats, per_group=not args.no_groups
        )
    except EvaluatorUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and documentation)."""
    p = argparse.ArgumentParser(prog="gansweep-evaluator", description=__doc__.split("\n")[0])
    p.add_argument("--cache-dir", default=None, help="cache root (default: gansweep.paths.cache_dir())")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train and cache the classifier (skips when a valid one exists)")
    t.add_argument("--force", action="store_true", help="retrain even when a valid classifier is cached")
    t.add_argument("--epochs", type=int, default=None, help=f"epochs (default {TrainConfig().epochs})")
    t.add_argument("--hidden", default=None, help="hidden widths, e.g. 512,256 (default)")
    t.add_argument("--seed", type=int, default=0, help="seed of the np.random.Generator (default 0)")
    t.add_argument("--no-references", action="store_true", help="do not precompute reference statistics")
    t.set_defaults(func=_cmd_train)

    i = sub.add_parser("info", help="show the cached classifier, verify it, re-measure its accuracy")
    i.add_argument("--no-verify", action="store_true", help="skip re-measuring the test accuracy")
    i.set_defaults(func=_cmd_info)

    b = sub.add_parser("bench", help="time evaluate() and report peak memory")
    b.add_argument(
        "--sizes", type=int, nargs="+", default=[1000, 10000], help="sample counts (default 1000 10000)"
    )
    b.add_argument("--repeats", type=int, default=2, help="warm repeats per size (best is reported)")
    b.add_argument("--no-groups", action="store_true", help="skip the per-metric-group timings")
    b.set_defaults(func=_cmd_bench)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gansweep-evaluator``."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
