"""Who may do what: app roles, groups (the overage through Microsoft Graph) and tenants.

Part of the behavioural suite (every framework, every store): the example pages the app has
for its first role (/admin), for each role (/roles/<role>) and each named group
(/groups/<name>), opened by test users of the stand-in whose ID tokens carry roles and groups,
or the groups overage (more than 200 groups: `_claim_names` instead of the list), which the app
resolves through the stand-in's Microsoft Graph.
"""

from __future__ import annotations

import html
import logging
import re
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from {{ cookiecutter.package_name }}.config import DEFAULTS

from devprovider import TestUser
from tests.conftest import CLIENT_ID, AppUnderTest, user_apis
from tests.test_web_flow import at_provider, session_cookie, sign_in, visit

ROLES: list[str] = list((DEFAULTS.authorization or {}).get("roles") or [])
GROUPS: dict[str, str] = dict((DEFAULTS.authorization or {}).get("groups") or {})
# The Graph call that learns an overage user's groups: with the user's token (GROUPS_OVERAGE_TOKEN
# user), or the app's own (app), as the app was generated.
APP_ONLY = (DEFAULTS.authorization or {}).get("groups_overage") == "app"
CHECK = ("POST /users/{id}/checkMemberGroups" if APP_ONLY else "POST /me/checkMemberGroups")
CHECK_PATH = "/graph/v1.0/users/" if APP_ONLY else "/graph/v1.0/me/checkMemberGroups"
USER_CHECK = "POST /me/checkMemberGroups"
APP_PERMISSIONS = ["User.Read.All", "GroupMember.Read.All"]

needs_roles = pytest.mark.skipif(not ROLES, reason="the app was generated without app roles")
needs_groups = pytest.mark.skipif(not GROUPS, reason="the app was generated without groups")


def _user(name: str, *, roles: tuple[str, ...] = (), groups: tuple[str, ...] = ()) -> TestUser:
    return TestUser(f"{name}@contoso.test", f"{name.title()} Tester", str(uuid.uuid4()),
                    roles=roles, groups=groups)


def _others(count: int) -> tuple[str, ...]:
    return tuple(str(uuid.uuid4()) for _ in range(count))


def _group() -> tuple[str, str]:
    name = next(iter(GROUPS))
    return name, GROUPS[name]


def assert_denied(page: requests.Response, user: TestUser, needs: str) -> None:
    """The 403 page: what is missing, who the user is, a way to sign in as someone else;
    never a redirect to sign in again (that would loop)."""
    assert page.status_code == 403, (page.status_code, page.url, page.text[:500])
    assert not page.history, [r.url for r in page.history]
    text = html.unescape(page.text)
    assert "Access denied" in text and needs in text and user.username in text, text
    assert "Traceback" not in text
    links = [part.split('"', 1)[0] for part in text.split('href="')[1:]]
    switch = [link for link in links if link.startswith("/login?")]
    assert switch, links
    assert parse_qs(urlsplit(switch[0]).query).get("prompt") == ["select_account"]


@pytest.fixture
def app(app_under_test: AppUnderTest) -> AppUnderTest:
    if APP_ONLY:  # what an administrator grants an app that reads groups with its own token
        app_under_test.standin.grant_app_permissions(CLIENT_ID, "https://graph.microsoft.com",
                                                     APP_PERMISSIONS)
    return app_under_test


# --------------------------------------------------------------------------------------- roles
@needs_roles
def test_a_role_opens_its_pages_and_its_absence_gets_the_403_page_without_a_loop(
        app: AppUnderTest, caplog: pytest.LogCaptureFixture) -> None:
    role = ROLES[0]
    holder = app.standin.add_user(_user("ada", roles=(role,)))
    other = app.standin.add_user(_user("bert", roles=("SomethingElse",)))

    browser = app.browser()
    sign_in(app, browser, holder)
    for path in ("/admin", f"/roles/{role}"):
        page = browser.get(app.url(path))
        assert page.status_code == 200, (path, page.text[:300])
        assert "Access granted" in page.text and role in html.unescape(page.text)
    assert browser.get(app.url("/roles/NoSuchRole")).status_code == 404

    caplog.set_level(logging.INFO)
    browser = app.browser()
    sign_in(app, browser, other)
    for path in ("/admin", f"/roles/{role}"):
        assert_denied(browser.get(app.url(path)), other, role)
    # The log names the user's object id and what was missing, never a token.
    lines = [r.getMessage() for r in caplog.records if "access denied" in r.getMessage()]
    assert lines and other.oid in lines[-1] and role in lines[-1], lines
    assert not any("eyJ" in r.getMessage() for r in caplog.records)

    # "Sign in as someone else" goes to the provider's account picker, and back as the holder.
    switch = browser.get(app.url("/login?next=/admin&prompt=select_account"))
    assert at_provider(app, switch)
    assert parse_qs(urlsplit(switch.url).query).get("prompt") == ["select_account"]


