"""Many tenants: a multi-tenant app's users from several organizations, B2B guests, and the
tenants an app may not serve.

Part of the behavioural suite (every framework, every store). The stand-in gets two more
tenants (Fabrikam and Northwind, each with its own tenant id, domain, users and issuer), and the
app is an Entra app at `organizations` (or at its own tenant's authority where a test says so),
whatever provider the project was generated for: tenants are Entra's.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable

import pytest

from devprovider import DEFAULT_USERS, StandIn, TestUser
from tests.browser import parse_forms
from tests.conftest import AppUnderTest, entra_authority
from tests.test_web_flow import (
    CORRELATION,
    answer_with_entra_error,
    assert_error_page,
    at_provider,
    authorize_page,
    sign_in_api_page,
    sign_out_form,
    visit,
)

ALICE = DEFAULT_USERS[0]
FABRIKAM = "f4b21c00-0000-4000-8000-00000000fab2"
FRED = TestUser("fred@fabrikam.test", "Fred Fabrikam", "f2ed0000-0000-4000-8000-00000000f2ed")
NORTHWIND = "a0e7b000-0000-4000-8000-0000000a0e7b"
NINA = TestUser("nina@northwind.test", "Nina North", "a1aa0000-0000-4000-8000-00000000a1aa")


@pytest.fixture
def tenants(standin: StandIn) -> StandIn:
    """The stand-in with two more tenants: Fabrikam (Fred) and Northwind (Nina)."""
    standin.add_tenant(FABRIKAM, "fabrikam.test", [FRED])
    standin.add_tenant(NORTHWIND, "northwind.test", [NINA])
    return standin


def entra_at(standin: StandIn, tenant: str = "organizations") -> dict[str, str]:
    """The settings of an Entra app whose authority is `{stand-in}/{tenant}`."""
    return entra_authority(f"{standin.base_url}/{tenant}")


def cache_entry(app: AppUnderTest, home_account_id: str) -> str | None:
    """The app's token cache of the account MSAL keys as `home_account_id`."""
    entry = app.services.caches.store.get(app.services.caches.key(home_account_id))
    return entry.value if entry else None


def test_users_of_two_tenants_each_get_their_own_tokens_and_cache(
        make_app: Callable[..., AppUnderTest], tenants: StandIn) -> None:
    """A multi-tenant app (`organizations`): Alice (the stand-in's own tenant) and Fred
    (Fabrikam) sign in; each account is cached under its home account (`oid.tid`), each API
    call carries its own user's token from its own tenant, and Fred's sign-out leaves Alice's
    tokens and session alone."""
    app = make_app(**entra_at(tenants))
    path = sign_in_api_page(app)
    home = tenants.tenant_id
    browsers = {ALICE.oid: app.browser(), FRED.oid: app.browser()}
    for user in (ALICE, FRED):
        page = visit(app, browsers[user.oid], path, user, round_trips=None)
        assert page.status_code == 200 and user.oid in page.text
    alice_key, fred_key = f"{ALICE.oid}.{home}", f"{FRED.oid}.{FABRIKAM}"
    assert cache_entry(app, alice_key) and cache_entry(app, fred_key)
    assert cache_entry(app, alice_key) != cache_entry(app, fred_key)

    tenants.reset_counts()
    for user in (ALICE, FRED, ALICE, FRED):
        page = browsers[user.oid].get(app.url(path))
        assert page.status_code == 200 and user.oid in page.text
    calls = tenants.api_calls
    assert [(c["oid"], c["tid"]) for c in calls] == [(ALICE.oid, home), (FRED.oid, FABRIKAM)] * 2
    assert calls[0]["token"] == calls[2]["token"] != calls[1]["token"] == calls[3]["token"]
    assert not tenants.token_grants  # served from each user's own cache

    out = browsers[FRED.oid].post(app.url("/logout"), allow_redirects=False,
                                  data=sign_out_form(app, browsers[FRED.oid]))
    assert out.status_code in (302, 303)
    assert cache_entry(app, fred_key) is None and cache_entry(app, alice_key)
    assert FRED.name not in browsers[FRED.oid].get(app.url("/")).text
    tenants.reset_counts()
    page = browsers[ALICE.oid].get(app.url(path))
    assert page.status_code == 200 and ALICE.oid in page.text and not tenants.token_grants


ALLOWED_BY_HOOK = {FABRIKAM}


def fabrikam_only(tenant_id: str) -> bool:
    """The ALLOWED_TENANTS_HOOK of these tests: Fabrikam, and the stand-in's own tenant (added
    by the test)."""
    return tenant_id in ALLOWED_BY_HOOK


