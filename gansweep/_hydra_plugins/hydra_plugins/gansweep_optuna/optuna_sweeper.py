"""The Optuna sweeper (``hydra/sweeper=optuna``), a thin shim: Hydra requires a plugin class to be defined
under ``hydra_plugins``; the search itself is :func:`gansweep.search.loop.run_search`."""

from __future__ import annotations

from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from gansweep.search.loop import run_search


class OptunaSweeper(Sweeper):
    """``hydra/sweeper=optuna``: its settings are read from ``hydra.sweeper`` (conf/hydra/sweeper/optuna.yaml)
    by :func:`gansweep.search.space.check_search`."""

    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.config: DictConfig | None = None
        self.launcher = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> list[Any]:
        assert self.config is not None and self.launcher is not None
        return run_search(self.config, self.launcher, arguments)
