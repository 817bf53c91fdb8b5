"""gansweep: a NumPy-only GAN, its Hydra-composed studies and their MLflow comparison.

Dependency graph (one way): ``engine`` (nn, losses, optim, schedules, gan), ``data``, ``metrics`` use NumPy
only; ``run`` (the training loop) uses those and receives a logging callback; ``tracking`` is the only
MLflow user; ``cli`` is the only Hydra user; ``analysis`` (top level) reads MLflow and never imports the
trainer.
"""

__version__ = "0.1.0"
