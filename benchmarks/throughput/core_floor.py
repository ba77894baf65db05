"""What the Django and FastAPI floors (django_floor.py, fastapi_floor.py) take out of the app,
through the core `Services` it carries: token acquisition (every token is BENCH_FIXED_TOKEN)
and the session store (once a signed-in session has rendered BENCH_PAGE with a 200, that
`SessionState` is served from memory by `Sessions.load`, and `Sessions.save` skips it).

`note` is called with ("loaded", state) and ("token", True) as the request's work happens, so
that each floor can tell, per request, whether it served the frozen session and the fixed token.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


def bench_settings() -> tuple[str, str, str]:
    """(package, fixed token, page) from the benchmark's environment."""
    return (os.environ["BENCH_PACKAGE"], os.environ["BENCH_FIXED_TOKEN"],
            os.environ["BENCH_PAGE"])


def require(floor: str, *seams: tuple[Any, str]) -> None:
    """Stop at start-up if the app lost a seam the floor replaces."""
    for owner, name in seams:
        if not callable(getattr(owner, name, None)):
            raise RuntimeError(f"{owner!r} has no {name}: update {floor}")


class FrozenCore:
    def __init__(self, services: Any, token: str, note: Callable[[str, Any], None]) -> None:
        self.frozen: list[Any] = []  # the frozen SessionState, once there is one
        real_load, real_save = services.sessions.load, services.sessions.save

        def fixed_token(*args: object, **kwargs: object) -> str:
            note("token", True)
            return token

        def load(sid: str | None, *args: Any, **kwargs: Any) -> Any:
            state = self.frozen[0] if self.frozen else real_load(sid, *args, **kwargs)
            note("loaded", state)
            return state

        def save(state: Any, *args: Any, **kwargs: Any) -> Any:
            if self.frozen and state is self.frozen[0]:
                return None  # the floor keeps no session, and sends no session cookie
            return real_save(state, *args, **kwargs)

        # Instance attributes shadow the methods for every caller holding these objects.
        services.auth.acquire_token = self.fixed_token = fixed_token
        # An async adapter asks for a cached token on its event loop first.
        services.auth.cached_token = fixed_token
        services.sessions.load = self.load = load
        services.sessions.save = save

    def is_frozen(self, state: Any) -> bool:
        return bool(self.frozen) and state is self.frozen[0]

    def maybe_freeze(self, state: Any, status: int, path: str, page: str) -> None:
        """Freeze `state` if it is the first signed-in session that rendered the page."""
        if (not self.frozen and state is not None and status == 200 and path == page
                and state.sid is not None and state):
            # As the page left it (CSRF token included), saved; its cookie was sent with this
            # response and is not sent again (the frozen state's save does nothing).
            self.frozen.append(state)