def test_a_role_value_with_the_characters_entra_allows_has_its_page(
        make_app: object) -> None:
    """Entra's app role values may hold "/", "?", "#", "%", "&": the home page links each
    role's page, and the page is that role's, whatever the framework's routing."""
    if not ROLES:
        pytest.skip("the app was generated without app roles")
    app: AppUnderTest = make_app()  # type: ignore[operator]
    odd = next((r for r in ROLES if any(c in r for c in "/?#%&:")), None)
    if odd is None:
        pytest.skip("no role value with such characters in this app")
    user = app.standin.add_user(_user("odette", roles=(odd,)))
    browser = app.browser()
    sign_in(app, browser, user)
    links = [html.unescape(h) for h in
             re.findall(r'href="(/roles/[^"]+)"', browser.get(app.url("/")).text)]
    (link,) = [h for h in links if urllib.parse.unquote(h[len("/roles/"):]) == odd]
    page = browser.get(app.url(link))
    assert page.status_code == 200 and odd in html.unescape(page.text)


@needs_roles
def test_roles_are_those_of_the_last_sign_in(app: AppUnderTest) -> None:
    role = ROLES[0]
    user = app.standin.add_user(_user("cleo"))
    browser = app.browser()
    sign_in(app, browser, user)
    assert_denied(browser.get(app.url(f"/roles/{role}")), user, role)
    app.standin.update_user(user.username, roles=[role])
    assert browser.get(app.url(f"/roles/{role}")).status_code == 403  # the session's ID token: old
    sign_in(app, browser, user)
    assert browser.get(app.url(f"/roles/{role}")).status_code == 200
    app.standin.update_user(user.username, roles=[])
    sign_in(app, browser, user)
    assert browser.get(app.url(f"/roles/{role}")).status_code == 403


# ---------------------------------------------------------------------------- groups in the token
@needs_groups
def test_a_group_in_the_id_token_opens_its_page_without_asking_graph(app: AppUnderTest) -> None:
    name, gid = _group()
    member = app.standin.add_user(_user("gina", groups=(gid, *_others(3))))
    outsider = app.standin.add_user(_user("hal", groups=_others(3)))
    browser = app.browser()
    sign_in(app, browser, member)
    page = browser.get(app.url(f"/groups/{name}"))
    assert page.status_code == 200, page.text[:300]
    assert "from your ID token" in page.text
    assert browser.get(app.url("/groups/no_such_group")).status_code == 404

    browser = app.browser()
    sign_in(app, browser, outsider)
    assert_denied(browser.get(app.url(f"/groups/{name}")), outsider, name)
    assert app.standin.graph_calls[CHECK] == 0


# ------------------------------------------------------------------------------- the overage
def _overage_user(app: AppUnderTest, name: str, member: bool, *, consented: bool = True
                  ) -> TestUser:
    """A user with too many groups for the ID token, who has consented to the Graph permission
    the app reads groups with, unless not `consented` (the consent round trip's test)."""
    _, gid = _group()
    groups = (gid, *_others(230)) if member else _others(231)
    user = app.standin.add_user(_user(name, groups=groups))
    settings = app.services.settings
    if consented and settings.groups_overage_token == "user":
        app.standin.grant_consent(user.username, CLIENT_ID, list(settings.groups_overage_scopes))
    return user


def _same_session_requests(app: AppUnderTest, cookies: dict[str, str], path: str,
                           count: int) -> list[requests.Response]:
    """`count` requests of one browser session at once (each its own connection)."""
    start = threading.Barrier(count)

    def one(_: int) -> requests.Response:
        start.wait(timeout=30)
        return requests.get(app.url(path), cookies=cookies, verify=app.ca_path,
                            allow_redirects=False, timeout=60)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


