"""MSAL's process-wide HTTP cache (core/identity.py) keeps only real discovery answers.

The web flow tests show a bad OpenID discovery answer not sticking; this module shows the same
for Entra's instance discovery, which the stand-in serves only when asked (an app against the
stand-in runs without it: a loopback host is no known Entra instance).
"""

from __future__ import annotations

import msal
import pytest
import requests

from {{ cookiecutter.package_name }}.config import DEFAULTS
from {{ cookiecutter.package_name }}.core.identity import DiscoveryCheckingCache, MsalClients
from {{ cookiecutter.package_name }}.core.settings import load_settings

from devprovider import StandIn
from tests.conftest import environment_for_settings_tests
from tests.devprovider_fixtures import CLIENT_ID, CLIENT_SECRET

INSTANCE_DISCOVERY = "/common/discovery/instance"


def test_instance_discovery_answer_is_kept_only_when_it_is_one(
        standin: StandIn, http_session: requests.Session) -> None:
    cache = DiscoveryCheckingCache()

    def build() -> msal.ConfidentialClientApplication:
        # MSAL takes a URL as its instance discovery endpoint (its default is Entra's own).
        return msal.ConfidentialClientApplication(
            CLIENT_ID, client_credential=CLIENT_SECRET, authority=standin.authority,
            instance_discovery=standin.base_url + INSTANCE_DISCOVERY,
            http_client=http_session, http_cache=cache)

    # Entra's answer: where the tenant's discovery document is, and the cloud's host aliases.
    good = {"tenant_discovery_endpoint":
            f"{standin.authority}/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": "127.0.0.1", "preferred_cache": "127.0.0.1",
                          "aliases": ["127.0.0.1"]}]}
    with standin.answer(INSTANCE_DISCOVERY, {"status": "ok"}, times=1) as portal:
        with pytest.raises(KeyError):  # MSAL finds no tenant_discovery_endpoint
            build()
    assert portal.answered == 1
    with standin.answer(INSTANCE_DISCOVERY, good) as fault:
        build()  # the portal's answer was not kept: asked again
        build()  # the good answer was kept
    assert fault.answered == 1
    assert any(isinstance(key, str) and INSTANCE_DISCOVERY in key for key in cache)


def test_the_apps_own_discovery_copy_keeps_only_a_document(standin: StandIn,
                                                           ca_bundle_path: str) -> None:
    """The app reads the discovery document itself too (sign-out's end_session_endpoint): a
    portal's 200 answer is refused, not kept for a day."""
    settings = load_settings(environment_for_settings_tests({
        "AUTHORITY": standin.authority, "OIDC_AUTHORITY": "", "CA_BUNDLE": ca_bundle_path,
        "INSTANCE_DISCOVERY": "false"}), DEFAULTS)
    clients = MsalClients(settings)
    path = clients.discovery_url.split(standin.base_url, 1)[1]
    with standin.answer(path, {"status": "ok"}, times=1):
        with pytest.raises(ValueError, match="no discovery document"):
            clients.discovery()
    assert clients.discovery()["issuer"]
