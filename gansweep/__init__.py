"""gansweep: a NumPy-only GAN, its Hydra-composed studies and their MLflow comparison.

Dependency graph (one way): ``engine`` (nn, losses, optim, schedules, gan), ``data``, ``metrics`` use NumPy
only; ``run`` (the config, the run contract and the training loop) uses those and receives a logging
callback; ``runner.tracking`` is the only MLflow user; Hydra is used by the entry points (``cli``), the
``runner`` (a job and the sweep supervisor) and the ``search``, never by ``engine``, ``run`` or the analysis;
``analysis`` (top level) reads MLflow and never imports the trainer (of ``run``, only the names a run writes,
``run.contract``).
"""

__version__ = "0.1.0"