@needs_groups
@pytest.mark.parametrize("member", [True, False], ids=["member", "not-member"])
def test_an_overage_user_is_decided_through_graph_once_per_account(
        app: AppUnderTest, member: bool) -> None:
    """Above 200 groups the ID token has `_claim_names` instead of the list: the app asks
    Microsoft Graph once for the account (20 concurrent pages included), keeps the answer in
    its store, and a page that needs no group never asks."""
    name, _ = _group()
    user = _overage_user(app, "olga" if member else "otto", member)
    browser = app.browser()
    sign_in(app, browser, user)
    app.standin.reset_counts()
    assert browser.get(app.url("/")).status_code == 200
    if ROLES:
        browser.get(app.url(f"/roles/{ROLES[0]}"))
    assert app.standin.graph_calls[CHECK] == 0  # no group needed: Graph is not asked

    cookies = {session_cookie(app): browser.cookies.get(session_cookie(app)) or ""}
    pages = _same_session_requests(app, cookies, f"/groups/{name}", 20)
    assert {p.status_code for p in pages} == ({200} if member else {403}), [
        (p.status_code, p.text[:200]) for p in pages if p.status_code not in (200, 403)]
    assert app.standin.graph_calls[CHECK] == 1
    page = browser.get(app.url(f"/groups/{name}"))
    if member:
        assert "from Microsoft Graph" in page.text
    else:
        assert_denied(page, user, name)
    assert app.standin.graph_calls[CHECK] == 1
    # The retired Azure AD Graph endpoint that `_claim_sources` names is never called.
    assert not any("getMemberObjects" in op for op, n in app.standin.graph_calls.items() if n)


@needs_groups
def test_graph_failing_gives_a_page_and_never_access_then_recovers(app: AppUnderTest) -> None:
    name, _ = _group()
    user = _overage_user(app, "paul", member=True)
    browser = app.browser()
    sign_in(app, browser, user)
    path = f"/groups/{name}"
    with app.standin.fail(CHECK_PATH, 503):
        page = browser.get(app.url(path))
        assert page.status_code == 503 and "Access granted" not in page.text
        assert "Group membership unavailable" in page.text
    with app.standin.fail(CHECK_PATH, 403):
        page = browser.get(app.url(path))
        assert page.status_code == 403 and "Access granted" not in page.text
        assert "administrator" in page.text
    page = browser.get(app.url(path))
    assert page.status_code == 200 and "from Microsoft Graph" in page.text


@needs_groups
def test_a_new_sign_in_asks_graph_again(app: AppUnderTest) -> None:
    name, gid = _group()
    user = _overage_user(app, "rita", member=True)
    browser = app.browser()
    sign_in(app, browser, user)
    assert browser.get(app.url(f"/groups/{name}")).status_code == 200
    app.standin.update_user(user.username, groups=_others(231))  # removed from the group
    assert browser.get(app.url(f"/groups/{name}")).status_code == 200  # kept for its lifetime
    sign_in(app, browser, user)
    assert_denied(browser.get(app.url(f"/groups/{name}")), user, name)
    assert app.standin.graph_calls[CHECK] == 2


@needs_groups
def test_an_overage_users_groups_are_asked_again_after_their_lifetime(
        app: AppUnderTest, monkeypatch: pytest.MonkeyPatch) -> None:
    name, _ = _group()
    user = _overage_user(app, "sven", member=True)
    browser = app.browser()
    sign_in(app, browser, user)
    assert browser.get(app.url(f"/groups/{name}")).status_code == 200
    app.standin.update_user(user.username, groups=_others(231))
    lifetime = app.services.settings.groups_cache_seconds
    authz = app.services.authz
    now = authz.clock()
    monkeypatch.setattr(authz, "clock", lambda: now + lifetime - 5)
    assert browser.get(app.url(f"/groups/{name}")).status_code == 200
    assert app.standin.graph_calls[CHECK] == 1
    monkeypatch.setattr(authz, "clock", lambda: now + lifetime + 5)
    assert_denied(browser.get(app.url(f"/groups/{name}")), user, name)
    assert app.standin.graph_calls[CHECK] == 2


# ---------------------------------------------------------------------------------- tenants
ALLOWED: set[str] = set()
HOOK_CALLS: list[str] = []


def tenant_allowed(tenant_id: str) -> bool:
    """The ALLOWED_TENANTS_HOOK of these tests: the tenants in ALLOWED."""
    HOOK_CALLS.append(tenant_id)
    return tenant_id in ALLOWED


