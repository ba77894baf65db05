"""The identity-provider endpoints of the stand-in: discovery, keys, /authorize, /token, logout.

``_IdentityEndpoints`` answers requests that ``StandIn._route`` sends it, under ``/{tenant}/...``
(Entra style, with ``client_info``) or ``/oidc/...`` (a strict generic OpenID Connect provider,
``mode == "oidc"``). Errors are ``OAuthError``s, answered the way the provider answers them: an
error page when the redirect URI cannot be trusted, a redirect with ``error`` parameters, or error
JSON from /token (Entra's, with AADSTS codes, or RFC 6749's plain ``error`` and description).

/token authenticates the client (``_authenticate_client``) by one of its secrets, a private-key
JWT signed by one of its certificates, or a federated token matching one of its federated
identity credentials; the codes are listed in ``standin.py``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import ssl
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote_plus, urlencode, urlsplit, urlunsplit

import jwt

from . import pages
from .model import (
    ASSERTION_TYPE,
    CLOCK_SKEW,
    CODE_LIFETIME,
    GRAPH_RESOURCE,
    GROUPS_CLAIM_LIMIT,
    REFRESH_TOKEN_LIFETIME,
    TENANT_PLACEHOLDER,
    ClientAuth,
    ErrorPage,
    OAuthError,
    TestUser,
    _AuthRequest,
    _Client,
    _Code,
    _merge_claims,
    _RefreshToken,
)
from .server import _html, _json, _redirect, _Request, _Response
from .tenant import _Tenant
from .tokens import (
    _b64url,
    _check_client_assertion,
    _check_strict_assertion,
    _thumbprint,
    _unverified,
    _verify_federated,
)

# Access tokens living longer than this (two hours) come with `refresh_in` (see _tokens).
REFRESH_IN_ABOVE = 7200
_SESSION_COOKIE = "devprovider_session"


def _missing_parameter(name: str) -> OAuthError:
    """Entra's answer to a request without a required parameter."""
    return OAuthError("invalid_request", 900144,
                      f"The request body must contain the following parameter: '{name}'.")


