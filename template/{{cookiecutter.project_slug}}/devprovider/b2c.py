"""Azure AD B2C mode and Microsoft Entra External ID mode of the stand-in.

**B2C** (``b2c_authority(flow)``): ``/{tenant}/{user flow}/...``, every user flow an authority of
its own, as on ``https://{name}.b2clogin.com/{name}.onmicrosoft.com/{user flow}``:

* discovery (``v2.0/.well-known/openid-configuration``), keys, ``oauth2/v2.0/authorize``,
  ``token`` and ``logout``, with the endpoints in lower case and the issuer
  ``{base}/{tenant id}/v2.0/`` (B2C's default "Issuer (iss) claim" form, trailing slash);
* three kinds of user flows (``add_b2c_user_flow``; the defaults below): sign-up and sign-in
  (its page has "Forgot your password?" and "Cancel"), password reset, profile edit (a display
  name to change, kept for the user);
* ID tokens as B2C's token reference lists them: ``ver`` 1.0, ``sub`` the user's object id (the
  default subject), ``tfp`` the user flow, ``auth_time``, ``nonce``; ``name``, ``emails`` and
  ``oid`` only when the user flow's application claims include them (``b2c_claims``; without
  ``oid`` by default, as a new user flow's application claims lack the object id), never
  ``tid``; ``client_info`` with ``uid`` = ``{object id}-{user flow}`` (MSAL's B2C home account id
  holds the user flow: B2C keys accounts per user flow);
* no consent and no Microsoft Graph: tokens for the APIs registered with ``register_api`` only;
* B2C's error answers: ``access_denied`` AADB2C90118 (forgot password) and AADB2C90091
  (cancelled) to the redirect URI; an unregistered redirect URI AADB2C90006 and an unknown
  client AADB2C90018 on pages; a refresh token or code of another user flow AADB2C90088
  ``invalid_grant``; a wrong secret AADB2C90081 ``invalid_client``; an unknown user flow a 404
  (its body UNCONFIRMED);
* single sign-on: a browser signed in to the tenant (a sign-up and sign-in or password-reset
  flow) is signed in again by the sign-up and sign-in flow without a page (B2C's session,
  "tenant" scope, its default; UNCONFIRMED in every detail).

Every request is recorded in ``b2c_requests`` (``(endpoint, parameters)``), so that a test sees
what the app sent (e.g. no ``cp1`` client capability in ``claims``).

**External ID** (a ``*.ciamlogin.com`` Host header on the main listener, ``ciam_host``): the Entra
endpoints under ``/{tenant}/...`` with ``{name}.onmicrosoft.com`` (what MSAL derives from the
path-less ``https://{name}.ciamlogin.com``) or the tenant id as the tenant, URLs on that host,
and the issuer ``https://{tenant id}.ciamlogin.com/{tenant id}/v2.0`` (as External ID's tokens
carry it). ``organizations`` and ``common`` are refused with AADSTS90002 (one tenant;
UNCONFIRMED code). Access tokens keep the Entra-style issuer (UNCONFIRMED: their ``iss`` on a
ciamlogin.com tenant). A custom URL domain (a host in ``ciam_custom_domains``) serves the same
endpoints with the tenant id as the tenant, as an app reaches it with MSAL's
``oidc_authority=https://{domain}/{tenant id}/v2.0``.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import hmac
import json
import secrets
import uuid
from datetime import UTC, datetime
from html import escape
from typing import Any

from . import pages
from .identity import _IdentityEndpoints
from .model import CODE_LIFETIME, GRAPH_RESOURCE, REFRESH_TOKEN_LIFETIME, OAuthError, TestUser
from .server import _html, _json, _redirect, _Request, _Response
from .tokens import _b64url

SIGN_UP_SIGN_IN = "sign_up_sign_in"
PASSWORD_RESET = "password_reset"
PROFILE_EDIT = "profile_edit"
FLOW_KINDS = (SIGN_UP_SIGN_IN, PASSWORD_RESET, PROFILE_EDIT)
DEFAULT_FLOWS = {"B2C_1_signupsignin": SIGN_UP_SIGN_IN, "B2C_1_passwordreset": PASSWORD_RESET,
                 "B2C_1_profileedit": PROFILE_EDIT}
B2C_TENANT_NAME = "contoso"
# The application claims of the stand-in's user flows by default: a new user flow's defaults
# leave the object id out (it must be picked under "Application claims").
DEFAULT_B2C_CLAIMS = frozenset({"name", "emails"})
B2C_CLAIMS = frozenset({"name", "emails", "oid", "given_name", "family_name"})
_B2C_SESSION_COOKIE = "devprovider_b2c_session"
CIAM_HOST_SUFFIX = ".ciamlogin.com"
_B2C_SCOPES = frozenset({"openid", "offline_access"})


@dataclasses.dataclass
class _B2CCode:
    client_id: str
    redirect_uri: str
    flow: str  # lower case, as B2C binds grants to it
    username: str
    nonce: str | None
    challenge: str
    method: str
    resource: str | None
    names: set[str]
    auth_time: int
    expires: float
    used: bool = False


@dataclasses.dataclass
class _B2CRefresh:
    client_id: str
    flow: str
    username: str
    resource: str | None
    names: set[str]
    expires: float


class _B2CError(Exception):
    """An error as B2C answers it: ``AADB2C<code>: <message>`` in ``error_description``."""

    def __init__(self, error: str, code: int, message: str, status: int = 400) -> None:
        super().__init__(f"{error}: AADB2C{code}: {message}")
        self.error, self.code, self.message, self.status = error, code, message, status


class _CustomerEndpoints(_IdentityEndpoints):
    """B2C's user flows and External ID's ciamlogin.com host (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.b2c_tenant_name = B2C_TENANT_NAME
        self._b2c_flows: dict[str, tuple[str, str]] = {
            name.lower(): (name, kind) for name, kind in DEFAULT_FLOWS.items()}
        # The claims the user flows' "Application claims" return (see B2C_CLAIMS).
        self.b2c_claims: set[str] = set(DEFAULT_B2C_CLAIMS)
        self.b2c_requests: list[tuple[str, dict[str, str]]] = []
        self.b2c_calls: collections.Counter[str] = collections.Counter()
        self._b2c_codes: dict[str, _B2CCode] = {}
        self._b2c_refresh: dict[str, _B2CRefresh] = {}
        self._b2c_sessions: dict[str, str] = {}  # browser session -> username
        # External ID's custom URL domains (host names) in front of this tenant.
        self.ciam_custom_domains: set[str] = set()

    # ------------------------------------------------------------------ configuration
    @property
    def b2c_tenant(self) -> str:
        """The tenant segment of the B2C authorities: ``contoso.onmicrosoft.com``."""
        return f"{self.b2c_tenant_name}.onmicrosoft.com"

    def b2c_authority(self, flow: str = "B2C_1_signupsignin") -> str:
        """``{base}/contoso.onmicrosoft.com/{flow}``: MSAL takes it for B2C by its last
        segment (``b2c_...``), as it does on a custom domain."""
        return f"{self.base_url}/{self.b2c_tenant}/{flow}"

    @property
    def b2c_issuer(self) -> str:
        return f"{self.base_url}/{self.tenant_id}/v2.0/"

    @property
    def ciam_issuer(self) -> str:
        return f"https://{self.tenant_id}{CIAM_HOST_SUFFIX}/{self.tenant_id}/v2.0"

    def add_b2c_user_flow(self, name: str, kind: str) -> None:
        """Create a user flow (``B2C_1_<name>``) of a kind of FLOW_KINDS."""
        if kind not in FLOW_KINDS or not name.lower().startswith("b2c_1"):
            raise ValueError(f"a user flow is B2C_1_<name> of a kind of {FLOW_KINDS}")
        with self._lock:
            self._b2c_flows[name.lower()] = (name, kind)

    def remove_b2c_user_flow(self, name: str) -> None:
        with self._lock:
            self._b2c_flows.pop(name.lower(), None)

    def _issuer(self, mode: str, tid: str | None = None) -> str:
        return self.ciam_issuer if mode == "ciam" else super()._issuer(mode, tid)

    def _other_issuers(self) -> set[str]:
        return {self.b2c_issuer, self.ciam_issuer}

    # ------------------------------------------------------------------ routing
    def _customer_route(self, req: _Request, segs: list[str]) -> _Response | None:
        """The B2C and External ID routes; None for every other request."""
        if len(segs) >= 3 and segs[1].lower().startswith("b2c_"):
            return self._b2c_route(req, segs[0], segs[1], "/".join(segs[2:]))
        if self.ciam_host(req) and len(segs) >= 2:
            return self._ciam_route(req, segs[0], "/".join(segs[1:]))
        return None

    def ciam_host(self, req: _Request) -> str | None:
        """The ciamlogin.com host or custom URL domain a request was sent to (External ID
        mode), else None."""
        host = (req.headers.get("Host") or "").split(":", 1)[0].lower()
        custom = host in self.ciam_custom_domains
        return host if host.endswith(CIAM_HOST_SUFFIX) or custom else None

    def _b2c_route(self, req: _Request, tenant: str, flow: str, rest: str) -> _Response:
        self.b2c_calls[rest] += 1
        browser = rest in ("oauth2/v2.0/authorize", "oauth2/v2.0/logout")
        if req.browser_only and not browser:
            return _json(404, {"error": "not_found", "error_description":
                               "Only sign-in and sign-out pages are served here."})
        found = self._b2c_flows.get(flow.lower())
        if tenant.lower() not in (self.b2c_tenant, self.tenant_id) or found is None:
            # B2C answers 404 for a tenant or user flow it does not have (as reported); the
            # body is UNCONFIRMED, so no AADB2C code is made up for it.
            message = (f"The policy '{flow}' does not exist in tenant '{tenant}'."
                       if found is None else f"The tenant '{tenant}' does not exist.")
            if browser:
                return _html(404, pages.problem_page("Not found", message))
            return _json(404, {"error": "not_found", "error_description": message})
        name, kind = found
        if rest == "v2.0/.well-known/openid-configuration":
            return _json(200, self._b2c_discovery(tenant, name))
        if rest == "discovery/v2.0/keys":
            return _json(200, {"keys": [self._key.jwk(self.b2c_issuer)]})
        if rest == "oauth2/v2.0/authorize":
            return self._b2c_authorize(req, name, kind)
        if rest == "oauth2/v2.0/token":
            return self._b2c_token(req, name)
        if rest == "oauth2/v2.0/logout":
            return self._b2c_logout(req)
        return _json(404, {"error": "not_found", "error_description": f"No route for {req.path}"})

    def _b2c_discovery(self, tenant: str, flow: str) -> dict[str, Any]:
        web = self._browser_base_url or self.base_url
        path = f"{tenant.lower()}/{flow.lower()}"
        return {
            "issuer": self.b2c_issuer,
            "authorization_endpoint": f"{web}/{path}/oauth2/v2.0/authorize",
            "token_endpoint": f"{self.base_url}/{path}/oauth2/v2.0/token",
            "end_session_endpoint": f"{web}/{path}/oauth2/v2.0/logout",
            "jwks_uri": f"{self.base_url}/{path}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "response_types_supported": ["code", "code id_token", "code token",
                                         "code id_token token", "id_token", "id_token token",
                                         "token", "token id_token"],
            "scopes_supported": ["openid"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post",
                                                      "client_secret_basic"],
            "claims_supported": ["name", "emails", "oid", "sub", "idp", "tfp", "iss", "iat",
                                 "exp", "aud", "acr", "nonce", "auth_time"],
        }

    # ------------------------------------------------------------------ errors
    def _b2c_error(self, e: _B2CError) -> dict[str, str]:
        stamp = datetime.fromtimestamp(self.now(), UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return {"error": e.error,
                "error_description": (f"AADB2C{e.code}: {e.message}\r\nCorrelation ID: "
                                      f"{uuid.uuid4()}\r\nTimestamp: {stamp}\r\n")}

    def _b2c_error_page(self, e: _B2CError) -> _Response:
        body = (f"<h1>Sorry, but we're having trouble signing you in.</h1>\n"
                f"<div class=\"error\"><p><strong>AADB2C{e.code}</strong>: "
                f"{escape(e.message)}</p></div>")
        return _html(e.status, pages._page(f"AADB2C{e.code}", body))

    # ------------------------------------------------------------------ /authorize
    def _b2c_authorize(self, req: _Request, flow: str, kind: str) -> _Response:
        q = req.query
        self.b2c_requests.append(("authorize", dict(q)))
        client = self._clients.get(q.get("client_id", ""))
        if client is None:
            return self._b2c_error_page(_B2CError(
                "invalid_request", 90018, f"The client ID '{q.get('client_id', '')}' specified "
                f"in the request is not registered in tenant '{self.b2c_tenant}'."))
        redirect_uri = q.get("redirect_uri", "")
        if not client.redirect_uri_allowed(redirect_uri):
            return self._b2c_error_page(_B2CError(
                "redirect_uri_mismatch", 90006, f"The redirect URI '{redirect_uri}' provided in "
                f"the request is not registered for the client ID '{client.client_id}'."))
        mode = q.get("response_mode") or "query"
        state = q.get("state")
        try:
            resource, names = self._b2c_scopes(q.get("scope", ""), client.client_id)
            if q.get("response_type") != "code":
                raise _B2CError("unsupported_response_type", 90013,
                                f"The requested response type '{q.get('response_type', '')}' "
                                "provided in the request is not supported.")
            action = req.form.get("action", "") if req.method == "POST" else ""
            if action == "cancel":
                raise _B2CError("access_denied", 90091,
                                "The user has canceled entering self-asserted information.")
            if action == "forgot" and kind == SIGN_UP_SIGN_IN:
                raise _B2CError("access_denied", 90118, "The user has forgotten their password.")
            username = self._b2c_user_for(req, kind, action)
        except _B2CError as e:
            params = {"error": e.error, "error_description": self._b2c_error(e)[
                "error_description"]}
            if state is not None:
                params["state"] = state
            return self._auth_response(redirect_uri, mode, params)
        if username is None:
            return _html(200, self._b2c_page(req, flow, kind, client.display_name))
        user = self._user(username)
        if kind == PROFILE_EDIT and req.form.get("name"):
            # The profile-edit flow writes the user's attributes (here: the display name).
            user = dataclasses.replace(user, name=req.form["name"].strip() or user.name)
            with self._lock:
                self.users[user.username.lower()] = user
        code = secrets.token_urlsafe(48)
        with self._lock:
            session_id = self._b2c_session(req) or secrets.token_urlsafe(24)
            self._b2c_sessions[session_id] = user.username
            self._b2c_codes[code] = _B2CCode(
                client.client_id, redirect_uri, flow.lower(), user.username, q.get("nonce"),
                q.get("code_challenge", ""), q.get("code_challenge_method") or "plain",
                resource, names, int(self.now()), self.now() + CODE_LIFETIME)
        params = {"code": code}
        if state is not None:
            params["state"] = state
        # The tenant's session: the browser comes back by top-level GET navigations (Lax).
        secure = "; Secure" if req.origin.startswith("https:") else ""
        cookie = ("Set-Cookie", f"{_B2C_SESSION_COOKIE}={session_id}; Path=/; HttpOnly; "
                                f"SameSite=Lax{secure}")
        return self._auth_response(redirect_uri, mode, params, [cookie])

    def _b2c_session(self, req: _Request) -> str | None:
        for part in (req.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == _B2C_SESSION_COOKIE and value in self._b2c_sessions:
                return value
        return None

    def _b2c_user_for(self, req: _Request, kind: str, action: str) -> str | None:
        """Who signs in: the user picked on the page (POST), or for the sign-up and sign-in
        flow the browser's B2C session (single sign-on, unless prompt=login); None: show the
        page."""
        if req.method == "POST":
            if action != "accept":
                raise _B2CError("invalid_request", 90083,
                                "The request is missing required parameter: action.")
            try:
                return self._user(req.form.get("username", "")).username
            except KeyError:
                raise _B2CError("invalid_request", 90053, "A user with the specified "
                                "credential could not be found.") from None
        session = self._b2c_session(req)
        if kind == SIGN_UP_SIGN_IN and session and req.query.get("prompt") != "login":
            return self._b2c_sessions[session]
        return None

    def _b2c_scopes(self, raw: str, client_id: str) -> tuple[str | None, set[str]]:
        """The API a B2C request asks for (one resource, or none) and its scope names. Microsoft
        Graph and unknown APIs are refused (B2C issues tokens for the tenant's own APIs only)."""
        if not raw.strip():
            raise _B2CError("invalid_request", 90010,
                            "The request does not contain a scope parameter.")
        others = " ".join(s for s in raw.split() if s.lower() not in _B2C_SCOPES | {"profile",
                                                                                     "email"})
        if not others:
            return None, set()
        try:
            _, resources = self._parse_scopes(others, client_id)
        except OAuthError:
            resources = {GRAPH_RESOURCE: set()}
        if GRAPH_RESOURCE in resources or len(resources) != 1:
            # UNCONFIRMED: the code B2C answers a Microsoft Graph (or unknown) scope with.
            raise _B2CError("invalid_scope", 90117,
                            f"The scope '{others}' provided in the request is not supported.")
        ((resource, names),) = resources.items()
        return resource, names

    def _b2c_page(self, req: _Request, flow: str, kind: str, app_name: str) -> str:
        action = escape(req.path + ("?" + req.raw_query if req.raw_query else ""), quote=True)
        title = {SIGN_UP_SIGN_IN: f"Sign in to {app_name}",
                 PASSWORD_RESET: "Reset your password",
                 PROFILE_EDIT: "Edit your profile"}[kind]
        session = self._b2c_session(req)
        people = [self._user(self._b2c_sessions[session])] if (
            session and kind == PROFILE_EDIT) else list(self.users.values())
        forms = []
        for user in people:
            extra = ""
            if kind == PROFILE_EDIT:
                extra = (f"<label>Display name <input name=\"name\" "
                         f"value=\"{escape(user.name, quote=True)}\"></label>")
            elif kind == PASSWORD_RESET:
                extra = "<label>New password <input type=\"password\" name=\"password\"></label>"
            forms.append(
                f"<form class=\"user\" method=\"post\" action=\"{action}\">"
                f"<span class=\"who\">{escape(user.name)}<small>{escape(user.username)}"
                f"</small></span>{extra}"
                f"<input type=\"hidden\" name=\"username\" "
                f"value=\"{escape(user.username, quote=True)}\">"
                "<button type=\"submit\" name=\"action\" value=\"accept\">Continue</button>"
                "</form>")
        links = ""
        if kind == SIGN_UP_SIGN_IN:
            links = (f"<form method=\"post\" action=\"{action}\"><button class=\"secondary\" "
                     "type=\"submit\" name=\"action\" value=\"forgot\">Forgot your password?"
                     "</button></form>")
        links += (f"<form method=\"post\" action=\"{action}\"><button class=\"secondary\" "
                  "type=\"submit\" name=\"action\" value=\"cancel\">Cancel</button></form>")
        body = (f"<h1>{escape(title)}</h1>\n<p>Azure AD B2C user flow <code>{escape(flow)}"
                "</code>; choose a test user:</p>\n" + "\n".join(forms) + "\n" + links)
        return pages._page(title, body)

    # ------------------------------------------------------------------ /token
    def _b2c_token(self, req: _Request, flow: str) -> _Response:
        form = req.form
        self.b2c_requests.append(("token", {k: v for k, v in form.items()
                                            if k not in ("client_secret", "code",
                                                         "refresh_token", "code_verifier")}))
        try:
            try:
                client = self._authenticate_client(req, "entra")
            except OAuthError as e:
                if e.error == "invalid_client":
                    raise _B2CError("invalid_client", 90081, "The specified client_secret does "
                                    "not match the expected value for this client. Please "
                                    "correct the client_secret and try again.", 401) from None
                raise _B2CError(e.error, 90083, e.message) from None
            grant = form.get("grant_type", "")
            with self._lock:
                if grant == "authorization_code":
                    result = self._b2c_redeem(form, client.client_id, flow)
                elif grant == "refresh_token":
                    result = self._b2c_refresh_grant(form, client.client_id, flow)
                else:
                    raise _B2CError("unsupported_grant_type", 90086,
                                    f"The supplied grant_type [{grant}] is not supported.")
        except _B2CError as e:
            return _json(e.status, self._b2c_error(e))
        return _json(200, result)

    def _b2c_redeem(self, form: dict[str, str], client_id: str, flow: str) -> dict[str, Any]:
        code = self._b2c_codes.get(form.get("code", ""))
        if code is None or code.used or code.client_id != client_id:
            raise _B2CError("invalid_grant", 90080,
                            "The provided grant has expired. Please re-authenticate and try "
                            "again.")
        if code.flow != flow.lower():
            raise _B2CError("invalid_grant", 90088, "The provided grant has not been issued "
                            f"for this endpoint. Actual Value : {code.flow} and Expected "
                            f"Value : {flow}")
        if self.now() > code.expires:
            raise _B2CError("invalid_grant", 90080, "The provided grant has expired. Please "
                            "re-authenticate and try again.")
        if form.get("redirect_uri") != code.redirect_uri:
            # UNCONFIRMED: B2C's code for a redirect URI differing from the authorize request's.
            raise _B2CError("invalid_grant", 90006, f"The redirect URI "
                            f"'{form.get('redirect_uri', '')}' provided in the request does not "
                            "match the one of the authorization request.")
        if code.challenge:
            verifier = form.get("code_verifier", "")
            computed = (_b64url(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
                        if code.method == "S256" else verifier)
            if not verifier or not hmac.compare_digest(computed, code.challenge):
                # UNCONFIRMED: B2C's code for a PKCE verifier that does not match.
                raise _B2CError("invalid_grant", 90183, "The code_verifier does not match "
                                "the code_challenge supplied in the authorization request.")
        code.used = True
        return self._b2c_tokens(client_id, code.flow, self._user(code.username), code.resource,
                                code.names, nonce=code.nonce, auth_time=code.auth_time,
                                id_token=True, client_info="client_info" in form)

    def _b2c_refresh_grant(self, form: dict[str, str], client_id: str,
                           flow: str) -> dict[str, Any]:
        rt = self._b2c_refresh.get(form.get("refresh_token", ""))
        if rt is None or rt.client_id != client_id or self.now() > rt.expires:
            raise _B2CError("invalid_grant", 90080, "The provided grant has expired. Please "
                            "re-authenticate and try again.")
        if rt.flow != flow.lower():
            raise _B2CError("invalid_grant", 90088, "The provided grant has not been issued "
                            f"for this endpoint. Actual Value : {rt.flow} and Expected Value "
                            f": {flow}")
        # Any API of the tenant the app may call (B2C has no user consent).
        resource, names = self._b2c_scopes(form.get("scope", "openid"), client_id)
        return self._b2c_tokens(client_id, rt.flow, self._user(rt.username), resource, names,
                                nonce=None, auth_time=None, id_token=True,
                                client_info="client_info" in form)

    def _b2c_tokens(self, client_id: str, flow: str, user: TestUser, resource: str | None,
                    names: set[str], *, nonce: str | None, auth_time: int | None,
                    id_token: bool, client_info: bool) -> dict[str, Any]:
        now = int(self.now())
        common: dict[str, Any] = {"iss": self.b2c_issuer, "sub": user.oid,
                  "tfp": self._b2c_flows.get(flow, (flow, ""))[0], "iat": now, "nbf": now,
                  "exp": now + self.access_token_lifetime, "ver": "1.0"}
        # The user flow's application claims, in its ID and access tokens alike.
        wanted = {"name": user.name, "emails": [user.username], "oid": user.oid,
                  "given_name": user.given_name, "family_name": user.surname}
        common.update({k: v for k, v in wanted.items() if k in self.b2c_claims})
        claims = {"aud": client_id, **common}
        if nonce is not None:
            claims["nonce"] = nonce
        if auth_time is not None:
            claims["auth_time"] = auth_time
        claims.update(self.id_token_overrides)
        refresh = secrets.token_urlsafe(64)
        self._b2c_refresh[refresh] = _B2CRefresh(client_id, flow, user.username, resource,
                                                 set(names), self.now() + REFRESH_TOKEN_LIFETIME)
        out: dict[str, Any] = {
            "token_type": "Bearer", "not_before": now,
            "id_token_expires_in": self.access_token_lifetime,
            "refresh_token": refresh,
            "refresh_token_expires_in": REFRESH_TOKEN_LIFETIME,
        }
        if id_token:
            out["id_token"] = self._sign(claims)
        if resource is not None:
            api = self._api_for(resource)
            scopes = sorted(names)
            access = {**common, "aud": api.audience if api else resource, "azp": client_id,
                      "scp": " ".join(scopes)}
            out.update(access_token=self._sign(access), expires_in=self.access_token_lifetime,
                       scope=" ".join(f"{resource}/{s}" for s in scopes))
        if client_info:
            # B2C's home account: the object id and the user flow, in the tenant.
            out["client_info"] = _b64url(json.dumps(
                {"uid": f"{user.oid}-{flow}", "utid": self.tenant_id},
                separators=(",", ":")).encode())
        return out

    # ------------------------------------------------------------------ logout
    def _b2c_logout(self, req: _Request) -> _Response:
        params = {**req.query, **req.form}
        self.b2c_requests.append(("logout", {k: v for k, v in params.items()
                                             if k != "id_token_hint"}))
        with self._lock:
            session = self._b2c_session(req)
            if session:
                self._b2c_sessions.pop(session, None)
        # The browser's session ends; B2C sends it back only to a redirect URI of the app
        # (UNCONFIRMED: B2C's check of post_logout_redirect_uri), else shows its own page.
        gone = [("Set-Cookie", f"{_B2C_SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; "
                               "SameSite=Lax")]
        target = params.get("post_logout_redirect_uri")
        client = self._clients.get(params.get("client_id", ""))
        if target and client is not None and client.redirect_uri_allowed(target):
            return _redirect(target, gone)
        return _html(200, pages.signed_out_page(None, None), gone)

    # ------------------------------------------------------------------ External ID
    def _ciam_route(self, req: _Request, tenant: str, rest: str) -> _Response | None:
        host = self.ciam_host(req)
        assert host is not None
        # A custom URL domain names the tenant by its id (UNCONFIRMED: whether it takes the
        # onmicrosoft.com name too).
        derived = (host[: -len(CIAM_HOST_SUFFIX)] + ".onmicrosoft.com"
                   if host.endswith(CIAM_HOST_SUFFIX) else self.tenant_id)
        if tenant.lower() not in (derived, self.tenant_id):
            e = OAuthError("invalid_tenant", 90002,
                           f"Tenant '{tenant}' not found. Check to make sure you have the "
                           "correct tenant ID and are signing into the correct cloud.")
            return _json(400, self._error_fields(e, req))
        if rest == "v2.0/.well-known/openid-configuration":
            # Entra's document, its endpoints on the ciamlogin.com host the app asked.
            document = self._discovery(self.tenant_id, "entra")
            ours = f"{self.base_url}/{self.tenant_id}/"
            for key, value in list(document.items()):
                if isinstance(value, str) and value.startswith(ours):
                    document[key] = f"https://{req.headers.get('Host')}/{tenant}/{value[len(ours):]}"
            document["issuer"] = self.ciam_issuer
            return _json(200, document)
        if rest == "discovery/v2.0/keys":
            return _json(200, self._jwks())
        if rest in ("oauth2/v2.0/authorize", "oauth2/v2.0/logout"):
            return self._browser_endpoint(req, rest.rsplit("/", 1)[1], tenant, "ciam")
        if rest == "oauth2/v2.0/token":
            return self._token(req, "ciam")
        return None

