"""A tiny scripted "browser" for tests: a cookie jar, HTML form parsing and submission.

It never runs JavaScript: pages of the identity provider stand-in are usable without it
(the ``form_post`` page has a submit button), so a test drives them like a no-JS browser.
Each ``Browser`` has its own cookies, so tests can sign in several users side by side.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from html.parser import HTMLParser
from typing import Any, Self
from urllib.parse import parse_qsl, urljoin, urlsplit

import requests


@dataclasses.dataclass
class Form:
    """One ``<form>``: its absolute action URL, method, field values and submit buttons."""

    action: str
    method: str
    fields: list[tuple[str, str]]
    buttons: list[tuple[str, str]]

    def get(self, name: str) -> str | None:
        """The first value of a field or button named ``name``."""
        for key, value in self.fields + self.buttons:
            if key == name:
                return value
        return None

    @property
    def values(self) -> dict[str, str]:
        return dict(self.fields)


class _FormParser(HTMLParser):
    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.forms: list[Form] = []
        self._current: Form | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            # An empty or missing action posts back to the page's own URL.
            action = urljoin(self.base_url, a["action"]) if a.get("action") else self.base_url
            self._current = Form(action, (a.get("method") or "get").lower(), [], [])
            self.forms.append(self._current)
            return
        form = self._current
        if form is None or "name" not in a or "disabled" in a:
            return
        if tag == "input":
            kind = a.get("type", "text").lower()
            if kind in ("submit", "image"):
                form.buttons.append((a["name"], a.get("value", "")))
            elif kind in ("checkbox", "radio"):
                if "checked" in a:
                    form.fields.append((a["name"], a.get("value", "on")))
            elif kind not in ("button", "reset", "file"):
                form.fields.append((a["name"], a.get("value", "")))
        elif tag == "button" and a.get("type", "submit").lower() == "submit":
            form.buttons.append((a["name"], a.get("value", "")))
        elif tag == "textarea":
            self._textarea = a["name"]
            form.fields.append((a["name"], ""))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None and self._current is not None:
            name, value = self._current.fields[-1]
            self._current.fields[-1] = (name, value + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None
        elif tag == "textarea":
            self._textarea = None


def parse_forms(response: requests.Response) -> list[Form]:
    """All forms of an HTML response, with actions resolved against the page URL."""
    parser = _FormParser(response.url)
    parser.feed(response.text)
    return parser.forms


class Browser:
    """A ``requests.Session`` that trusts ``ca_path`` only and ignores the environment
    (``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` would override ``verify=``; proxies too)."""

    def __init__(self, ca_path: str | None = None, *, verify: bool | str | None = None) -> None:
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = verify if verify is not None else (ca_path or True)
        self.history: list[requests.Response] = []

    @property
    def cookies(self) -> requests.cookies.RequestsCookieJar:
        return self.session.cookies

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        resp = self.session.get(url, **kwargs)
        self.history.append(resp)
        return resp

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        resp = self.session.post(url, **kwargs)
        self.history.append(resp)
        return resp

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit_form(
        self,
        response: requests.Response,
        *,
        form_index: int | None = None,
        match: Callable[[Form], bool] | None = None,
        fields: Mapping[str, str] | None = None,
        button: tuple[str, str] | None = None,
        allow_redirects: bool = True,
    ) -> requests.Response:
        """Submit a form of ``response``: the one at ``form_index``, else the first for which
        ``match`` is true, else the first. ``fields`` override or add values; ``button`` picks
        a submit button by (name, value), else the form's first named button is sent."""
        forms = parse_forms(response)
        if form_index is not None:
            chosen = forms[form_index]
        else:
            candidates = [f for f in forms if match is None or match(f)]
            if not candidates:
                raise AssertionError(f"no matching form on {response.url}:\n{response.text[:2000]}")
            chosen = candidates[0]
        data = list(chosen.fields)
        if button is not None:
            if button not in chosen.buttons:
                raise AssertionError(f"no button {button} in form {chosen}")
            data.append(button)
        elif chosen.buttons:
            data.append(chosen.buttons[0])
        if fields:
            data = [(k, v) for k, v in data if k not in fields] + list(fields.items())
        if chosen.method == "post":
            return self.post(chosen.action, data=data, allow_redirects=allow_redirects)
        return self.get(chosen.action, params=data, allow_redirects=allow_redirects)

    def sign_in(self, response: requests.Response, username: str, *,
                follow: bool = True) -> requests.Response:
        """On the stand-in's sign-in page ``response``, choose ``username`` and accept; then
        (``follow=True``) submit the ``form_post`` page to the app, following redirects, and
        return the final response. With ``follow=False``, return the stand-in's answer (the
        ``form_post`` page, or a 302 in query mode) without contacting the app."""
        answer = self.submit_form(
            response,
            match=lambda f: f.get("username") == username and ("action", "accept") in f.buttons,
            allow_redirects=False,
        )
        if not follow:
            return answer
        return self.follow_auth_response(answer)

    def decline(self, response: requests.Response, *, follow: bool = True) -> requests.Response:
        """Press "Decline" on the stand-in's sign-in page."""
        answer = self.submit_form(response, match=lambda f: ("action", "decline") in f.buttons,
                                  allow_redirects=False)
        return self.follow_auth_response(answer) if follow else answer

    def follow_auth_response(self, answer: requests.Response) -> requests.Response:
        """Deliver the stand-in's authorization response to the app (form_post or redirect)."""
        if answer.is_redirect:
            return self.get(urljoin(answer.url, answer.headers["Location"]))
        return self.submit_form(answer, match=lambda f: f.get("code") is not None
                                or f.get("error") is not None)


def auth_response(answer: requests.Response) -> dict[str, str]:
    """The authorization response parameters (code, state, client_info, ... or error) the
    stand-in sends to the redirect URI, read from a ``form_post`` page or a redirect."""
    if answer.is_redirect:
        url = urlsplit(answer.headers["Location"])
        return dict(parse_qsl(url.query or url.fragment, keep_blank_values=True))
    for form in parse_forms(answer):
        if form.get("code") is not None or form.get("error") is not None:
            return form.values
    raise AssertionError(f"not an authorization response: {answer.status_code} {answer.text[:500]}")