@pytest.mark.parametrize("how", ["ids", "hook"])
def test_the_tenant_allow_list_refuses_a_third_tenant(
        make_app: Callable[..., AppUnderTest], tenants: StandIn, how: str) -> None:
    """ALLOWED_TENANT_IDS, or ALLOWED_TENANTS_HOOK, names two of the three tenants: the third
    tenant's user gets the page and nothing of theirs is kept; the others sign in."""
    allowed = (f"{tenants.tenant_id} {FABRIKAM}" if how == "ids" else "")
    ALLOWED_BY_HOOK.add(tenants.tenant_id)
    try:
        app = make_app(**entra_at(tenants), ALLOWED_TENANT_IDS=allowed,
                       ALLOWED_TENANTS_HOOK=(f"{__name__}:fabrikam_only" if how == "hook"
                                             else ""))
        browser = app.browser()
        refused = browser.sign_in(authorize_page(app, browser), NINA.username)
        assert_error_page(refused, "cannot sign in to this app")
        assert NINA.name not in browser.get(app.url("/")).text
        assert cache_entry(app, f"{NINA.oid}.{NORTHWIND}") is None
        for user in (FRED, ALICE):
            page = visit(app, app.browser(), "/login", user)
            assert user.name in page.text
    finally:
        ALLOWED_BY_HOOK.discard(tenants.tenant_id)


def test_a_guest_is_keyed_by_its_home_account_and_served_as_the_resource_tenants_user(
        make_app: Callable[..., AppUnderTest], tenants: StandIn) -> None:
    """Fred, a member of Fabrikam, invited as a guest of the stand-in's own tenant, signs in to
    an app of that tenant (its own authority, only that tenant allowed): his ID token's `tid` is
    the resource tenant (so the allow-list lets him in), his `oid` the guest object, and MSAL's
    home account id, the key of his cache, is his HOME account `{home oid}.{home tid}`."""
    home = tenants.tenant_id
    guest_oid = tenants.add_guest(FRED.username, home)
    app = make_app(**entra_at(tenants, home), ALLOWED_TENANT_IDS=home)
    path = sign_in_api_page(app)
    browser = app.browser()
    page = visit(app, browser, path, FRED, round_trips=None)
    assert page.status_code == 200 and guest_oid in page.text
    assert cache_entry(app, f"{FRED.oid}.{FABRIKAM}")
    assert cache_entry(app, f"{guest_oid}.{home}") is None
    (call,) = [c for c in tenants.api_calls if c["oid"] == guest_oid]
    assert call["tid"] == home

    # At `organizations` the same person signs in to his home tenant, which is not allowed.
    other = make_app(**entra_at(tenants), ALLOWED_TENANT_IDS=home)
    other_browser = other.browser()
    refused = other_browser.sign_in(authorize_page(other, other_browser), FRED.username)
    assert_error_page(refused, "cannot sign in to this app")


def test_an_account_of_another_tenant_is_stopped_by_the_provider_with_aadsts50020(
        make_app: Callable[..., AppUnderTest], tenants: StandIn,
        caplog: pytest.LogCaptureFixture) -> None:
    """At a tenant's own authority, Nina (Northwind, no guest there) is refused by Entra on its
    own page (AADSTS50020), which never reaches the app. Should the answer reach it, the app's
    page names the code and ids, and the log the fix."""
    app = make_app(**entra_at(tenants, tenants.tenant_id))
    browser = app.browser()
    tenants.reset_counts()
    stopped = browser.sign_in(authorize_page(app, browser), NINA.username, follow=False)
    assert stopped.status_code == 400 and at_provider(app, stopped, "/authorize")
    assert not stopped.is_redirect and not parse_forms(stopped)
    assert "AADSTS50020" in stopped.text and NINA.username in html.unescape(stopped.text)
    assert not tenants.token_calls

    caplog.set_level(logging.INFO)
    page = answer_with_entra_error(app, app.browser(), "invalid_request", 50020,
                                   f"User account '{NINA.username}' from identity provider "
                                   f"'https://sts.windows.net/{NORTHWIND}/' does not exist in "
                                   "tenant 'contoso.test'.")
    assert_error_page(page, "AADSTS50020", status=400)
    assert f"correlation id {CORRELATION}" in html.unescape(page.text)
    logged = [r.getMessage() for r in caplog.records if "AADSTS50020" in r.getMessage()]
    # The fix, whole (what Entra says gives way to it in the log line).
    assert logged and "invite it as a guest" in logged[-1], logged
    assert logged[-1].endswith("and set AUTHORITY to organizations"), logged


def test_a_single_tenant_app_at_organizations_gets_aadsts50194_and_its_fix(
        make_app: Callable[..., AppUnderTest], tenants: StandIn,
        caplog: pytest.LogCaptureFixture) -> None:
    """The app registration is single-tenant but AUTHORITY says `organizations`: Entra sends
    AADSTS50194 back; the app's page names it and its ids, and the log says how to fix it."""
    app = make_app(**entra_at(tenants))
    # The same registration, made single-tenant (its secret and URIs kept).
    tenants.register_client(app.services.settings.client_id, app.env["CLIENT_SECRET"],
                            [app.env["REDIRECT_URI"], app.url("/")],
                            sign_in_audience="AzureADMyOrg")
    caplog.set_level(logging.INFO)
    browser = app.browser()
    page = browser.follow_auth_response(browser.get(app.url("/login")))
    assert_error_page(page, "AADSTS50194", status=400)
    assert page.url.startswith(app.base_url)
    assert "Reference for your administrator: AADSTS50194" in html.unescape(page.text)
    logged = [r.getMessage() for r in caplog.records if "AADSTS50194" in r.getMessage()]
    assert logged and "set AUTHORITY to the tenant's own authority" in logged[-1], logged
    assert logged[-1].endswith("(Authentication > Supported account types)"), logged
