"""A hyperparameter search (``hydra/sweeper=optuna``, docs/SEARCH.md): ``space`` (the search's settings as
Hydra gives them, turned into Optuna's terms), ``study`` (the Optuna study: open, ask, tell, recover, the
best trials), ``trial`` (a trial's side of a job) and ``loop`` (the ask/tell loop the sweeper plugin,
``hydra_plugins.gansweep_optuna``, runs over them). Importing the package imports none of them."""
