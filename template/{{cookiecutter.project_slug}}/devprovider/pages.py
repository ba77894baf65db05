"""HTML pages of the local Entra ID stand-in.

Plain, server-rendered HTML that works without JavaScript: every page is readable and every
step can be completed with a form button, so the same pages serve a developer's browser and the
``tests/browser.py`` test client (which parses forms and never runs scripts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; background: #f3f4f6;
       color: #1f2937; margin: 0; }
main { max-width: 34rem; margin: 3rem auto; background: #fff; padding: 2rem 2.25rem;
       border-radius: 6px; box-shadow: 0 1px 3px rgba(0,0,0,.15); }
h1 { font-size: 1.35rem; margin-top: 0; }
.banner { font-size: .8rem; color: #6b7280; margin-bottom: 1.25rem; }
ul.scopes { padding-left: 1.25rem; }
ul.scopes code { background: #f3f4f6; padding: 0 .25rem; }
form.user { display: flex; justify-content: space-between; align-items: center;
            border: 1px solid #e5e7eb; border-radius: 4px; padding: .6rem .8rem; margin: .5rem 0; }
form.user.hinted { border-color: #2563eb; background: #eff6ff; }
.who small { display: block; color: #6b7280; }
button { font: inherit; padding: .35rem .9rem; border-radius: 4px; border: 1px solid #2563eb;
         background: #2563eb; color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: #374151; border-color: #9ca3af; }
.error { border-left: 4px solid #dc2626; padding-left: 1rem; }
pre { white-space: pre-wrap; word-break: break-all; font-size: .85rem; }
"""

_BANNER = "Local development identity provider (an Entra ID stand-in). Not a real sign-in."


def _page(title: str, body: str, *, head_extra: str = "") -> str:
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{escape(title)}</title><style>{_STYLE}</style>{head_extra}</head>\n"
        f"<body><main><div class=\"banner\">{escape(_BANNER)}</div>\n"
        f"{body}\n</main></body></html>\n"
    )


def sign_in_page(
    *,
    app_name: str,
    form_action: str,
    scope_lines: Sequence[str],
    users: Iterable[tuple[str, str, bool, str]],
) -> str:
    """The combined sign-in and consent page.

    ``users`` holds ``(username, display name, hinted, access)``, ``access`` a line about the
    user's app roles and groups; one form per user posts ``username`` and ``action=accept``
    back to ``form_action`` (the authorize URL with its query).
    """
    action = escape(form_action, quote=True)
    scopes = "".join(f"<li><code>{escape(s)}</code></li>" for s in scope_lines)
    forms = []
    for username, name, hinted, access in users:
        css = "user hinted" if hinted else "user"
        note = " (suggested by the app)" if hinted else ""
        forms.append(
            f"<form class=\"{css}\" method=\"post\" action=\"{action}\">"
            f"<span class=\"who\">{escape(name)}{escape(note)}"
            f"<small>{escape(username)}</small>"
            f"<small class=\"access\">{escape(access)}</small></span>"
            f"<input type=\"hidden\" name=\"username\" value=\"{escape(username, quote=True)}\">"
            "<button type=\"submit\" name=\"action\" value=\"accept\">Sign in and accept</button>"
            "</form>"
        )
    body = (
        f"<h1>Sign in to {escape(app_name)}</h1>\n"
        "<p>The app asks for these permissions:</p>\n"
        f"<ul class=\"scopes\">{scopes}</ul>\n"
        "<p>Choose a test user:</p>\n" + "\n".join(forms) + "\n"
        f"<form method=\"post\" action=\"{action}\">"
        "<button class=\"secondary\" type=\"submit\" name=\"action\" value=\"decline\">"
        "Decline</button>"
        "</form>"
    )
    return _page(f"Sign in to {app_name}", body)