@pytest.fixture
def hooked_app(make_app: object) -> Iterator[AppUnderTest]:
    if DEFAULTS.oidc_authority:
        pytest.skip("tenants are Entra's: the hook needs an Entra authority")
    ALLOWED.clear()
    HOOK_CALLS.clear()
    yield make_app(ALLOWED_TENANTS_HOOK=f"{__name__}:tenant_allowed",  # type: ignore[operator]
                   TENANT_HOOK_CACHE_SECONDS="3600")
    ALLOWED.clear()


def _guarded_page(app: AppUnderTest) -> tuple[str, dict[str, tuple[str, ...]]]:
    """A guarded page of the app, and what a test user needs to open it."""
    if ROLES:
        return f"/roles/{ROLES[0]}", {"roles": (ROLES[0],)}
    if GROUPS:
        name, gid = _group()
        return f"/groups/{name}", {"groups": (gid,)}
    if user_apis(app.services.settings.apis):
        name = sorted(user_apis(app.services.settings.apis))[0]
        return ("/profile" if name == "graph" else f"/api/{name}"), {}
    pytest.skip("the app has no guarded page")


def test_the_tenant_hook_decides_at_sign_in_and_on_guarded_pages(
        hooked_app: AppUnderTest) -> None:
    app = hooked_app
    path, grants = _guarded_page(app)
    user = app.standin.add_user(_user("tess", **grants))
    tenant = app.standin.tenant_id
    browser = app.browser()
    page = sign_in(app, browser, user)
    assert page.status_code == 400 and "cannot sign in" in page.text, page.text[:300]
    assert HOOK_CALLS == [tenant]

    ALLOWED.add(tenant)  # a new customer
    app.services.authz.tenants._answers.clear()  # as TENANT_HOOK_CACHE_SECONDS passing would
    sign_in(app, browser, user)
    for _ in range(3):
        assert browser.get(app.url(path)).status_code == 200
    assert len(HOOK_CALLS) == 2  # its answer is kept

    ALLOWED.discard(tenant)  # the customer leaves: signed-in users too
    app.services.authz.tenants._answers.clear()
    page = browser.get(app.url(path))
    assert page.status_code == 403 and "organization may not use this app" in page.text


@needs_groups
def test_the_overage_with_the_apps_own_token_needs_its_application_permissions(
        make_app: object) -> None:
    """GROUPS_OVERAGE_TOKEN=app: the app asks Graph `/users/{id}/checkMemberGroups` with its
    own token (client credentials); without the application permissions Graph refuses it and
    the page says so."""
    if DEFAULTS.oidc_authority:
        pytest.skip("groups are Entra's")
    app: AppUnderTest = make_app(GROUPS_OVERAGE_TOKEN="app")  # type: ignore[operator]
    name, _ = _group()
    user = _overage_user(app, "ursula", member=True)
    browser = app.browser()
    sign_in(app, browser, user)
    page = browser.get(app.url(f"/groups/{name}"))
    assert page.status_code == 403 and "administrator" in page.text
    assert "Access granted" not in page.text
    app.standin.grant_app_permissions(CLIENT_ID, "https://graph.microsoft.com",
                                      APP_PERMISSIONS)
    page = browser.get(app.url(f"/groups/{name}"))
    assert page.status_code == 200 and "from Microsoft Graph" in page.text
    assert app.standin.graph_calls["POST /users/{id}/checkMemberGroups"] == 2
    assert app.standin.graph_calls[USER_CHECK] == 0


@needs_groups
def test_the_overage_asks_consent_for_its_graph_permission_like_any_api(
        make_app: object) -> None:
    """GROUPS_OVERAGE_SCOPES beyond what the user consented at sign-in: one consent round trip,
    back on the page, then Graph decides."""
    if DEFAULTS.oidc_authority:
        pytest.skip("groups are Entra's")
    # What Microsoft's docs list for reading the signed-in user's groups beyond User.Read.
    app: AppUnderTest = make_app(GROUPS_OVERAGE_TOKEN="user",  # type: ignore[operator]
                                 GROUPS_OVERAGE_SCOPES="User.ReadBasic.All GroupMember.Read.All")
    name, _ = _group()
    user = _overage_user(app, "vera", member=True, consented=False)
    browser = app.browser()
    sign_in(app, browser, user)
    page = visit(app, browser, f"/groups/{name}", user, round_trips=1)
    assert page.status_code == 200 and "from Microsoft Graph" in page.text
    assert app.standin.graph_calls[USER_CHECK] == 1
