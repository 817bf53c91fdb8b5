"""gansweep's Hydra sweeper on Optuna 5 (``hydra/sweeper=optuna``; conf/hydra/sweeper/optuna.yaml)."""
