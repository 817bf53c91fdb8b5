"""The benchmarks of gansweep: speed, memory and bandwidth of the engine, the post's runs, Adam, the
evaluator, the runner (tracking, sweep workers) and the analysis. Outside the installed package; run from the
checkout's root (``python -m benchmarks.<module>``) or through ``gansweep-bench``. They import gansweep and
analysis; neither imports them."""
