"""The runner: what runs a job (``job``: set-up, the fresh / resume / skip ``decision``, its run in the store,
``runs``) and what supervises a sweep from its launching process (``supervisor``, the Hydra callback;
``jobs``, the sweep's jobs checked before any starts), what the two share (``sweep``: files and environment
variables), the processes and signals (``processes``), and the store (``tracking``, the only module that
imports MLflow). Importing the package imports none of them."""
