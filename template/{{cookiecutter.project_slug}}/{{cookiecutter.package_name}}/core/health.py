# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""The health probes, the same in every framework: `/healthz` and `/readyz`.

- `/healthz` (liveness): the process answers requests. Nothing else is asked: a store or a
  provider that is down is no reason to restart the process.
- `/readyz` (readiness): the app can serve its pages now. The session and token cache stores
  answer within READY_DEADLINE_SECONDS, and the identity provider's discovery document was
  fetched once (the first probe fetches it, if no page has yet). Once fetched it is not asked
  again: a provider that goes down later is down for every instance, and taking them all out
  of the load balancer would only change the users' error page into the balancer's.

Both answer in plain text, without a session: they are no page, read no session cookie, set
none, need no sign-in and no CSRF token (a load balancer probes them every few seconds, from
anywhere). Their bodies name no secret, version or server address; the reason a probe failed is
logged. A probe that finds a check still running (a store that hangs) waits for that one
instead of starting another, so that probes cannot pile up threads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import requests

from .errors import loggable
from .stores import Store, StoreError

log = logging.getLogger(__name__)

LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"
PROBE_PATHS = frozenset({LIVENESS_PATH, READINESS_PATH})
# Short: a probe's own timeout is often a second or two (Kubernetes: 1 s by default). A check
# that takes longer goes on in the background, and the next probe finds its result.
READY_DEADLINE_SECONDS = 2.0


@dataclass(frozen=True)
class ProbeAnswer:
    """What an adapter answers a probe with: a status and a short plain-text body."""

    status: int
    body: str
    headers: dict[str, str] = field(
        default_factory=lambda: {"Content-Type": "text/plain; charset=utf-8"})


def session_id(path: str, cookie: str | None) -> str | None:
    """The session id a request's session is loaded from: its session cookie's (`cookie`),
    but none for the probes, which neither read nor write a session."""
    return None if path in PROBE_PATHS else cookie


def liveness() -> ProbeAnswer:
    return ProbeAnswer(200, "ok\n")


class _Check:
    """One readiness check, run in a thread of its own; `answer` once `done` is set."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.answer = ProbeAnswer(503, "not ready: checking\n")


class Readiness:
    """`/readyz`: the `stores` answer (`Store.ready`) and `discover()` (the provider's
    discovery document) succeeded once, within `deadline_seconds`."""

    def __init__(self, stores: Sequence[Store], discover: Callable[[], object],
                 deadline_seconds: float = READY_DEADLINE_SECONDS) -> None:
        self._stores = stores
        self._discover = discover
        self._deadline = deadline_seconds
        self._discovered = False
        self._running: _Check | None = None
        self._guard = threading.Lock()

    def check(self) -> ProbeAnswer:
        with self._guard:
            check = self._running
            if check is None:
                check = self._running = _Check()
                threading.Thread(target=self._run, args=(check,), daemon=True,
                                 name="readiness-check").start()
        if not check.done.wait(self._deadline):
            log.warning("readiness check: no answer within %s s", self._deadline)
            return ProbeAnswer(503, f"not ready: no answer within {self._deadline:g} s\n")
        return check.answer

    def _run(self, check: _Check) -> None:
        try:
            problem = self._problem()
            check.answer = (ProbeAnswer(200, "ready\n") if problem is None
                            else ProbeAnswer(503, f"not ready: {problem}\n"))
        except Exception:  # a bug: the probe still answers
            log.exception("readiness check failed")
            check.answer = ProbeAnswer(503, "not ready: the check failed\n")
        finally:
            with self._guard:
                self._running = None  # the next probe checks again
            check.done.set()

    def _problem(self) -> str | None:
        """What keeps the app from serving pages, in a few words, or None."""
        for store in self._stores:
            try:
                store.ready()
            except StoreError as exc:
                log.warning("readiness check: the store does not answer: %s", loggable(exc))
                return "the store does not answer"
        if not self._discovered:
            try:
                self._discover()
            except (requests.RequestException, ValueError) as exc:
                log.warning("readiness check: the identity provider's discovery document "
                            "could not be fetched: %s", loggable(exc))
                return "the identity provider's discovery document could not be fetched"
            self._discovered = True
        return None
