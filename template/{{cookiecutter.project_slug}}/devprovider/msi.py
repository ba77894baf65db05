"""Managed identities, as App Service (and Azure Functions) serves them to an app.

App Service gives the app two environment variables: ``IDENTITY_ENDPOINT``, an http URL on
loopback (``http://127.0.0.1:<port>/msi/token``), and ``IDENTITY_HEADER``, a secret the app
sends back in an ``X-IDENTITY-HEADER`` header (against server-side request forgery). MSAL's
``ManagedIdentityClient`` then asks (``_obtain_token_on_app_service`` in
``msal/managed_identity.py``)::

    GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=<resource>[&client_id=<guid>]
    X-IDENTITY-HEADER: {IDENTITY_HEADER}

(``object_id`` or ``mi_res_id`` instead of ``client_id`` name a user-assigned identity
otherwise.) The answer is ``{"access_token", "expires_on" (epoch seconds, a string),
"resource", "token_type": "Bearer", "client_id"}``; an error is ``{"statusCode", "message",
"correlationId"}``, which MSAL reports as ``invalid_scope`` with "<statusCode>, <message>".

Errors: unknown identity 400 "Unable to load the proper Managed Identity." (as reported from App
Service); missing ``X-IDENTITY-HEADER`` 400 and a wrong one 401 (both UNCONFIRMED, a 401 for the
wrong header is as reported); an ``api-version`` other than 2019-08-01 or no ``resource`` 400
(UNCONFIRMED: the stand-in emulates that version only).

The token is a v2 app-only token of the stand-in's tenant, signed with its published key:
``iss`` ``{base}/{tenant id}/v2.0``, ``sub`` = ``oid`` = the identity's object id, ``aud`` = the
resource asked for. The stand-in trusts it as a federated credential (a managed identity as the
credential of an app registration).
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from typing import Any

from .model import GRAPH_RESOURCE, ManagedIdentity
from .server import _json, _Request, _Response
from .tenant import _Tenant
from .tokens import _b64url

MSI_API_VERSION = "2019-08-01"


def _same_guid(a: str, b: str) -> bool:
    try:
        return uuid.UUID(a) == uuid.UUID(b)
    except ValueError:
        return a.lower() == b.lower()


class _ManagedIdentityEndpoint(_Tenant):
    """The managed identities and the App Service token endpoint (``StandIn`` serves it on a
    plain-http loopback listener of its own, see ``StandIn.identity_endpoint``)."""

    def add_managed_identity(self, client_id: str | None = None) -> ManagedIdentity:
        """A managed identity of the emulated App Service: system-assigned when ``client_id``
        is None (at most one: later calls return it), else user-assigned with that client id
        (a GUID; adding it again returns the same identity). Its object id is made here."""
        with self._lock:
            if client_id is None:
                if self._system_identity is None:
                    self._system_identity = ManagedIdentity(str(uuid.uuid4()),
                                                            str(uuid.uuid4()))
                return self._system_identity
            uuid.UUID(client_id)  # ValueError: user-assigned client ids are GUIDs
            for identity in self._managed_identities:
                if _same_guid(identity.client_id, client_id):
                    return identity
            identity = ManagedIdentity(str(uuid.uuid4()), client_id)
            self._managed_identities.append(identity)
            return identity

    def _find_identity(self, query: dict[str, str]) -> ManagedIdentity | None:
        with self._lock:
            if query.get("client_id"):
                return next((i for i in self._managed_identities
                             if _same_guid(i.client_id, query["client_id"])), None)
            object_id = query.get("object_id") or query.get("principal_id")
            if object_id:
                return next((i for i in self._managed_identities
                             if _same_guid(i.object_id, object_id)), None)
            if query.get("mi_res_id"):
                return None  # the stand-in's identities have no Azure resource id
            return self._system_identity

    def _msi(self, req: _Request) -> _Response:
        """The App Service managed identity endpoint (``/msi/token`` on its own listener)."""
        q = req.query
        with self._lock:
            self.msi_requests.append({"resource": q.get("resource"),
                                      "client_id": q.get("client_id") or None,
                                      "api_version": q.get("api-version")})

        def fail(status: int, message: str) -> _Response:
            return _json(status, {"statusCode": status, "message": message,
                                  "correlationId": str(uuid.uuid4())})

        if req.path.rstrip("/").lower() != "/msi/token":
            return fail(404, f"No route for {req.path}.")
        if req.method != "GET":
            return fail(405, "The managed identity endpoint only answers GET.")  # UNCONFIRMED
        header = req.header("X-IDENTITY-HEADER")
        if header is None:
            # UNCONFIRMED status and text.
            return fail(400, "The X-IDENTITY-HEADER header is required.")
        if not hmac.compare_digest(header.encode(), self.identity_header.encode()):
            # 401 as reported from App Service; the text is UNCONFIRMED.
            return fail(401, "The X-IDENTITY-HEADER header is not valid.")
        if q.get("api-version") != MSI_API_VERSION:
            # UNCONFIRMED: App Service also serves 2017-09-01 (a `secret` header); the
            # stand-in emulates what MSAL sends.
            return fail(400, f"The api-version '{q.get('api-version', '')}' is not supported; "
                             f"use {MSI_API_VERSION}.")
        resource = q.get("resource", "")
        if not resource:
            return fail(400, "The resource parameter is required.")  # UNCONFIRMED text
        identity = self._find_identity(q)
        if identity is None:
            return fail(400, "Unable to load the proper Managed Identity.")
        token, exp = self._managed_identity_token(identity, resource)
        return _json(200, {"access_token": token, "expires_on": str(exp),
                           "resource": resource, "token_type": "Bearer",
                           "client_id": identity.client_id})

    def _managed_identity_token(self, identity: ManagedIdentity, resource: str
                                ) -> tuple[str, int]:
        now = int(self.now())
        exp = now + self.access_token_lifetime
        claims: dict[str, Any] = {
            "aud": resource, "iss": self.issuer, "iat": now, "nbf": now, "exp": exp,
            "sub": identity.object_id, "oid": identity.object_id, "tid": self.tenant_id,
            # azpacr 2 (a certificate-like credential) is UNCONFIRMED for managed identities.
            "azp": identity.client_id, "azpacr": "2", "idtyp": "app", "ver": "2.0",
            "uti": _b64url(secrets.token_bytes(16)),
        }
        # Graph tokens are signed with the unpublished key, as for every other Graph token.
        graph = self._canonical_resource(resource) == GRAPH_RESOURCE
        return self._sign(claims, graph=graph), exp
