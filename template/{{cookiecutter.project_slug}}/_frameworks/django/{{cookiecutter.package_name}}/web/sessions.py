"""The session engine (SESSION_ENGINE): Django's `request.session` over the core's sessions.

The data, its id and when it is written are the core's (core/sessions.py: server-side JSON in
the store, the cookie holding only a random id). `SessionStore` wraps one request's
`SessionState` with Django's session API: `cycle_key()` gives it a new id at the next save (as
after a sign-in), `flush()` empties it (the save then deletes it and its cookie).
web/middleware.py loads it, and saves it once as the response leaves, with its cookie.
"""

from __future__ import annotations

from typing import Any

from django.contrib.sessions.backends.base import SessionBase

from ..core.services import Services
from ..core.sessions import SessionState
from .services import process_services


class SessionStore(SessionBase):
    def __init__(self, session_key: str | None = None, *, state: SessionState | None = None,
                 services: Services | None = None) -> None:
        self.services = services or process_services()
        self.state = state if state is not None else self.services.sessions.load(session_key)
        super().__init__(session_key)

    # Django's SessionBase keeps the data in `_session` and the id in `_session_key`: both are
    # the core state's here, and so is `modified`.
    @property
    def _session(self) -> SessionState:
        self.accessed = True
        return self.state

    def _get_session_key(self) -> str | None:
        return self.state.sid

    def _set_session_key(self, value: str | None) -> None:
        pass  # the core names sessions (`Sessions.save`)

    session_key = property(_get_session_key)
    _session_key = property(_get_session_key, _set_session_key)

    @property
    def modified(self) -> bool:
        return self.state.modified

    @modified.setter
    def modified(self, value: bool) -> None:
        if value:  # Django resets it to False only after its own save, which is the core's
            self.state.modified = True

    def is_empty(self) -> bool:
        return self.state.sid is None and not self.state

    def clear(self) -> None:
        self.state.clear()

    def flush(self) -> None:
        self.state.clear()

    def cycle_key(self) -> None:
        self.state.rotate()

    # The backend API, for code that calls it directly.
    def load(self) -> dict[str, Any]:
        return dict(self.state)

    def exists(self, session_key: str) -> bool:
        return self.services.sessions.load(session_key).sid is not None

    def create(self) -> None:
        self.state.modified = True

    def save(self, must_create: bool = False) -> None:
        """Nothing to do now: the core saves the session once, as the response leaves
        (web/middleware.py), and sets its cookie then."""

    def delete(self, session_key: str | None = None) -> None:
        if session_key is None or session_key == self.state.sid:
            self.state.clear()
        else:
            self.services.sessions.retire(session_key)

    @classmethod
    def clear_expired(cls) -> None:
        pass  # the store expires sessions itself
