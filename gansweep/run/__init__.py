"""A training run: ``config`` (the composed config's checks, hash and params; ``schema``, its keys and
types), ``contract`` (the names a run writes, tags, metric keys, artifacts and statuses, which the analysis
reads), ``build`` (the data, nets, optimizers and random streams from a validated config), ``loop`` (the
training loop, ``train``), ``checkpoint`` (save, check, resume), ``evaluate`` (eval points and the imprint
figures), ``progress`` (the progress bar and sample grids) and ``logger`` (the interface the loop reports
through). Importing the package imports none of them."""