def form_post_page(action: str, fields: Mapping[str, str]) -> str:
    """``response_mode=form_post``: an auto-submitting form, with a visible button (no-JS)."""
    inputs = "".join(
        f"<input type=\"hidden\" name=\"{escape(k, quote=True)}\" "
        f"value=\"{escape(v, quote=True)}\">"
        for k, v in fields.items()
    )
    body = (
        "<h1>Returning to the app…</h1>\n"
        f"<form method=\"post\" action=\"{escape(action, quote=True)}\">{inputs}"
        "<noscript><p>JavaScript is off: press the button to continue.</p></noscript>"
        "<button type=\"submit\">Continue</button></form>\n"
        "<script>document.forms[0].submit();</script>"
    )
    return _page("Working…", body)


def error_page(code: int, message: str, details: Mapping[str, str]) -> str:
    """Entra's error page (for errors it must NOT redirect, such as AADSTS50011)."""
    rows = "\n".join(f"{escape(k)}: {escape(v)}" for k, v in details.items())
    body = (
        "<h1>Sorry, but we're having trouble signing you in.</h1>\n"
        f"<div class=\"error\"><p><strong>AADSTS{code}</strong>: {escape(message)}</p></div>\n"
        f"<pre>{rows}</pre>"
    )
    return _page(f"AADSTS{code}", body)


def signed_out_page(redirect_to: str | None, note: str | None) -> str:
    """The end-session page: says so, and links back to the app when the redirect is allowed."""
    parts = ["<h1>You signed out of your account</h1>",
             "<p>It's a good idea to close all browser windows.</p>"]
    if note:
        parts.append(f"<p class=\"error\">{escape(note)}</p>")
    if redirect_to:
        parts.append(f"<p><a href=\"{escape(redirect_to, quote=True)}\">Return to the app</a></p>")
    return _page("Signed out", "\n".join(parts))


def _hidden(fields: Mapping[str, str]) -> str:
    return "".join(f"<input type=\"hidden\" name=\"{escape(k, quote=True)}\" "
                   f"value=\"{escape(v, quote=True)}\">" for k, v in fields.items())


def pick_account_page(action: str, fields: Mapping[str, str],
                      accounts: Iterable[tuple[str, str, str]]) -> str:
    """Entra's "Pick an account to sign out" page (shown when no ``logout_hint`` names one).

    ``accounts`` holds ``(username, display name, logout hint)``; each form posts ``fields``
    plus ``logout_hint`` back to ``action``."""
    forms = [
        f"<form class=\"user\" method=\"post\" action=\"{escape(action, quote=True)}\">"
        f"<span class=\"who\">{escape(name)}<small>{escape(username)}</small></span>"
        f"{_hidden({**fields, 'logout_hint': hint})}"
        "<button type=\"submit\">Sign out</button></form>"
        for username, name, hint in accounts
    ]
    body = "<h1>Pick an account to sign out</h1>\n" + "\n".join(forms)
    return _page("Sign out", body)


def confirm_logout_page(action: str, fields: Mapping[str, str]) -> str:
    """The generic OpenID Connect provider's "Do you want to log out?" page (no id_token_hint)."""
    body = (
        "<h1>Logging out</h1>\n<p>Do you want to log out?</p>\n"
        f"<form method=\"post\" action=\"{escape(action, quote=True)}\">{_hidden(fields)}"
        "<button type=\"submit\">Logout</button></form>"
    )
    return _page("Logging out", body)


def problem_page(title: str, message: str) -> str:
    """An error page of the generic OpenID Connect provider (no AADSTS code)."""
    body = f"<h1>{escape(title)}</h1>\n<div class=\"error\"><p>{escape(message)}</p></div>"
    return _page(title, body)


def index_page(rows: Sequence[tuple[str, str]], users: Iterable[tuple[str, str]]) -> str:
    """A landing page listing the endpoints and test users, for developers poking around."""
    items = "".join(f"<li>{escape(k)}: <code>{escape(v)}</code></li>" for k, v in rows)
    people = "".join(f"<li>{escape(n)} <code>{escape(u)}</code></li>" for u, n in users)
    body = (
        "<h1>Entra ID stand-in</h1>\n"
        f"<ul class=\"scopes\">{items}</ul>\n"
        f"<h2>Test users</h2>\n<ul class=\"scopes\">{people}</ul>"
    )
    return _page("Entra ID stand-in", body)
