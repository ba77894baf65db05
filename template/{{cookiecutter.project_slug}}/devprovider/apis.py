"""The web API stand-ins: Microsoft Graph (``/graph/v1.0/me``, OIDC userinfo) and custom APIs.

They check bearer tokens the way the real APIs do (signature, lifetime, audience, issuer, scopes)
and answer like them: 401 ``invalid_token`` or 403 ``insufficient_scope`` with a
``WWW-Authenticate`` header, and a claims challenge (401 ``insufficient_claims``) when a test has
made the API demand claims (``StandIn.demand_claims``). Accepted calls are recorded in
``StandIn.api_calls``, claims challenges in ``StandIn.api_challenges``.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from .model import (
    GRAPH_APP_ID,
    GRAPH_RESOURCE,
    _claims_section,
    _spec_values,
    _TokenRejected,
)
from .server import _json, _Request, _Response
from .tenant import _Tenant
from .tokens import _verify_bearer

_ME_SCOPES = frozenset({"user.read", "user.readbasic.all", "user.read.all", "user.readwrite",
                        "user.readwrite.all", "directory.read.all", "directory.readwrite.all"})


class _ApiStandIns(_Tenant):
    """The Graph stand-in and the custom API stand-ins registered with ``register_api``."""

    def _validate_bearer(self, req: _Request, *, graph: bool, audiences: Iterable[str]) -> dict[
            str, Any]:
        auth = req.headers.get("Authorization") or ""
        if auth[:7].lower() != "bearer " or not auth[7:].strip():
            raise _TokenRejected(401, "invalid_token", "No bearer token in the request.")
        issuers = ({f"https://sts.windows.net/{self.tenant_id}/"} if graph
                   else {self.issuer, self.oidc_issuer})
        return _verify_bearer(auth[7:].strip(), self._graph_key if graph else self._key,
                              now=self.now(), audiences=audiences, issuers=issuers)

    def _missing_claims(self, api_name: str, token: Mapping[str, Any]) -> dict[str, Any] | None:
        demand = self._demands.get(api_name)
        if demand is None:
            return None
        for name, spec in _claims_section(demand[0]).items():
            wanted = _spec_values(spec)
            have = token.get(name)
            have_set = {str(v) for v in have} if isinstance(have, list) else (
                set() if have is None else {str(have)})
            if (wanted and not have_set & set(wanted)) or (not wanted and not have_set):
                return demand[0]
        return None

    def _challenge(self, api_name: str, resource_id: str, e: _TokenRejected,
                   req: _Request) -> _Response:
        auth_uri = f"{self.authority}/oauth2/v2.0/authorize"
        if e.status == 403:
            header = f'Bearer error="insufficient_scope", error_description="{e.description}"'
        else:
            header = (f'Bearer realm="", authorization_uri="{auth_uri}", '
                      f'client_id="{resource_id}", error="{e.error}", '
                      f'error_description="{e.description}"')
        if api_name == "graph":
            code = ("Authorization_RequestDenied" if e.status == 403
                    else "InvalidAuthenticationToken")
            body: dict[str, Any] = {"error": {"code": code, "message": e.description,
                                              "innerError": self._graph_inner(req)}}
        else:
            body = {"error": e.error, "error_description": e.description}
        return _json(e.status, body, [("WWW-Authenticate", header)])

    def _graph_inner(self, req: _Request) -> dict[str, str]:
        return {"date": datetime.fromtimestamp(self.now(), UTC).strftime(
                    "%Y-%m-%dT%H:%M:%S"),
                "request-id": str(uuid.uuid4()),
                "client-request-id": req.headers.get("client-request-id") or str(uuid.uuid4())}

    def _claims_challenge(self, demand: dict[str, Any], api_name: str,
                          req: _Request) -> _Response:
        raw = json.dumps(demand, separators=(",", ":"))
        _, _, encoding = self._demands.get(api_name, (demand, False, "base64"))
        with self._lock:
            self.api_challenges.append({"api": api_name, "claims": demand,
                                        "encoding": encoding, "method": req.method})
        if encoding == "json":
            # Some APIs send the claims as raw JSON: a quoted-string (RFC 9110 5.6.4) whose
            # quotes and backslashes are escaped with a backslash.
            value = raw.replace("\\", "\\\\").replace('"', '\\"')
        else:
            value = base64.b64encode(raw.encode()).decode()  # what Entra and Graph send
        header = (f'Bearer realm="", authorization_uri="{self.authority}/oauth2/v2.0/authorize", '
                  f'error="insufficient_claims", claims="{value}"')
        if api_name == "graph":
            body: dict[str, Any] = {"error": {
                "code": "InvalidAuthenticationToken",
                "message": "Continuous access evaluation resulted in challenge with result: "
                           "InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp",
                "innerError": self._graph_inner(req)}}
        else:
            body = {"error": "insufficient_claims",
                    "error_description": "The token lacks claims this API demands."}
        return _json(401, body, [("WWW-Authenticate", header)])

    def _record(self, api_name: str, claims: Mapping[str, Any], req: _Request,
                path: str) -> None:
        with self._lock:
            self.api_calls.append({"api": api_name, "oid": claims.get("oid"),
                                   "scopes": str(claims.get("scp", "")).split(),
                                   "method": req.method, "path": path,
                                   # which access token it was (its unique id)
                                   "token": claims.get("uti")})

    def _graph(self, req: _Request, segs: list[str]) -> _Response:
        if segs == ["oidc", "userinfo"]:
            return self._userinfo(req)
        if segs[:1] != ["v1.0"]:
            return _json(404, {"error": {"code": "BadRequest", "message": "Invalid version."}})
        path = "/" + "/".join(segs[1:])
        try:
            claims = self._validate_bearer(req, graph=True, audiences=(GRAPH_RESOURCE,
                                                                       GRAPH_APP_ID))
            if path != "/me":
                return _json(404, {"error": {"code": "Request_ResourceNotFound",
                                             "message": f"Resource '{path}' does not exist in the"
                                                        " Graph stand-in (only /me).",
                                             "innerError": self._graph_inner(req)}})
            if not {s.lower() for s in str(claims.get("scp", "")).split()} & _ME_SCOPES:
                raise _TokenRejected(403, "insufficient_scope",
                                     "Insufficient privileges to complete the operation.")
        except _TokenRejected as e:
            return self._challenge("graph", GRAPH_APP_ID, e, req)
        demand = self._missing_claims("graph", claims)
        if demand is not None:
            return self._claims_challenge(demand, "graph", req)
        user = next((u for u in self.users.values() if u.oid == claims.get("oid")), None)
        if user is None:
            return _json(404, {"error": {"code": "Request_ResourceNotFound",
                                         "message": "The user no longer exists."}})
        self._record("graph", claims, req, path)
        return _json(200, {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
            "businessPhones": [], "displayName": user.name, "givenName": user.given_name,
            "jobTitle": None, "mail": user.username, "mobilePhone": None, "officeLocation": None,
            "preferredLanguage": "en-US", "surname": user.surname,
            "userPrincipalName": user.username, "id": user.oid})

    def _userinfo(self, req: _Request) -> _Response:
        try:
            claims = self._validate_bearer(req, graph=True, audiences=(GRAPH_RESOURCE,
                                                                       GRAPH_APP_ID))
            if "openid" not in str(claims.get("scp", "")).split():
                raise _TokenRejected(403, "insufficient_scope", "The openid scope is required.")
        except _TokenRejected as e:
            return self._challenge("graph", GRAPH_APP_ID, e, req)
        user = next(u for u in self.users.values() if u.oid == claims.get("oid"))
        return _json(200, {"sub": claims.get("sub"), "name": user.name,
                           "family_name": user.surname, "given_name": user.given_name,
                           "email": user.username})

    def _custom_api(self, req: _Request, name: str, path: str) -> _Response:
        api = self._apis.get(name)
        if api is None:
            return _json(404, {"error": "not_found", "error_description": f"No API named {name}."})
        try:
            claims = self._validate_bearer(req, graph=False, audiences=(api.audience,
                                                                        api.resource))
            if not set(str(claims.get("scp", "")).split()) & set(api.scopes):
                raise _TokenRejected(403, "insufficient_scope",
                                     f"The token needs one of the scopes {' '.join(api.scopes)}.")
        except _TokenRejected as e:
            return self._challenge(name, api.audience, e, req)
        demand = self._missing_claims(name, claims)
        if demand is not None:
            return self._claims_challenge(demand, name, req)
        body: Any = None
        if req.body:
            try:
                body = json.loads(req.body)
            except ValueError:
                return _json(400, {"error": "invalid_request",
                                   "error_description": "The body is not valid JSON."})
        self._record(name, claims, req, path)
        return _json(200, {"api": name, "method": req.method, "path": path, "query": req.query,
                           "oid": claims.get("oid"), "name": claims.get("name"),
                           "preferred_username": claims.get("preferred_username"),
                           "scopes": str(claims.get("scp", "")).split(), "body": body})
