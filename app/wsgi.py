"""The WSGI entry point for gunicorn: ``gunicorn app.wsgi:app``.

Configuration comes from the ``TEACHFILE_*`` environment (deploy/teachfile-web.service).
A configuration that cannot work prints one line on stderr and exits with status 3,
gunicorn's "worker failed to boot": the arbiter stops instead of respawning workers
forever. With ``--preload`` (deploy/teachfile-web.service) the check runs once in the
master, before any worker starts.
"""

from __future__ import annotations

import sys

from werkzeug.middleware.proxy_fix import ProxyFix

from app import create_app
from app.config import ConfigError

#: gunicorn.arbiter.Arbiter.WORKER_BOOT_ERROR: a worker exiting with it halts gunicorn.
BOOT_ERROR = 3

try:
    app = create_app()
except ConfigError as err:
    print(f"Error: {err}", file=sys.stderr, flush=True)
    raise SystemExit(BOOT_ERROR) from None

# Behind nginx, TEACHFILE_TRUSTED_PROXIES=1: the client's address (log-in throttling,
# audit), scheme (Secure cookies) and host come from the proxy's X-Forwarded-* headers.
# Never set it when clients can reach gunicorn directly: they could forge them.
_proxies = int(app.config.get("TRUSTED_PROXIES") or 0)
if _proxies > 0:
    app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
        app.wsgi_app, x_for=_proxies, x_proto=_proxies, x_host=_proxies
    )
