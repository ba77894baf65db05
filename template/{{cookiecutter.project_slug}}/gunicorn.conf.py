"""Production server settings, used by:

{% if cookiecutter.framework == "django" %}
    gunicorn -c gunicorn.conf.py {{ cookiecutter.package_name }}.wsgi:application
{% else %}
    gunicorn -c gunicorn.conf.py '{{ cookiecutter.package_name }}.app:create_app()'
{% endif %}

Options given on the command line (or in GUNICORN_CMD_ARGS) override the values here.
"""

import os
import signal
from typing import Any

from dotenv import load_dotenv

from {{ cookiecutter.package_name }}.config import DEFAULTS

load_dotenv()  # as the app does: a .env file in the working directory, real variables win

# Listen on BIND (e.g. "127.0.0.1:8000", "unix:/run/app.sock"), else on PORT on every interface.
bind = os.environ.get("BIND") or f"0.0.0.0:{os.environ.get('PORT') or '8000'}"

# Threads, not one request per process: a request waiting on the identity provider or an API
# (up to the outbound deadline per call, several calls per request) keeps only its own thread
# busy, and the worker keeps answering its other requests meanwhile.
worker_class = "gthread"
threads = 8

# Sessions and token caches live in the worker process with the "memory" backend: a second
# process would not know the users signed in with the first one, and would send about half of
# the requests back to sign in. The "filesystem" backend is shared by the processes of one
# machine, and "redis" and "sql" by every instance, so more processes can serve
# (WEB_CONCURRENCY, default 2).
_backend = (os.environ.get("TOKEN_CACHE_BACKEND") or DEFAULTS.token_cache_backend).strip().lower()
workers = 1 if _backend == "memory" else int(os.environ.get("WEB_CONCURRENCY") or "2")

# The app is built once, in the master, before the workers are forked: a configuration mistake
# stops gunicorn with the list of settings to fix (and nothing else), instead of each worker
# failing on its own while the master kills the others mid-start.
preload_app = True

# A worker is restarted only if it stops reporting for this long. With threads it reports while
# requests wait, so this guards against a stuck process, not a slow provider; it is far above the
# app's own limits (OUTBOUND_DEADLINE_SECONDS per outbound call). A restart of a "memory" worker
# signs every user out.
timeout = 120
# Requests still running at shutdown or restart get this long to finish.
graceful_timeout = 30
# gunicorn 25+ opens a control socket shared by every gunicorn of the same user
# (~/.gunicorn/gunicorn.ctl); this app does not use it. Older versions ignore the setting.
control_socket_disable = True


def post_worker_init(worker: Any) -> None:
    """SIGINT and SIGQUIT stop a worker the way SIGTERM does, without taking a lock.

    Ctrl-C, SIGINT or SIGQUIT to the master make it send SIGQUIT to each worker (and Ctrl-C in a
    terminal sends every worker SIGINT as well). gunicorn's threaded worker answers those by
    shutting its thread pool down from within the signal handler, which takes the pool's lock.
    Python runs a signal handler on the main thread between two steps of whatever that thread
    was doing; when that is handing an accepted connection to the same pool (which holds that
    lock meanwhile), the handler waits forever for a lock its own thread holds: the worker
    hangs until the master kills it after `graceful_timeout`, or, if the master is killed
    first, runs on without a parent. SIGTERM's handler only marks the worker as stopping and
    wakes its main loop (lock-free), which then stops accepting, lets the requests in progress
    finish (as the quick path also waits for them) and closes idle kept-alive connections
    within seconds.
    """
    for quit_signal in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(quit_signal, worker.handle_exit)
