"""The NumPy engine: layers and MLPs (``activations``, ``layers``, ``nn``), GAN losses (``losses``),
optimizers (``optim``), learning-rate schedules (``schedules``) and one GAN iteration (``gan``). NumPy and
the standard library only. Importing the package imports none of them."""
