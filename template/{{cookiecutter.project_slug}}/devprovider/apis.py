"""The web API stand-ins: Microsoft Graph (``/graph/v1.0/me``, OIDC userinfo, the membership
functions) and custom APIs.

They check bearer tokens the way the real APIs do (signature, lifetime, audience, issuer, scopes)
and answer like them: 401 ``invalid_token`` or 403 ``insufficient_scope`` with a
``WWW-Authenticate`` header, and a claims challenge (401 ``insufficient_claims``) when a test has
made the API demand claims (``StandIn.demand_claims``). Accepted calls are recorded in
``StandIn.api_calls`` (with the caller's User-Agent, which tells a call of the Graph SDK from
a plain one), claims challenges in ``StandIn.api_challenges``.

Graph's membership functions answer from the test users' ``groups`` (their transitive
membership): ``POST /me/checkMemberGroups`` and ``/me/getMemberObjects`` (delegated tokens),
``POST /users/{id | userPrincipalName}/checkMemberGroups`` and ``.../getMemberObjects`` (app-only
or delegated tokens). Each wants one of the permission sets Microsoft's pages list (else 403
``Authorization_RequestDenied``); /me with an app-only token is a 400; ``checkMemberGroups`` takes
at most 20 ``groupIds`` and one malformed id fails the whole request (400); an unknown user is a
404 ``Request_ResourceNotFound``. Whether Graph treats ``/users/{own id}`` like ``/me`` for a
delegated token is UNCONFIRMED: the stand-in applies the "other users" permissions to it.
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


def _sets(*alternatives: str) -> tuple[frozenset[str], ...]:
    """Permission alternatives, each ``"A+B"`` (both needed), lower-cased for comparison."""
    return tuple(frozenset(p.lower() for p in alt.split("+")) for alt in alternatives)


# Who may call Graph's membership functions, from the permission tables of Microsoft's pages
# "user: checkMemberGroups" and "directoryObject: getMemberObjects" (v1.0): any one set of
# permissions suffices. Keys: (operation, "self" for /me or "other" for /users/{id},
# "delegated" (scp) or "application" (roles)); a missing key is "Not supported".
_MEMBERSHIP_PERMISSIONS: dict[tuple[str, str, str], tuple[frozenset[str], ...]] = {
    ("checkMemberGroups", "self", "delegated"): _sets(
        "User.Read", "User.ReadBasic.All+GroupMember.Read.All",
        "User.Read.All+GroupMember.Read.All", "User.ReadBasic.All+Group.Read.All",
        "User.Read.All+Group.Read.All", "Directory.Read.All"),
    ("checkMemberGroups", "other", "delegated"): _sets(
        "User.ReadBasic.All+GroupMember.Read.All", "User.Read.All+GroupMember.Read.All",
        "User.ReadBasic.All+Group.Read.All", "User.Read.All+Group.Read.All", "Directory.Read.All"),
    ("checkMemberGroups", "other", "application"): _sets(
        "User.Read.All+GroupMember.Read.All", "User.Read.All+Group.Read.All",
        "Directory.Read.All"),
    ("getMemberObjects", "self", "delegated"): _sets(
        "User.Read", "User.Read.All", "Directory.Read.All", "User.ReadWrite.All",
        "Directory.ReadWrite.All"),
    ("getMemberObjects", "other", "delegated"): _sets(
        "User.ReadBasic.All+GroupMember.Read.All", "User.Read.All", "Directory.Read.All",
        "User.ReadWrite.All", "Directory.ReadWrite.All"),
    ("getMemberObjects", "other", "application"): _sets(
        "User.ReadBasic.All+GroupMember.Read.All", "User.Read.All", "Directory.Read.All",
        "User.ReadWrite.All", "Directory.ReadWrite.All"),
}
CHECK_MEMBER_GROUPS_LIMIT = 20  # groupIds per checkMemberGroups request (Graph's documented cap)
_COLLECTION_CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#Collection(Edm.String)"


class _GraphError(Exception):
    """A Graph answer other than 200: status, Graph's error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class _ApiStandIns(_Tenant):
    """The Graph stand-in and the custom API stand-ins registered with ``register_api``."""

    def _validate_bearer(self, req: _Request, *, graph: bool, audiences: Iterable[str]) -> dict[
            str, Any]:
        auth = req.header("Authorization") or ""
        if auth[:7].lower() != "bearer " or not auth[7:].strip():
            raise _TokenRejected(401, "invalid_token", "No bearer token in the request.")
        # Any tenant's tokens: a multi-tenant app's users come from several.
        tenants = list(self.tenants)
        issuers = ({f"https://sts.windows.net/{t}/" for t in tenants} if graph
                   else {self.issuer_of(t) for t in tenants} | {self.oidc_issuer}
                   | self._other_issuers())
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
                "client-request-id": req.header("client-request-id") or str(uuid.uuid4())}

    def _demanded(self, api_name: str, resource_id: str, token: Mapping[str, Any],
                  req: _Request) -> _Response | None:
        """The answer to a token lacking claims the API demands (``demand_claims``), else None.

        Microsoft's APIs send a claims challenge only to clients that declared they can answer
        one: the client capability ``cp1``, which Entra puts in the access token's ``xms_cc``
        when the token request's ``claims`` asked for it (MSAL's ``client_capabilities``). "Your
        application receives claims challenges from popular services like Microsoft Graph only
        if it declares its client capabilities" (Microsoft's claims-challenge page); the API
        reads ``xms_cc``. Another client's token is refused with a plain 401 ``invalid_token``,
        no ``claims``: what a CAE-enabled API answers such a client is UNCONFIRMED (Graph may
        also keep accepting its token until it expires; Microsoft's authentication-context
        samples refuse the call). Tokens of the generic OpenID Connect endpoints (Graph's
        too, which name Graph's issuer) are challenged whatever they carry: ``xms_cc`` is
        Microsoft's convention, and the challenge lets the app's provider-neutral handling be
        tested."""
        demand = self._missing_claims(api_name, token)
        if demand is None:
            return None
        capabilities = token.get("xms_cc")
        capable = isinstance(capabilities, list) and "cp1" in capabilities
        with self._lock:
            generic = (token.get("iss") == self.oidc_issuer
                       or token.get("uti") in self._generic_token_ids)
        if not capable and not generic:
            with self._lock:
                self.api_refusals.append({"api": api_name, "claims": demand,
                                          "method": req.method})
            return self._challenge(api_name, resource_id, _TokenRejected(
                401, "invalid_token", "The token does not satisfy this API's access policy, "
                "and its client cannot answer a claims challenge (no xms_cc cp1)."), req)
        return self._claims_challenge(demand, api_name, req)

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
                                   "tid": claims.get("tid"),
                                   "scopes": str(claims.get("scp", "")).split(),
                                   # an app-only token's application permissions
                                   "roles": list(claims.get("roles") or []),
                                   "method": req.method, "path": path,
                                   # which access token it was (its unique id)
                                   "token": claims.get("uti"),
                                   # who called: an SDK names itself (kiota-python/...)
                                   "user_agent": req.header("User-Agent")})

    def _graph(self, req: _Request, segs: list[str]) -> _Response:
        if segs == ["oidc", "userinfo"]:
            return self._userinfo(req)
        if segs[:1] != ["v1.0"]:
            return _json(404, {"error": {"code": "BadRequest", "message": "Invalid version."}})
        path = "/" + "/".join(segs[1:])
        rest = segs[1:]
        membership = (len(rest) == 2 and rest[0] == "me") or (len(rest) == 3
                                                             and rest[0] == "users")
        operation = rest[-1] if membership else ""
        try:
            claims = self._validate_bearer(req, graph=True, audiences=(GRAPH_RESOURCE,
                                                                       GRAPH_APP_ID))
            if operation in ("checkMemberGroups", "getMemberObjects"):
                self._check_membership_permission(operation, rest[0] == "me", claims)
            elif path != "/me":
                return _json(404, {"error": {"code": "Request_ResourceNotFound",
                                             "message": f"Resource '{path}' does not exist in the"
                                                        " Graph stand-in.",
                                             "innerError": self._graph_inner(req)}})
            elif "scp" not in claims:
                raise _GraphError(400, "BadRequest", "/me request is only valid with delegated "
                                                     "authentication flow.")
            elif not {s.lower() for s in str(claims.get("scp", "")).split()} & _ME_SCOPES:
                raise _TokenRejected(403, "insufficient_scope",
                                     "Insufficient privileges to complete the operation.")
        except _TokenRejected as e:
            return self._challenge("graph", GRAPH_APP_ID, e, req)
        except _GraphError as e:
            return self._graph_error(e, req)
        refused = self._demanded("graph", GRAPH_APP_ID, claims, req)
        if refused is not None:
            return refused
        if operation:
            try:
                return self._membership(req, claims, rest, operation, path)
            except _GraphError as e:
                return self._graph_error(e, req)
        user = self._user_by_oid(claims.get("oid"), claims.get("tid"))
        if user is None:
            return _json(404, {"error": {"code": "Request_ResourceNotFound",
                                         "message": "The user no longer exists."}})
        self._record("graph", claims, req, path)
        upn = user.username
        tenant = self.tenants.get(str(claims.get("tid")))
        if tenant is not None and tenant.tenant_id != user.tid:
            # A B2B guest's user principal name in the resource tenant.
            upn = f"{user.username.replace('@', '_')}#EXT#@{tenant.domain}"
        return _json(200, {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
            "businessPhones": [], "displayName": user.name, "givenName": user.given_name,
            "jobTitle": None, "mail": user.username, "mobilePhone": None, "officeLocation": None,
            "preferredLanguage": "en-US", "surname": user.surname,
            "userPrincipalName": upn, "id": claims.get("oid")})

    def _graph_error(self, e: _GraphError, req: _Request) -> _Response:
        return _json(e.status, {"error": {"code": e.code, "message": e.message,
                                          "innerError": self._graph_inner(req)}})

    def _check_membership_permission(self, operation: str, me: bool,
                                     claims: Mapping[str, Any]) -> None:
        """Refuse (403, or 400 for /me with an app-only token) a token without one of the
        permission sets Graph documents for ``operation``."""
        app_only = "scp" not in claims
        if me and app_only:
            raise _GraphError(400, "BadRequest",
                              "/me request is only valid with delegated authentication flow.")
        held = str(claims.get("scp", "")).split() if not app_only else claims.get("roles", [])
        have = {str(p).lower() for p in held} if isinstance(held, list) else set()
        key = (operation, "self" if me else "other", "application" if app_only else "delegated")
        if not any(needed <= have for needed in _MEMBERSHIP_PERMISSIONS.get(key, ())):
            # Directory calls answer a missing permission with Authorization_RequestDenied (403).
            raise _TokenRejected(403, "insufficient_scope",
                                 "Insufficient privileges to complete the operation.")

    def _membership(self, req: _Request, claims: Mapping[str, Any], rest: list[str],
                    operation: str, path: str) -> _Response:
        """``checkMemberGroups`` / ``getMemberObjects`` of /me or /users/{id | UPN}: the
        user's (transitive) groups, from the test user's ``groups``."""
        if req.method != "POST":
            # UNCONFIRMED: Graph's exact answer to a GET of an action.
            raise _GraphError(405, "Request_BadRequest",
                              f"The request method '{req.method}' is not allowed; use POST.")
        if rest[0] == "me":
            user = self._user_by_oid(claims.get("oid"), claims.get("tid"))
            if user is None:
                raise _GraphError(404, "Request_ResourceNotFound", "The user no longer exists.")
        else:
            wanted = rest[1].lower()
            user = next((u for u in self.users.values()
                         if wanted in (u.oid.lower(), u.username.lower())), None)
            if user is None:
                raise _GraphError(404, "Request_ResourceNotFound",
                                  f"Resource '{rest[1]}' does not exist or one of its queried "
                                  "reference-property objects are not present.")
        try:
            body = json.loads(req.body or b"null")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise _GraphError(400, "BadRequest",
                              "Unable to read JSON request payload. Please ensure Content-Type "
                              "header is set and payload is of valid JSON format.")
        if operation == "checkMemberGroups":
            value = self._check_member_groups(user.groups, body)
        else:
            only = body.get("securityEnabledOnly")
            if not isinstance(only, bool):
                # UNCONFIRMED: the exact code and text for a missing or non-boolean value.
                raise _GraphError(400, "Request_BadRequest",
                                  "Invalid value specified for property 'securityEnabledOnly'.")
            # Every test group is a security group and directory roles are not modelled, so
            # true and false list the same ids.
            value = list(user.groups)
        self._record("graph", claims, req, path)
        return _json(200, {"@odata.context": _COLLECTION_CONTEXT, "value": value})

    @staticmethod
    def _check_member_groups(groups: Iterable[str], body: Mapping[str, Any]) -> list[str]:
        ids = body.get("groupIds")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            # UNCONFIRMED: the exact code and text when groupIds is missing or not strings.
            raise _GraphError(400, "Request_BadRequest",
                              "Invalid value specified for property 'groupIds'.")
        if len(ids) > CHECK_MEMBER_GROUPS_LIMIT:
            # The limit is documented; the error's code and text are UNCONFIRMED.
            raise _GraphError(400, "Request_BadRequest",
                              f"The number of group IDs ({len(ids)}) exceeds the maximum of "
                              f"{CHECK_MEMBER_GROUPS_LIMIT} per request.")
        canonical: list[str] = []
        for raw in ids:
            try:
                canonical.append(str(uuid.UUID(raw)))
            except ValueError:
                # Graph evaluates the ids as one request: one malformed id fails all of it.
                raise _GraphError(400, "Request_BadRequest",
                                  f"Invalid object identifier '{raw}'.") from None
        member = set(groups)
        return [g for g in dict.fromkeys(canonical) if g in member]

    def _userinfo(self, req: _Request) -> _Response:
        try:
            claims = self._validate_bearer(req, graph=True, audiences=(GRAPH_RESOURCE,
                                                                       GRAPH_APP_ID))
            if "openid" not in str(claims.get("scp", "")).split():
                raise _TokenRejected(403, "insufficient_scope", "The openid scope is required.")
        except _TokenRejected as e:
            return self._challenge("graph", GRAPH_APP_ID, e, req)
        user = self._user_by_oid(claims.get("oid"), claims.get("tid"))
        if user is None:
            return _json(404, {"error": {"code": "Request_ResourceNotFound",
                                         "message": "The user no longer exists."}})
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
            if api.app_roles:
                _check_app_token(claims, api.app_roles)
            elif not set(str(claims.get("scp", "")).split()) & set(api.scopes):
                raise _TokenRejected(403, "insufficient_scope",
                                     f"The token needs one of the scopes {' '.join(api.scopes)}.")
        except _TokenRejected as e:
            return self._challenge(name, api.audience, e, req)
        refused = self._demanded(name, api.audience, claims, req)
        if refused is not None:
            return refused
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
                           "scopes": str(claims.get("scp", "")).split(),
                           "roles": claims.get("roles") or [], "idtyp": claims.get("idtyp"),
                           "headers": {k: v for k, v in req.headers.items()
                                       if k.lower().startswith("x-")},
                           "body": body})


def _check_app_token(claims: Mapping[str, Any], accepted: list[str]) -> None:
    """What an app-only API built as Microsoft's guidance says checks: an app token (no `scp`;
    `idtyp` "app" when the token carries that optional claim) holding one of the application
    permissions it `accepted` in `roles`. A user token, even with a user's app role in
    `roles`, is refused. Refusals are 403 `insufficient_scope`, as for a missing scope: the
    token is valid, only not for this API (UNCONFIRMED: what a given API answers is its own
    choice; Microsoft.Identity.Web answers 403)."""
    roles = claims.get("roles")
    held = {str(r) for r in roles} if isinstance(roles, list) else set()
    if "scp" in claims or claims.get("idtyp", "app") != "app":
        raise _TokenRejected(403, "insufficient_scope",
                             "This API accepts application tokens only, not a user's token.")
    if not held & set(accepted):
        raise _TokenRejected(403, "insufficient_scope",
                             f"The app token needs one of the roles {' '.join(accepted)}.")
