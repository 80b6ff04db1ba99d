"""The WSGI entry point for gunicorn: ``gunicorn app.wsgi:app``.

Configuration comes from the ``TEACHFILE_*`` environment (deploy/teachfile-web.service).
A configuration that cannot work prints one line on stderr and exits with status 3,
gunicorn's "worker failed to boot": the arbiter stops instead of respawning workers
forever. With ``--preload`` (deploy/teachfile-web.service) the check runs once in the
master, before any worker starts.
"""

from __future__ import annotations

import sys

from app import create_app
from app.config import ConfigError

#: gunicorn.arbiter.Arbiter.WORKER_BOOT_ERROR: a worker exiting with it halts gunicorn.
BOOT_ERROR = 3

try:
    app = create_app()
except ConfigError as err:
    print(f"Error: {err}", file=sys.stderr, flush=True)
    raise SystemExit(BOOT_ERROR) from None
