"""``python -m analysis ...`` runs :func:`analysis.cli.main`."""

from analysis.cli import main

raise SystemExit(main())