class _IdentityEndpoints(_Tenant):
    """Discovery, JWKS, /authorize (sign-in and consent pages), /token grants and logout."""

    # ------------------------------------------------------------------ discovery, keys, errors
    def _tenant_ok(self, tenant: str) -> bool:
        return self._tenant_segment_ok(tenant)

    def _browser_endpoint(self, req: _Request, what: str, tenant: str, mode: str) -> _Response:
        if what == "authorize":
            return self._authorize(req, tenant, mode)
        return self._logout(req, mode)

    def _discovery(self, tenant: str, mode: str) -> dict[str, Any]:
        web = self._browser_base_url or self.base_url
        if mode == "oidc":
            prefix = f"{self.base_url}/oidc"
            issuer = self.oidc_issuer
            auth, token, keys, logout = (f"{web}/oidc/authorize", f"{prefix}/token",
                                         f"{prefix}/keys", f"{web}/oidc/logout")
        else:
            prefix = f"{self.base_url}/{tenant}"
            # Like Entra: for organizations/common the issuer holds the literal placeholder
            # "{tenantid}" (tokens carry the real tenant id), while the endpoints keep the alias.
            generic = tenant.lower() in ("organizations", "common")
            named = self._tenant_of(tenant)
            issuer = (f"{self.base_url}/{TENANT_PLACEHOLDER}/v2.0" if generic
                      else self.issuer_of(named.tenant_id if named else self.tenant_id))
            auth = f"{web}/{tenant}/oauth2/v2.0/authorize"
            token = f"{prefix}/oauth2/v2.0/token"
            keys = f"{prefix}/discovery/v2.0/keys"
            logout = f"{web}/{tenant}/oauth2/v2.0/logout"
        return {
            "token_endpoint": token,
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                      "client_secret_basic"],
            "jwks_uri": keys,
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": issuer,
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{self.base_url}/graph/oidc/userinfo",
            "authorization_endpoint": auth,
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": logout,
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
                                 "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat",
                                 "auth_time", "acr", "nonce", "preferred_username", "name", "tid",
                                 "ver", "at_hash", "c_hash", "email"],
            "code_challenge_methods_supported": ["plain", "S256"],
            "tenant_region_scope": "WW",
            "cloud_instance_name": "stand-in.local",
            "msgraph_host": urlsplit(self.base_url).netloc,
        }

    def _jwks(self) -> dict[str, Any]:
        return {"keys": [self._key.jwk(self.issuer)]}

    def _error_page(self, status: int, e: OAuthError, req: _Request) -> _Response:
        fields = self._error_fields(e, req)
        details = {"Request Id": fields["trace_id"], "Correlation Id": fields["correlation_id"],
                   "Timestamp": fields["timestamp"], "Error": e.error}
        return _html(status, pages.error_page(e.code, e.message, details))

    # ------------------------------------------------------------------ /authorize
    def _authorize(self, req: _Request, tenant: str, mode: str) -> _Response:
        with self._lock:
            if req.method == "GET":
                self.authorize_calls += 1
        q = req.query
        client_id = q.get("client_id", "")
        if not client_id:
            return self._error_page(400, _missing_parameter("client_id"), req)
        client = self._clients.get(client_id)
        if client is None:
            return self._error_page(400, OAuthError(
                "unauthorized_client", 700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.tenant_domain}'. This can happen if the application has not been "
                "installed by the administrator of the tenant or consented to by any user in the "
                "tenant. You may have sent your authentication request to the wrong tenant."), req)
        redirect_uri = q.get("redirect_uri", "")
        if not redirect_uri or not client.redirect_uri_allowed(redirect_uri):
            # Never redirect to an unregistered URI: an error page, like Entra's AADSTS50011.
            return self._error_page(400, OAuthError(
                "invalid_request", 50011,
                f"The redirect URI '{redirect_uri}' specified in the request does not match the "
                f"redirect URIs configured for the application '{client_id}'. Make sure the "
                "redirect URI sent in the request matches one added to your application in the "
                "Azure portal."), req)
        state = q.get("state")
        response_mode = q.get("response_mode") or "query"
        try:
            if response_mode not in ("query", "fragment", "form_post"):
                response_mode = "query"
                # UNCONFIRMED code: Entra's number for an unknown response_mode.
                raise OAuthError("invalid_request", 900144,
                                 "The provided value for the input parameter 'response_mode' is "
                                 "not valid.")
            self._check_audience(client, tenant)
            ar = self._validate_authorize(q, client, redirect_uri, response_mode, state)
            ar.tenant = tenant
            if req.method == "POST":
                return self._authorize_post(req, ar, mode)
            if ar.prompt == "none":
                return self._authorize_silent(req, ar, mode)
        except ErrorPage as e:  # what Entra shows on its own page, never sent to the app
            return self._error_page(400, e, req)
        except OAuthError as e:
            return self._auth_response(redirect_uri, response_mode,
                                       self._redirect_error_params(e, state, req, mode))
        return self._sign_in_page(req, ar)

    def _validate_authorize(self, q: Mapping[str, str], client: _Client, redirect_uri: str,
                            response_mode: str, state: str | None) -> _AuthRequest:
        if q.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", 700054,
                             f"response_type '{q.get('response_type', '')}' is not enabled for "
                             "the application.")
        scope = q.get("scope", "").strip()
        if not scope:
            raise _missing_parameter("scope")
        oidc, resources = self._parse_scopes(scope, client.client_id)
        challenge = q.get("code_challenge", "")
        method = q.get("code_challenge_method") or "plain"  # RFC 7636 default
        if not challenge:
            # Stricter than Entra for confidential web apps (Entra only requires PKCE for SPAs,
            # AADSTS9002325): every generated app uses PKCE, so its absence is a bug.
            raise OAuthError("invalid_request", 9002325,
                             "Proof Key for Code Exchange is required for cross-origin "
                             "authorization code redemption.")
        if method not in ("S256", "plain"):
            # UNCONFIRMED code number.
            raise OAuthError("invalid_request", 501491,
                             "Invalid code_challenge_method; only S256 and plain are supported.")
        if not 43 <= len(challenge) <= 128:
            raise OAuthError("invalid_request", 501491, "Invalid size of Code_Challenge parameter.")
        claims = None
        if q.get("claims"):
            try:
                claims = json.loads(q["claims"])
                if not isinstance(claims, dict):
                    raise TypeError
            except (ValueError, TypeError):
                # UNCONFIRMED code number.
                raise OAuthError("invalid_request", 90100,
                                 "The claims parameter is not valid JSON.") from None
        return _AuthRequest(client, redirect_uri, response_mode, state, q.get("nonce"), scope,
                            oidc, resources, challenge, method, claims, q.get("login_hint"),
                            q.get("prompt"))

    def _redirect_error_params(self, e: OAuthError, state: str | None, req: _Request,
                               mode: str) -> dict[str, str]:
        fields = self._error_fields(e, req, mode)
        params = {"error": e.error, "error_description": fields["error_description"]}
        if mode != "oidc":  # Entra, or External ID ("ciam")
            params["error_uri"] = fields["error_uri"]
            if e.suberror:
                params["suberror"] = e.suberror
        if state is not None:
            params["state"] = state
        return params

    def _auth_response(self, redirect_uri: str, response_mode: str, params: dict[str, str],
                       headers: Sequence[tuple[str, str]] = ()) -> _Response:
        if response_mode == "form_post":
            return _html(200, pages.form_post_page(redirect_uri, params), headers)
        url = urlsplit(redirect_uri)
        path = url.path or "/"  # Entra adds a trailing "/" to path-less redirect URIs
        if response_mode == "fragment":
            return _redirect(urlunsplit((url.scheme, url.netloc, path, url.query,
                                         urlencode(params))), headers)
        query = f"{url.query}&{urlencode(params)}" if url.query else urlencode(params)
        return _redirect(urlunsplit((url.scheme, url.netloc, path, query, "")), headers)

    def _sign_in_page(self, req: _Request, ar: _AuthRequest) -> _Response:
        hint = (ar.login_hint or "").lower()
        users = sorted(self.users.values(), key=lambda u: u.username.lower() != hint)
        lines = sorted(ar.oidc - {"offline_access"})
        if "offline_access" in ar.oidc:
            lines.append("offline_access (keep access to data you have given it access to)")
        for resource, names in ar.resources.items():
            if resource == GRAPH_RESOURCE:
                lines += [f"Microsoft Graph: {n}" for n in sorted(names)]
            else:
                lines += [f"{resource}/{n}" for n in sorted(names)]
        action = req.path + ("?" + req.raw_query if req.raw_query else "")
        return _html(200, pages.sign_in_page(
            app_name=ar.client.display_name, form_action=action, scope_lines=lines,
            users=[(u.username, u.name, u.username.lower() == hint, self._access_summary(u))
                   for u in users]))

    def _access_summary(self, user: TestUser) -> str:
        """A user's app roles and groups in a line, so a developer can pick whom to try."""
        parts = [f"roles: {', '.join(user.roles)}"] if user.roles else []
        if user.groups:
            named = [self.group_names[g] for g in user.groups if g in self.group_names]
            others = len(user.groups) - len(named)
            listed = named + ([f"{others} other group{'s' if others > 1 else ''}"]
                              if others else [])
            overage = (f" (over {GROUPS_CLAIM_LIMIT}: not in the token, an overage claim)"
                       if len(user.groups) > GROUPS_CLAIM_LIMIT else "")
            parts.append(f"groups: {', '.join(listed)}{overage}")
        return "; ".join(parts) or "no app roles, no groups"

    def _authorize_post(self, req: _Request, ar: _AuthRequest, mode: str) -> _Response:
        action = req.form.get("action", "")
        if action == "decline":
            raise OAuthError("access_denied", 65004,
                             "User declined to consent to access the app.")
        if action != "accept":
            raise _missing_parameter("action")
        try:
            user = self._user(req.form.get("username", ""))
        except KeyError:
            # UNCONFIRMED code number; Entra shows its own page for an unknown account.
            raise OAuthError("invalid_request", 50034,
                             "The user account does not exist in the directory.") from None
        with self._lock:
            for resource, names in ar.resources.items():
                self._add_consent(user.username, ar.client.client_id, resource, names)
            session_id = self._session_id(req) or secrets.token_urlsafe(24)
            accounts = self._sessions.setdefault(session_id, {})
            accounts.setdefault(user.username, set()).add(ar.client.client_id)
            sid = self._provider_sid(session_id, user.username)
        return self._issue_code(ar, user, mode, [self._session_cookie(req, session_id)], sid)

    # ------------------------------------------------------------------ browser sessions
    def _session_id(self, req: _Request) -> str | None:
        """The id of the provider session the browser's cookie names, if it still exists."""
        for part in (req.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == _SESSION_COOKIE and value in self._sessions:
                return value
        return None

    def _session_cookie(self, req: _Request, session_id: str | None) -> tuple[str, str]:
        """Set-Cookie for the provider session (``None``: delete it). Lax is enough: the
        browser comes back to the provider by top-level GET navigations."""
        secure = "; Secure" if req.origin.startswith("https:") else ""
        if session_id is None:
            return ("Set-Cookie", f"{_SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; "
                                  f"SameSite=Lax{secure}")
        return ("Set-Cookie", f"{_SESSION_COOKIE}={session_id}; Path=/; HttpOnly; "
                              f"SameSite=Lax{secure}")

    def _authorize_silent(self, req: _Request, ar: _AuthRequest, mode: str) -> _Response:
        """``prompt=none``: succeed only for an account signed in to the provider session (the
        ``login_hint`` one when several are) that has consented to everything asked for."""
        with self._lock:
            session_id = self._session_id(req)
            accounts = self._sessions.get(session_id, {}) if session_id else {}
            hint = (ar.login_hint or "").lower()
            candidates = [name for name in accounts if not hint or name.lower() == hint]
            if len(candidates) != 1:
                raise OAuthError("login_required", 50058,
                                 "A silent sign-in request was sent but no user is signed in.")
            accounts[candidates[0]].add(ar.client.client_id)
            assert session_id is not None  # accounts were found under it
            sid = self._provider_sid(session_id, candidates[0])
        user = self._user(candidates[0])
        for resource, names in ar.resources.items():
            consented = self._consented(user.username, ar.client.client_id, resource)
            if not (names - {".default"}) <= consented or (".default" in names and not consented):
                raise OAuthError("consent_required", 65001,
                                 f"The user or administrator has not consented to use the "
                                 f"application with ID '{ar.client.client_id}'. Send an "
                                 "interactive authorization request for this user and resource.")
        return self._issue_code(ar, user, mode, [], sid)

    def _provider_sid(self, session_id: str, username: str) -> str:
        """The `sid` of `username`'s session at the provider in browser session `session_id`
        (new at its first sign-in there); under the lock."""
        return self._provider_sids.setdefault((session_id, username), str(uuid.uuid4()))

    def _issue_code(self, ar: _AuthRequest, user: TestUser, mode: str,
                    headers: list[tuple[str, str]], sid: str) -> _Response:
        tid = self._token_tenant(user, ar.client, ar.tenant)
        code = secrets.token_urlsafe(64)
        now = self.now()
        with self._lock:
            granted: dict[str, set[str]] = {}
            for resource, names in ar.resources.items():
                # ".default" grants what is consented for the resource, and keeps that meaning.
                extra = (self._consented(user.username, ar.client.client_id, resource)
                         if ".default" in names else set())
                granted[resource] = set(names) | extra
            self._codes[code] = _Code(
                client_id=ar.client.client_id, redirect_uri=ar.redirect_uri,
                code_challenge=ar.code_challenge, code_challenge_method=ar.code_challenge_method,
                nonce=ar.nonce, oidc=set(ar.oidc), username=user.username, claims=ar.claims,
                sid=sid, auth_time=int(now), expires=now + CODE_LIFETIME, mode=mode,
                resources=granted, family=secrets.token_urlsafe(12), tid=tid)
        params = {"code": code}
        if mode != "oidc":  # Entra, or External ID ("ciam")
            params["client_info"] = self.client_info(user)
        if ar.state is not None:
            params["state"] = ar.state
        params["session_state"] = sid
        return self._auth_response(ar.redirect_uri, ar.response_mode, params, headers)

    # ------------------------------------------------------------------ /token
    def _token(self, req: _Request, mode: str) -> _Response:
        form = req.form
        grant = form.get("grant_type", "")
        with self._lock:
            self.token_calls[grant] += 1  # counted whatever the outcome
        if "token_unavailable" in self.faults:
            # An outage of the token service, as Entra reports one (503 + Retry-After).
            return _json(503, {"error": "temporarily_unavailable",
                               "error_description": "AADSTS90033: A transient error has "
                               "occurred. Please try again."}, [("Retry-After", "1")])
        try:
            if req.method != "POST":
                raise OAuthError("invalid_request", 900561,
                                 "The endpoint only accepts POST requests. Received a "
                                 f"{req.method} request.")
            client = self._authenticate_client(req, mode)
            if grant == "authorization_code":
                result = self._grant_code(req, client, mode)
            elif grant == "refresh_token":
                result = self._grant_refresh(req, client, mode)
            elif grant == "client_credentials":
                result = self._grant_client_credentials(req, client)
            elif not grant:
                raise _missing_parameter("grant_type")
            else:
                raise OAuthError("unsupported_grant_type", 70003,
                                 f"The app requested an unsupported grant type '{grant}'.")
        except OAuthError as e:
            return _json(e.status, self._error_fields(e, req, mode))
        with self._lock:
            self.token_grants[grant] += 1
        return _json(200, result)

    def _authenticate_client(self, req: _Request, mode: str) -> _Client:
        """The client the request authenticates as (a secret, in the body or by Basic, or a
        client assertion), recorded in ``client_auth_log``; else ``OAuthError``."""
        form = req.form
        basic_id = basic_secret = None
        auth = req.headers.get("Authorization") or ""
        if auth[:6].lower() == "basic ":
            try:
                raw = base64.b64decode(auth[6:].strip()).decode()
            except ValueError:
                raw = ""
            user, _, password = raw.partition(":")
            # RFC 6749 2.3.1: both parts are form-urlencoded before base64.
            basic_id, basic_secret = unquote_plus(user), unquote_plus(password)
        client_id = basic_id or form.get("client_id", "")
        if not client_id:
            raise _missing_parameter("client_id")
        client = self._clients.get(client_id)
        if client is None:
            raise OAuthError("unauthorized_client", 700016,
                             f"Application with identifier '{client_id}' was not found in the "
                             f"directory '{self.tenant_domain}'.")
        secret = basic_secret if basic_id else form.get("client_secret")
        assertion = form.get("client_assertion")
        if assertion:
            method, credential = self._check_assertion(req, client, assertion, mode)
        elif secret is not None:
            method, credential = "secret", self._check_secret(client, secret)
        else:
            raise OAuthError("invalid_client", 7000218,
                             "The request body must contain the following parameter: "
                             "'client_assertion' or 'client_secret'.", status=401)
        with self._lock:
            self.client_auth_log.append(ClientAuth(client.client_id, method, credential,
                                                   form.get("grant_type", "")))
        return client

    def _check_secret(self, client: _Client, secret: str) -> str:
        """The key id of the client's secret ``secret``; else 7000215 (or 7000222, expired)."""
        with self._lock:
            candidates = list(client.secrets)
        # Compare with every secret (constant time each): which one matched is not timed.
        matched = [s for s in candidates
                   if hmac.compare_digest(secret.encode(), s.value.encode())]
        if not matched:
            raise OAuthError("invalid_client", 7000215,
                             "Invalid client secret provided. Ensure the secret being sent in "
                             "the request is the client secret value, not the client secret "
                             f"ID, for a secret added to app '{client.client_id}'.", status=401)
        found = matched[0]
        if found.expires_at is not None and found.expires_at <= self.now():
            raise OAuthError("invalid_client", 7000222,
                             f"The provided client secret keys for app '{client.client_id}' "
                             "are expired. Visit the Azure portal to create new keys for your "
                             "app: https://aka.ms/NewClientSecret, or consider using "
                             "certificate credentials for added security: "
                             "https://aka.ms/certCreds.", status=401)
        return found.key_id

    def _check_assertion(self, req: _Request, client: _Client, assertion: str,
                         mode: str) -> tuple[str, str]:
        """Check a client assertion: (method, credential) for ``client_auth_log``.

        An assertion whose ``iss`` is not the client id is a federated token (workload
        identity federation); else a private-key JWT signed by a registered certificate,
        checked as Entra does, or in the strict OIDC mode by the standard's rules."""
        if req.form.get("client_assertion_type") != ASSERTION_TYPE:
            raise _missing_parameter("client_assertion_type")
        header, unverified = _unverified(assertion)
        iss = unverified.get("iss")
        # A federated token is issued by someone else and names its key by kid; a private-key
        # JWT is issued by the client itself (or names a certificate by its thumbprint, even
        # when its iss is wrong: then the certificate checks answer). How Entra tells them
        # apart is UNCONFIRMED.
        names_certificate = "x5t" in header or "x5t#S256" in header
        if isinstance(iss, str) and iss != client.client_id and not names_certificate:
            return "federated", self._check_federated(client, assertion, header, unverified)
        token_url = self.base_url + req.path
        if mode != "oidc":
            # Entra accepts the same assertion (same jti) again while it is valid: MSAL
            # reuses one for 9 minutes.
            cert = _check_client_assertion(assertion, client, token_url=token_url,
                                           now=self.now())
            return "certificate", _thumbprint(cert)
        now = self.now()
        cert, claims = _check_strict_assertion(assertion, client, now=now,
                                               audiences={token_url, self.oidc_issuer})
        with self._lock:  # check-and-record: of two uses of one jti, exactly one succeeds
            for used, until in list(self._used_jtis.items()):
                if until < now:
                    del self._used_jtis[used]
            key = (client.client_id, str(claims["jti"]))
            if key in self._used_jtis:
                # OpenID Connect Core 9: the JWT "MUST NOT be replayed"; RFC 7523 3 (7.).
                raise OAuthError("invalid_client", 0, "The client assertion was already used "
                                 "(its jti has been seen).", status=401)
            self._used_jtis[key] = float(claims["exp"]) + CLOCK_SKEW
        return "certificate", _thumbprint(cert)

    def _trusted_keys(self, issuer: str) -> dict[str, Any] | None:
        """The public keys (kid -> key) of a trusted issuer of federated tokens: an external
        issuer made by ``external_issuer`` or the stand-in's own Entra issuer (managed
        identities); None when the issuer is unknown."""
        if issuer == self.issuer:
            return {self._key.kid: self._key.public_key()}
        with self._lock:
            external = self._external_issuers.get(issuer)
        return external._public_keys() if external is not None else None

    def _check_federated(self, client: _Client, assertion: str, header: Mapping[str, Any],
                         unverified: Mapping[str, Any]) -> str:
        """Check a federated client assertion against the client's federated identity
        credentials, as Entra does: ``"{issuer}|{subject}"`` of the matching one, else
        ``OAuthError``. Issuer, subject and audience match case-sensitively; the same token
        may be presented again while it is valid."""
        issuer = str(unverified["iss"])
        with self._lock:
            records = list(client.federated)
        if not records:
            # Text as reported; the error value and status are UNCONFIRMED.
            raise OAuthError("invalid_client", 70025,
                             f"The client '{client.display_name}'({client.client_id}) has no "
                             "configured federated identity credentials.", status=401)
        check = ("Please check your federated identity credential Subject, Audience and Issuer "
                 "against the presented assertion. "
                 "https://learn.microsoft.com/entra/workload-id/workload-identity-federation")
        records = [r for r in records if r.issuer == issuer]
        if not records:
            raise OAuthError("invalid_client", 700211,
                             "No matching federated identity record found for presented "
                             f"assertion issuer '{issuer}'. {check}", status=401)
        keys = self._trusted_keys(issuer)
        if keys is None:
            # A credential names an issuer whose keys cannot be had (Entra fetches its
            # discovery document): the code, error value and status are as reported for
            # unreachable issuers (90061 before, 50166 now), UNCONFIRMED for this case.
            raise OAuthError("invalid_request", 50166,
                             "Request to External OIDC endpoint failed.")
        claims = _verify_federated(assertion, header, keys, issuer, self.now())
        if issuer == self.issuer and "scp" in claims:
            # Entra-issued tokens may be federated credentials only when app-only (managed
            # identities); the error value is UNCONFIRMED.
            raise OAuthError("invalid_client", 700229,
                             "Forbidden token type. Only app-only tokens may be used as "
                             "Federated Identity Credentials for AAD issuer.", status=401)
        subject = claims.get("sub")
        # Entra keys a federated credential by issuer and subject: the subject is matched
        # before the audience (which code wins when both differ is UNCONFIRMED).
        records = [r for r in records if r.subject == subject]
        if not records:
            raise OAuthError("invalid_client", 700213,
                             "No matching federated identity record found for presented "
                             f"assertion subject '{subject}'. {check}", status=401)
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if not any(r.audience in audiences for r in records):
            shown = " ".join(str(a) for a in audiences)
            raise OAuthError("invalid_client", 700212,
                             "No matching federated identity record found for presented "
                             f"assertion audience '{shown}'. {check}", status=401)
        with self._lock:
            system = self._system_identity
        if (issuer == self.issuer and system is not None and subject == system.object_id
                and not self.system_identity_federation):
            # A record matches, but Entra's page "Configure an application to trust a managed
            # identity" says: "Only user-assigned managed identities can be used as a federated
            # credential for apps. system-assigned identities aren't supported." Which answer
            # Entra gives is UNCONFIRMED: the stand-in answers its generic "no matching
            # federated identity record" (AADSTS70021) with that reason.
            raise OAuthError("invalid_client", 70021,
                             "No matching federated identity record found for presented "
                             f"assertion. Assertion Issuer: '{issuer}'. Assertion Subject: "
                             f"'{subject}'. Only user-assigned managed identities can be used "
                             f"as a federated credential for apps. {check}", status=401)
        return f"{issuer}|{subject}"

    def _one_resource(self, raw: str, client_id: str) -> tuple[set[str], str, set[str]]:
        oidc, resources = self._parse_scopes(raw, client_id)
        if len(resources) > 1:
            # AADSTS28000 text is Entra's; the `error` value is UNCONFIRMED (invalid_request, as
            # for its sibling 28003).
            raise OAuthError("invalid_request", 28000,
                             "Provided value for the input parameter scope is not valid because "
                             f"it contains more than one resource. Scope {raw} is not valid.")
        if not resources:
            # Only OIDC scopes: Entra issues a Graph token (usable for userinfo) whose scopes
            # are the OIDC ones ("openid profile email") plus what is consented for Graph.
            return oidc, GRAPH_RESOURCE, set()
        ((resource, names),) = resources.items()
        if ".default" in names and len(names) > 1:
            raise OAuthError("invalid_scope", 70011,
                             "The provided value for the input parameter 'scope' is not valid. "
                             f"The scope {raw} is not valid.")
        return oidc, resource, names

    def _consented_scopes(self, user: TestUser, client: _Client, resource: str,
                          names: set[str]) -> list[str]:
        """All consented scopes of ``resource`` (Entra puts all of them in the token), after
        checking that every requested one is consented (else consent_required)."""
        consented = self._consented(user.username, client.client_id, resource)
        wanted = names - {".default"}
        if not wanted <= consented or (".default" in names and not consented):
            raise OAuthError("invalid_grant", 65001,
                             f"The user or administrator has not consented to use the application "
                             f"with ID '{client.client_id}' named '{client.display_name}'. Send an "
                             "interactive authorization request for this user and resource.",
                             suberror="consent_required")
        return sorted(consented)

    def _tokens(self, *, client: _Client, user: TestUser, oidc: set[str], resource: str,
                names: set[str], sid: str, mode: str, id_token: bool, refresh_token: bool,
                nonce: str | None, auth_time: int | None, claims: dict[str, list[str]],
                stepped_up: dict[str, list[str]], family: str, granted_oidc: set[str],
                granted_resources: dict[str, set[str]], tid: str) -> dict[str, Any]:
        granted = self._consented_scopes(user, client, resource, names)
        if resource == GRAPH_RESOURCE:
            oidc_granted: list[str] = [s for s in ("openid", "profile") if s in oidc]
            if "openid" in oidc and mode != "oidc":
                # Entra adds email to Graph tokens with openid. A standard provider answers
                # with what it granted, which its refresh tokens may ask for again.
                oidc_granted.append("email")
            scp = granted + oidc_granted
            # Graph scopes in short form, like "User.Read profile openid email"
            scope = " ".join(scp)
        else:
            scp = granted
            scope = " ".join(f"{resource}/{s}" for s in granted)  # other APIs: full form
        extra: dict[str, Any] = {}
        for name, values in claims.items():
            # acrs and xms_cc are lists in Entra tokens; other claims carry their value.
            extra[name] = values if name in ("acrs", "xms_cc") or len(values) > 1 else values[0]
        if mode == "oidc":
            extra["uti"] = _b64url(secrets.token_bytes(16))
            with self._lock:
                self._generic_token_ids.add(extra["uti"])
            if resource != GRAPH_RESOURCE:
                extra["iss"] = self.oidc_issuer  # a generic provider's tokens name its issuer
        at = self._access_token(user, client.client_id, resource, scp, sid=sid, extra=extra,
                                tid=tid)
        out: dict[str, Any] = {
            "token_type": "Bearer", "scope": scope, "expires_in": self.access_token_lifetime,
            "ext_expires_in": self.access_token_lifetime, "access_token": at,
        }
        if self.access_token_lifetime > REFRESH_IN_ABOVE:
            # Long-lived tokens (continuous access evaluation: up to 28 hours) come with
            # `refresh_in`, when the client should refresh ahead of expiry; MSAL keeps it as the
            # token's `refresh_on`. Half the lifetime: what Entra's answers show (UNCONFIRMED as
            # a rule).
            out["refresh_in"] = self.access_token_lifetime // 2
        if refresh_token:
            rt = secrets.token_urlsafe(96)
            with self._lock:
                self._refresh_tokens[rt] = _RefreshToken(
                    client.client_id, user.username, sid, self.now() + REFRESH_TOKEN_LIFETIME,
                    mode, family, set(granted_oidc),
                    {r: set(n) for r, n in granted_resources.items()}, dict(stepped_up),
                    tid=tid)
            out["refresh_token"] = rt
        if id_token:
            out["id_token"] = self._id_token(user, client.client_id, oidc, mode=mode, sid=sid,
                                             nonce=nonce, auth_time=auth_time, tid=tid)
        if mode != "oidc":  # Entra, or External ID ("ciam")
            out["client_info"] = self.client_info(user)
        return out

    def _request_claims(self, form: Mapping[str, str]) -> dict[str, Any] | None:
        raw = form.get("claims")
        if not raw:
            return None
        try:
            claims = json.loads(raw)
        except ValueError:
            claims = None
        if not isinstance(claims, dict):
            raise OAuthError("invalid_request", 90100, "The claims parameter is not valid JSON.")
        return claims

    def _grant_code(self, req: _Request, client: _Client, mode: str) -> dict[str, Any]:
        form = req.form
        code_value = form.get("code", "")
        if not code_value:
            raise _missing_parameter("code")
        with self._lock:  # one lock for check-and-consume: a code is redeemed at most once
            code = self._codes.get(code_value)
            if code is None or code.mode != mode:
                raise OAuthError("invalid_grant", 9002313,
                                 "Invalid request. Request is malformed or invalid.")
            if code.used:
                if mode == "oidc":
                    # RFC 6749 4.1.2: a code used twice may have been stolen; revoke the tokens
                    # issued from it (their refresh tokens; access tokens simply expire).
                    self._revoke_family(code.family)
                    raise OAuthError("invalid_grant", 0, "Code not valid: it was already used.")
                raise OAuthError("invalid_grant", 54005,
                                 "OAuth2 Authorization code was already redeemed, please retry "
                                 "with a new valid code or use an existing refresh token.")
            if self.now() > code.expires:
                raise OAuthError("invalid_grant", 70008,
                                 "The provided authorization code or refresh token has expired "
                                 "due to inactivity. Send a new interactive authorization request "
                                 "for this user and resource.")
            if code.client_id != client.client_id:
                # UNCONFIRMED: Entra's exact code for a code issued to another app; 70000 is its
                # generic "grant is invalid" (InvalidGrant) code.
                raise OAuthError("invalid_grant", 70000,
                                 "Provided grant is invalid or malformed. The code was issued to "
                                 "another application.")
            if form.get("redirect_uri") != code.redirect_uri:
                # UNCONFIRMED: Entra's error value here; 500112 is its "reply address does not
                # match the one used to request the code" code. invalid_grant per RFC 6749 5.2.
                raise OAuthError("invalid_grant", 500112,
                                 f"The reply address '{form.get('redirect_uri', '')}' does not "
                                 f"match the reply address '{code.redirect_uri}' provided when "
                                 "requesting Authorization code.")
            verifier = form.get("code_verifier", "")
            if code.code_challenge_method == "S256":
                computed = _b64url(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
            else:
                computed = verifier
            if not verifier or not hmac.compare_digest(computed, code.code_challenge):
                raise OAuthError("invalid_grant", 501481,
                                 "The Code_Verifier does not match the code_challenge supplied in "
                                 "the authorization request.")
            raw_scope = form.get("scope", "").strip()
            if not raw_scope:
                raise OAuthError("invalid_request", 28003,
                                 "Provided value for the input parameter scope cannot be empty "
                                 "when requesting an access token using the provided "
                                 "authorization code. Please specify a valid scope.")
            oidc, resource, names = self._one_resource(raw_scope, client.client_id)
            if mode == "oidc":
                self._check_granted(oidc, resource, names, code.oidc, code.resources)
            user = self._user(code.username)
            req_claims = self._request_claims(form)
            claims = _merge_claims(code.claims, req_claims)
            nonce = code.nonce
            if nonce is not None and "wrong_nonce" in self.faults:
                nonce = "not-" + nonce
            all_oidc = oidc | code.oidc
            result = self._tokens(
                client=client, user=user, oidc=all_oidc, resource=resource, names=names,
                sid=code.sid, mode=mode, id_token="openid" in all_oidc,
                refresh_token="offline_access" in all_oidc, nonce=nonce,
                auth_time=code.auth_time, claims=claims,
                # An interactive sign-in that asked for claims satisfies a step-up demand.
                stepped_up=_merge_claims(code.claims), family=code.family,
                granted_oidc=code.oidc, granted_resources=code.resources, tid=code.tid)
            code.used = True
        return result

    def _grant_refresh(self, req: _Request, client: _Client, mode: str) -> dict[str, Any]:
        form = req.form
        value = form.get("refresh_token", "")
        if not value:
            raise _missing_parameter("refresh_token")
        # One lock for check, use and rotation: two requests with one refresh token cannot both
        # succeed in the strict mode (the second is a reuse).
        with self._lock:
            return self._refresh(req, client, mode, value)

    def _refresh(self, req: _Request, client: _Client, mode: str, value: str) -> dict[str, Any]:
        form = req.form
        rt = self._refresh_tokens.get(value)
        if rt is None or rt.mode != mode:
            raise OAuthError("invalid_grant", 9002313,
                             "Invalid request. Request is malformed or invalid.")
        if rt.client_id != client.client_id:
            # UNCONFIRMED code (see the code grant): refresh tokens are bound to their client.
            raise OAuthError("invalid_grant", 70000,
                             "Provided grant is invalid or malformed. The refresh token was "
                             "issued to another application.")
        if rt.rotated and not rt.revoked:
            # Strict mode: this token was already exchanged. Like Keycloak's and Auth0's reuse
            # detection, treat it as stolen and revoke every token of its family.
            self._revoke_family(rt.family)
            raise OAuthError("invalid_grant", 0,
                             "Refresh token reuse detected: the token was already used, so "
                             "every refresh token of this sign-in is revoked.")
        if rt.revoked:
            raise OAuthError("invalid_grant", 50173,
                             "The provided grant has expired due to it being revoked, a fresh "
                             "auth token is needed. The user might have changed or reset their "
                             "password.", suberror="bad_token")
        if self.now() > rt.expires:
            raise OAuthError("invalid_grant", 700082,
                             "The refresh token has expired due to inactivity. The token was "
                             "issued on an earlier date and was inactive for 90.00:00:00.",
                             suberror="bad_token")
        raw_scope = form.get("scope", "").strip() or "openid profile offline_access"
        oidc, resource, names = self._one_resource(raw_scope, client.client_id)
        if mode == "oidc":
            self._check_granted(oidc, resource, names, rt.oidc, rt.resources)
        user = self._user(rt.username)
        req_claims = self._request_claims(form)
        claims = _merge_claims(req_claims)
        self._check_step_up(resource, claims, rt)
        result = self._tokens(
            client=client, user=user, oidc=oidc, resource=resource, names=names, sid=rt.sid,
            mode=mode, id_token="openid" in oidc, refresh_token=True, nonce=None, auth_time=None,
            claims=claims, stepped_up=rt.stepped_up, family=rt.family, granted_oidc=rt.oidc,
            granted_resources=rt.resources, tid=rt.tid)
        if mode == "oidc":
            rt.rotated = True  # rotation: the new refresh token replaces this one
        # Entra rotates too, but the old refresh token stays valid until it expires.
        return result

    def _check_granted(self, oidc: set[str], resource: str, names: set[str],
                       granted_oidc: set[str], granted: Mapping[str, set[str]]) -> None:
        """Strict mode: a token request may not ask for more than was granted at /authorize
        (RFC 6749 section 6 for refresh tokens): else ``invalid_scope``."""
        missing = sorted(oidc - granted_oidc)
        if names:
            have = granted.get(resource)
            if have is None:
                missing.append(resource)
            else:
                missing += sorted(f"{resource}/{n}" for n in names - {".default"} - have)
        if missing:
            raise OAuthError("invalid_scope", 0,
                             f"Scopes not granted with this grant: {' '.join(missing)}.")

    def _revoke_family(self, family: str) -> None:
        for token in self._refresh_tokens.values():
            if token.family == family:
                token.revoked = True

    def _check_step_up(self, resource: str, asked: dict[str, list[str]],
                       rt: _RefreshToken) -> None:
        """A refresh asking for claims that an API demands with step_up=True fails with
        AADSTS50076 / suberror basic_action, unless an interactive sign-in already gave them."""
        for api_name, (demand, step_up, _) in self._demands.items():
            api_resource = GRAPH_RESOURCE if api_name == "graph" else self._apis[api_name].resource
            if not step_up or api_resource != resource:
                continue
            for name, values in _merge_claims(demand).items():
                if name in asked and not set(values) <= set(rt.stepped_up.get(name, [])):
                    # Entra answers MFA/step-up at the token endpoint with invalid_grant +
                    # suberror basic_action (MSAL maps suberror to `classification`).
                    raise OAuthError("invalid_grant", 50076,
                                     "Due to a configuration change made by your administrator, "
                                     "or because you moved to a new location, you must use "
                                     "multi-factor authentication to access this resource.",
                                     suberror="basic_action")

    def _grant_client_credentials(self, req: _Request, client: _Client) -> dict[str, Any]:
        raw = req.form.get("scope", "").strip()
        oidc, resources = self._parse_scopes(raw, client.client_id)
        if len(resources) != 1 or oidc or next(iter(resources.values())) != {".default"}:
            raise OAuthError("invalid_scope", 1002012,
                             f"The provided value for scope {raw} is not valid. Client credential "
                             "flows must have a scope value with /.default suffixed to the "
                             "resource identifier (application ID URI).")
        ((resource, _),) = resources.items()
        now = int(self.now())
        sp_oid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{client.client_id}"))
        # How the client authenticated: 1 a secret, 2 a certificate or federated assertion.
        acr = "2" if req.form.get("client_assertion") else "1"
        claims: dict[str, Any] = {
            "iat": now, "nbf": now, "exp": now + self.access_token_lifetime, "idtyp": "app",
            "oid": sp_oid, "sub": sp_oid, "tid": self.tenant_id,
            "uti": _b64url(secrets.token_bytes(16)), "rh": "0.stand-in."}
        with self._lock:
            roles = sorted(self._app_permissions.get((client.client_id, resource), set()))
        if roles:  # the application permissions granted; no claim when none are (Entra's rule)
            claims["roles"] = roles
        if resource == GRAPH_RESOURCE:
            # Graph tokens are v1 tokens of the sts.windows.net issuer (as for users), signed
            # with the unpublished key.
            issuer = f"https://sts.windows.net/{self.tenant_id}/"
            claims.update(aud=GRAPH_RESOURCE, iss=issuer, idp=issuer, appid=client.client_id,
                          appidacr=acr, app_displayname=client.display_name, ver="1.0")
        else:
            api = self._api_for(resource)
            claims.update(aud=api.audience if api else resource, iss=self.issuer,
                          azp=client.client_id, azpacr=acr, ver="2.0")
        at = self._sign(claims, graph=resource == GRAPH_RESOURCE)
        return {"token_type": "Bearer", "expires_in": self.access_token_lifetime,
                "ext_expires_in": self.access_token_lifetime, "access_token": at}

    # ------------------------------------------------------------------ /logout
    def _logout(self, req: _Request, mode: str) -> _Response:
        params = dict(req.query)
        if req.method == "POST":
            params.update(req.form)
        with self._lock:
            self.logout_calls += 1
            self.last_logout = dict(params)
        if mode == "oidc":
            return self._logout_oidc(req, params)
        return self._logout_entra(req, params)

    def _hinted_client(self, hint: str, issuer: str) -> str | None:
        """The ``aud`` of an ID token this stand-in signed for ``issuer``, else None. Its expiry
        does not matter (OpenID Connect RP-Initiated Logout)."""
        try:
            claims = jwt.decode(hint, self._key.public_key(), algorithms=["RS256"],
                                options={"verify_exp": False, "verify_aud": False,
                                         "verify_iat": False, "verify_nbf": False})
        except jwt.PyJWTError:
            return None
        aud = claims.get("aud")
        return aud if claims.get("iss") == issuer and isinstance(aud, str) else None

    def _back_to_app(self, target: str, params: Mapping[str, str],
                     headers: Sequence[tuple[str, str]]) -> _Response:
        if params.get("state"):
            sep = "&" if urlsplit(target).query else "?"
            target = f"{target}{sep}{urlencode({'state': params['state']})}"
        return _redirect(target, headers)

    def _logout_entra(self, req: _Request, params: dict[str, str]) -> _Response:
        """Entra: ``logout_hint`` (the ``login_hint`` claim) names the account to sign out;
        without it the user picks one. ``post_logout_redirect_uri`` must be a redirect URI of
        the app: the app is known from ``client_id``, an ``id_token_hint`` (both accepted,
        documented for B2C), or the apps the account signed in to in this browser session
        (UNCONFIRMED how Entra finds the app; it needs no parameter for it)."""
        target = params.get("post_logout_redirect_uri") or None
        hinted = self._user_by_login_hint(params.get("logout_hint", ""))
        with self._lock:
            session_id = self._session_id(req)
            accounts = self._sessions.get(session_id, {}) if session_id else {}
            if accounts and (hinted is None or hinted.username not in accounts):
                # Entra asks which account to sign out unless logout_hint names one.
                fields = {k: v for k, v in params.items() if k != "logout_hint"}
                choices = [(self._user(name).username, self._user(name).name,
                            self.login_hint(self._user(name))) for name in sorted(accounts)]
                return _html(200, pages.pick_account_page(req.path, fields, choices))
            apps = accounts.pop(hinted.username, set()) if hinted else set()
            sid = (self._provider_sids.pop((session_id, hinted.username), None)
                   if session_id and hinted else None)
            front_channel = [self._clients[c].front_channel_logout_url for c in sorted(apps)
                             if c in self._clients]
            headers: list[tuple[str, str]] = []
            if session_id and not accounts:
                self._sessions.pop(session_id, None)
                headers.append(self._session_cookie(req, None))
        if sid:
            self._call_front_channel([url for url in front_channel if url], sid)
        if params.get("client_id"):
            apps.add(params["client_id"])
        if params.get("id_token_hint"):
            aud = self._hinted_client(params["id_token_hint"], self.issuer)
            if aud:
                apps.add(aud)
        if target and any(target in self._clients[c].redirect_uris
                          for c in apps if c in self._clients):
            return self._back_to_app(target, params, headers)
        note = None
        if target:
            note = ("post_logout_redirect_uri is not a redirect URI of the app you signed out "
                    "of (or the app is unknown), so you are not sent back.")
        return _html(200, pages.signed_out_page(None, note), headers)

    def _call_front_channel(self, urls: Sequence[str], sid: str) -> None:
        """Each app the user signed in to in this browser session learns of the sign-out at
        its front-channel logout URL, with the provider session's ``sid``.

        Entra does it from its sign-out page, one hidden iframe per app; the stand-in makes the
        same GETs itself, before answering, so that a test sees their effect at once. Neither
        carries the app's cookies: a third-party iframe sends none of the app's Lax ones (and
        browsers block third-party cookies). Only ``sid`` is sent: Entra omits ``iss``, which
        OpenID Connect Front-Channel Logout 1.0 asks for (seen in practice, UNCONFIRMED by
        Microsoft's docs). An app on a loopback address is called without checking its TLS
        certificate, like a developer's browser that accepted a local one."""
        for url in urls:
            target = f"{url}{'&' if urlsplit(url).query else '?'}{urlencode({'sid': sid})}"
            context = (ssl._create_unverified_context()  # noqa: S323 - loopback only
                       if urlsplit(url).hostname in ("localhost", "127.0.0.1", "::1")
                       else ssl.create_default_context())
            status: int | None
            try:
                with urllib.request.urlopen(  # noqa: S310 - the app's registered http(s) URL
                        urllib.request.Request(target, method="GET"), timeout=10,
                        context=context) as answer:
                    status = answer.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except (OSError, ValueError):
                status = None
            with self._lock:
                self.front_channel_calls.append((target, status))

    def _logout_oidc(self, req: _Request, params: dict[str, str]) -> _Response:
        """OpenID Connect RP-Initiated Logout as Keycloak 18+ does it: a post-logout URI needs
        ``id_token_hint`` or ``client_id`` (else an error page); it must be a redirect URI of
        that client; without ``id_token_hint`` the user is asked to confirm."""
        target = params.get("post_logout_redirect_uri") or None
        hint, client_id = params.get("id_token_hint"), params.get("client_id")

        def refuse(message: str) -> _Response:
            return _html(400, pages.problem_page("We are sorry...", message))

        if target and not hint and not client_id:
            return refuse("Missing parameters: id_token_hint. Either the parameter 'client_id' "
                          "or the parameter 'id_token_hint' is required when "
                          "'post_logout_redirect_uri' is used.")
        if hint:
            aud = self._hinted_client(hint, self.oidc_issuer)
            if aud is None:
                return refuse("Invalid parameter: id_token_hint")
            if client_id and client_id != aud:
                return refuse("Parameter client_id different than the aud of id_token_hint")
            client_id = aud
        client = self._clients.get(client_id or "")
        if client_id and client is None:
            return refuse("Invalid parameter: client_id")
        if target and (client is None or target not in client.redirect_uris):
            return refuse("Invalid redirect uri")
        if not hint and params.get("confirm") != "yes":
            return _html(200, pages.confirm_logout_page(req.path, {**params, "confirm": "yes"}))
        with self._lock:
            session_id = self._session_id(req)
            if session_id:
                self._sessions.pop(session_id, None)
        headers = [self._session_cookie(req, None)]
        if target:
            return self._back_to_app(target, params, headers)
        return _html(200, pages.signed_out_page(None, None), headers)
