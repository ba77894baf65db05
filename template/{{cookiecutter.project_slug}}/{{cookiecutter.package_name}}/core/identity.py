# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""Builds MSAL clients cheaply, one per request, each over one account's token cache.

A client per request is what makes per-account caches safe: a shared client whose cache is
swapped between threads could serve one user's request from another user's cache. Building a
client runs OpenID discovery in its constructor, cached only in the `http_cache` dict it is
given, so every client here shares one process-wide `http_cache` and one HTTP session.

MSAL keeps every 2xx answer to a GET in that cache for a day, whatever its body: a captive
portal's or a proxy's 200 page answering the first discovery request would be served to every
later sign-in of the process. `DiscoveryCheckingCache` refuses to keep a discovery or instance
discovery answer that is not such a document, so the next request asks the provider again.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import msal

from .credentials import Credentials, startup_warning
from .http import build_session
from .settings import CIAM_HOST_SUFFIX, Settings

log = logging.getLogger(__name__)

DISCOVERY_TTL_SECONDS = 24 * 3600  # what MSAL itself uses for discovery documents

# MSAL's client constructor checks for the optional msal-extensions package with an import that,
# when the package is not installed, searches sys.path again on every construction: about 40 µs
# per request here. A None entry in sys.modules is Python's documented "known to be missing":
# the import then fails at once. Installed, the package is left alone.
if importlib.util.find_spec("msal_extensions") is None:
    sys.modules.setdefault("msal_extensions", None)  # type: ignore[arg-type]


# What an OpenID Provider Configuration document must hold for MSAL to use it (MSAL reads the
# first two, OpenID Connect Discovery 1.0 section 3 requires the issuer).
DISCOVERY_FIELDS = ("issuer", "authorization_endpoint", "token_endpoint")


def valid_discovery(document: object) -> bool:
    """Whether `document` (parsed JSON) is an OpenID discovery document MSAL can use."""
    return isinstance(document, dict) and all(
        isinstance(document.get(field), str) and document[field] for field in DISCOVERY_FIELDS)


def valid_instance_discovery(document: object) -> bool:
    """Whether `document` is Entra's instance discovery answer (`/common/discovery/instance`):
    MSAL reads its `tenant_discovery_endpoint`; `metadata` lists the cloud's aliases. An
    `invalid_instance` error comes with HTTP 400, which MSAL does not keep."""
    return isinstance(document, dict) and (
        (isinstance(document.get("tenant_discovery_endpoint"), str)
         and bool(document["tenant_discovery_endpoint"]))
        or isinstance(document.get("metadata"), list))


def _checker(key: object) -> Callable[[object], bool] | None:
    """The check for what MSAL keeps under `key`, if it is a discovery answer. MSAL's keys for
    GET answers read `GET <url> hash=<hash of the query parameters> 2xx`."""
    if not (isinstance(key, str) and key.startswith("GET ")):
        return None
    path = urlsplit(key.split(" ", 2)[1]).path
    if path.endswith("/.well-known/openid-configuration"):
        return valid_discovery
    if path.endswith("/discovery/instance"):
        return valid_instance_discovery
    return None


class DiscoveryCheckingCache(dict[Any, Any]):
    """MSAL's `http_cache`, refusing to keep a discovery answer that is not a document.

    MSAL writes an answer with `cache[key] = response` and then its own index (expiry times)
    under another key; an answer refused here is missing when MSAL looks it up again, which
    MSAL takes as not cached (its index entry is dropped when it expires). Only the item
    assignment MSAL uses is checked.
    """

    def __setitem__(self, key: Any, value: Any) -> None:
        check = _checker(key)
        if check is not None:
            try:
                document = json.loads(getattr(value, "text", None) or "")
            except ValueError:
                document = None
            if not check(document):
                log.warning("not keeping the answer to %s: not a discovery document "
                            "(HTTP %s); it is asked again on the next request",
                            key.split(" ", 2)[1], getattr(value, "status_code", "?"))
                self.pop(key, None)
                return
        super().__setitem__(key, value)


