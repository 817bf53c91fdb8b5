"""The package's entry points, argument parsing only: ``train`` (gansweep-train, the Hydra main), ``data``
(gansweep-data), ``evaluator`` (gansweep-evaluator) and ``bench`` (gansweep-bench). Importing the package
imports none of them."""