class MsalClients:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.http = build_session(settings.ca_bundle,
                                  deadline_seconds=settings.outbound_deadline_seconds)
        self._http_cache = DiscoveryCheckingCache()
        # Certificates were loaded with the settings; the managed identity client (if any) is
        # made here, once per process.
        self.credentials = Credentials(settings.credentials, settings.client_id, self.http,
                                       oidc=bool(settings.oidc_authority))
        for configured in settings.credentials:
            warning = startup_warning(configured, clock())
            if warning:
                log.log(warning[0], "%s", warning[1])
        # Discovery documents by URL (a B2C app has one per user flow).
        self._discovery: dict[str, tuple[float, dict[str, Any]]] = {}
        self._discovery_lock = threading.Lock()

    def build(self, cache: msal.TokenCache | None = None, *,
              http_client: Any = None, user_flow: str | None = None, app_only: bool = False
              ) -> msal.ConfidentialClientApplication:
        """A client over `cache` (one account's), sharing discovery and connections, with the
        credential in use (see `build_current`)."""
        return self.build_current(cache, http_client=http_client, user_flow=user_flow,
                                  app_only=app_only)[1]

    def build_current(self, cache: msal.TokenCache | None = None, *, http_client: Any = None,
                      user_flow: str | None = None, app_only: bool = False
                      ) -> tuple[int, msal.ConfidentialClientApplication]:
        """`build`, and which credential the client uses (for `rejected`).

        `http_client` replaces the shared HTTP session (the token layer's offline pass).
        `user_flow`: Azure AD B2C's password-reset or profile-edit user flow, an authority of
        its own (None: AUTHORITY's, the sign-up and sign-in flow). `app_only`: a client for the
        app's own tokens (client credentials), the only ones AZURE_REGION applies to.
        """
        index, credential = self.credentials.current()
        return index, self._build(cache, credential.client_credential(), http_client, user_flow,
                                  app_only)

    def rejected(self, index: int, result: Mapping[str, Any] | None) -> bool:
        """Whether `result` (an MSAL answer of a client built with credential `index`) is the
        provider refusing that credential, and another one is now in use: the caller builds a
        new client and tries once more."""
        if not self.credentials.is_rejection(result):
            return False
        assert result is not None
        if not self.credentials.rejected(index, result):
            return False
        # MSAL replays an identical HTTP 400 answer from its `http_cache` for a minute, keyed
        # without the credential: a provider that answers invalid_client with 400 (RFC 6749
        # allows it) would have the new credential's attempt answered from there. Discovery
        # is fetched again once.
        self._http_cache = DiscoveryCheckingCache()
        return True

    def _build(self, cache: msal.TokenCache | None, client_credential: Any,
               http_client: Any, user_flow: str | None, app_only: bool = False
               ) -> msal.ConfidentialClientApplication:
        settings = self.settings
        where: dict[str, Any] = (
            {"oidc_authority": settings.oidc_authority}
            if settings.oidc_authority
            else {"authority": settings.user_flow_authority(user_flow),
                  "instance_discovery": settings.instance_discovery}
        )
        return msal.ConfidentialClientApplication(
            settings.client_id,
            client_credential=client_credential,
            token_cache=cache,
            http_client=self.http if http_client is None else http_client,
            http_cache=self._http_cache,
            # "cp1": this app can answer claims challenges (continuous access evaluation). An
            # Entra capability: other providers are not sent it, nor is Azure AD B2C, which has
            # no continuous access evaluation (its APIs are the app's own).
            client_capabilities=(["cp1"] if settings.authority and not settings.is_b2c
                                 else None),
            # AZURE_REGION for the app's own tokens only: MSAL sends client credentials requests
            # to the regional token service (`<region>.login.microsoft.com` for the public
            # cloud's hosts, `<region>.<host>` for others), after fetching discovery there when
            # the client is built; user flows are never regional. False otherwise, not None:
            # with None, MSAL on an Azure host that sets REGION_NAME logs a warning on every
            # client it builds (and MSAL_FORCE_REGION would apply).
            azure_region=(settings.azure_region or False) if app_only else False,
            **where,
        )

    @property
    def discovery_url(self) -> str:
        return self.discovery_url_of(None)

    def discovery_url_of(self, user_flow: str | None) -> str:
        """Where the provider's discovery document is, as MSAL asks for it: a B2C user flow's
        own, and for External ID's path-less form (https://contoso.ciamlogin.com) the tenant
        MSAL derives from the host (contoso.onmicrosoft.com)."""
        settings = self.settings
        if settings.oidc_authority:
            return settings.oidc_authority + "/.well-known/openid-configuration"
        authority = settings.user_flow_authority(user_flow)
        parts = urlsplit(authority)
        host = (parts.hostname or "").lower()
        if parts.path.strip("/") == "" and host.endswith(CIAM_HOST_SUFFIX):
            tenant = host[: -len(CIAM_HOST_SUFFIX)] + ".onmicrosoft.com"
            authority = f"{authority.rstrip('/')}/{tenant}"
        return f"{authority}/v2.0/.well-known/openid-configuration"

    def discovery(self, user_flow: str | None = None) -> dict[str, Any]:
        """The provider's OpenID configuration (MSAL keeps its own copy private); of a B2C
        `user_flow`, that flow's."""
        url = self.discovery_url_of(user_flow)
        with self._discovery_lock:
            cached = self._discovery.get(url)
            if cached and cached[0] > time.monotonic():
                return cached[1]
            response = self.http.get(url)
            response.raise_for_status()
            document: dict[str, Any] = response.json()
            if not valid_discovery(document):  # a captive portal's or a proxy's 200 page
                raise ValueError(f"{url} answered with no discovery document")
            self._discovery[url] = (time.monotonic() + DISCOVERY_TTL_SECONDS, document)
            return document
