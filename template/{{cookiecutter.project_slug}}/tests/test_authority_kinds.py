"""Azure AD B2C and Microsoft Entra External ID: the stand-in's B2C and External ID modes
(devprovider/b2c.py), and the app signing users in with them.

The stand-in's conformance tests run in every project. The app's run in a project generated
for that authority kind (the others skip them): a B2C project signs in through its sign-up and
sign-in user flow, starts the password-reset user flow when B2C answers "Forgot your password?"
(AADB2C90118), goes home when the user cancels (AADB2C90091), has an /edit-profile page for its
profile-edit user flow, sends no `cp1` client capability, and keys its users on (iss, sub), as
B2C tokens carry no `tid`. An External ID project signs in with the path-less authority
`https://contoso.ciamlogin.com`: an HTTP CONNECT proxy on loopback stands in for DNS, sending
that host to the stand-in, whose certificate names it.
"""

from __future__ import annotations

import json
import select
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
import trustme

from {{ cookiecutter.package_name }}.config import DEFAULTS
from {{ cookiecutter.package_name }}.core.auth import User
from {{ cookiecutter.package_name }}.core.settings import (
    CIAM_HOST_SUFFIX,
    SettingsError,
    is_b2c_authority,
    load_settings,
)
from {{ cookiecutter.package_name }}.core.web import current_user

from devprovider import DEFAULT_TENANT_ID, DEFAULT_USERS, StandIn
from tests.browser import Browser, auth_response
from tests.conftest import AppUnderTest, page_of, user_apis
from tests.conftest import environment_for_settings_tests as valid_env
from tests.devprovider_fixtures import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, pkce_pair
from tests.test_web_flow import sign_out_form

ALICE = DEFAULT_USERS[0]
SUSI, RESET, EDIT = "B2C_1_signupsignin", "B2C_1_passwordreset", "B2C_1_profileedit"
CIAM_HOST = "contoso" + CIAM_HOST_SUFFIX
CUSTOM_DOMAIN = "login.contoso.test"  # an External ID tenant's custom URL domain
B2C_PROJECT = is_b2c_authority(DEFAULTS.authority)
EXTERNAL_ID_PROJECT = (urlsplit(DEFAULTS.authority).hostname or "").endswith(CIAM_HOST_SUFFIX)
b2c_project = pytest.mark.skipif(not B2C_PROJECT, reason="a project generated for Azure AD B2C")
external_id_project = pytest.mark.skipif(
    not EXTERNAL_ID_PROJECT, reason="a project generated for External ID's ciamlogin.com")


@pytest.fixture
def standin(tls_ca: trustme.CA, tmp_path: Path) -> Iterator[StandIn]:
    """The stand-in, its certificate naming the External ID hosts too (make_app uses it)."""
    cert = tls_ca.issue_cert("127.0.0.1", "localhost", CIAM_HOST, CUSTOM_DOMAIN)
    chain, key = tmp_path / "standin.pem", tmp_path / "standin.key"
    cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
    cert.private_key_pem.write_to_path(str(key))
    with StandIn(str(chain), str(key), reuse_keys=True) as provider:
        provider.register_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI])
        yield provider
        assert not provider.errors, "\n".join(provider.errors)


def b2c_error(text: str) -> str:
    """The AADB2C code an error description starts with."""
    return text.split(":", 1)[0]


def authorize(standin: StandIn, http: requests.Session, flow: str, **params: str
              ) -> requests.Response:
    query = {"client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "response_type": "code",
             "scope": "openid offline_access", "state": "s", "nonce": "n", **params}
    return http.get(f"{standin.b2c_authority(flow)}/oauth2/v2.0/authorize", params=query,
                    allow_redirects=False)


def answer_of(response: requests.Response) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


def code_of(standin: StandIn, http: requests.Session, flow: str, action: str = "accept",
            **params: str) -> dict[str, str]:
    page = authorize(standin, http, flow, **params)
    assert page.status_code == 200, page.text
    answer = http.post(page.url, data={"username": ALICE.username, "action": action},
                       allow_redirects=False)
    return answer_of(answer)


def redeem(standin: StandIn, http: requests.Session, flow: str, **form: str) -> requests.Response:
    data = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uri": REDIRECT_URI,
            "scope": "openid offline_access", "client_info": "1", **form}
    return http.post(f"{standin.b2c_authority(flow)}/oauth2/v2.0/token", data=data)


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


# ------------------------------------------------------------------ the stand-in: B2C mode
def test_b2c_discovery_per_user_flow(standin: StandIn, http_session: requests.Session) -> None:
    document = http_session.get(
        f"{standin.b2c_authority(SUSI)}/v2.0/.well-known/openid-configuration").json()
    assert document["issuer"] == f"{standin.base_url}/{standin.tenant_id}/v2.0/"
    assert document["token_endpoint"] == (f"{standin.base_url}/contoso.onmicrosoft.com/"
                                          "b2c_1_signupsignin/oauth2/v2.0/token")
    assert "tfp" in document["claims_supported"]
    unknown = http_session.get(f"{standin.b2c_authority('B2C_1_nosuchflow')}/v2.0/"
                               ".well-known/openid-configuration")
    assert unknown.status_code == 404 and "B2C_1_nosuchflow" in unknown.json()[
        "error_description"]
    other_tenant = http_session.get(f"{standin.base_url}/fabrikam.onmicrosoft.com/{SUSI}/v2.0/"
                                    ".well-known/openid-configuration")
    assert other_tenant.status_code == 404


def test_b2c_authorize_rejections(standin: StandIn, http_session: requests.Session) -> None:
    page = authorize(standin, http_session, SUSI, redirect_uri="https://evil.test/cb")
    assert page.status_code == 400 and "AADB2C90006" in page.text
    page = authorize(standin, http_session, SUSI, client_id="00000000-0000-0000-0000-000000000000")
    assert page.status_code == 400 and "AADB2C90018" in page.text
    graph = answer_of(authorize(standin, http_session, SUSI, scope="openid User.Read"))
    assert graph["error"] == "invalid_scope" and b2c_error(graph["error_description"]) == (
        "AADB2C90117")
    forgot = code_of(standin, http_session, SUSI, action="forgot")
    assert forgot["error"] == "access_denied" and forgot["state"] == "s"
    assert b2c_error(forgot["error_description"]) == "AADB2C90118"
    cancelled = code_of(standin, http_session, EDIT, action="cancel")
    assert b2c_error(cancelled["error_description"]) == "AADB2C90091"


def test_b2c_tokens_are_their_user_flows(standin: StandIn,
                                         http_session: requests.Session) -> None:
    """B2C's ID token shape (no tid, sub = object id, tfp, oid only as an application claim),
    client_info naming the user flow, and grants bound to the user flow that issued them."""
    verifier, challenge = pkce_pair()
    code = code_of(standin, http_session, SUSI, code_challenge=challenge,
                   code_challenge_method="S256")["code"]
    wrong = redeem(standin, http_session, RESET, grant_type="authorization_code", code=code,
                   code_verifier=verifier)
    assert wrong.status_code == 400 and b2c_error(wrong.json()["error_description"]) == (
        "AADB2C90088")
    tokens = redeem(standin, http_session, SUSI, grant_type="authorization_code", code=code,
                    code_verifier=verifier).json()
    claims = claims_of(tokens["id_token"])
    assert claims["iss"] == f"{standin.base_url}/{standin.tenant_id}/v2.0/"
    assert claims["sub"] == ALICE.oid and claims["tfp"] == SUSI and claims["ver"] == "1.0"
    assert claims["emails"] == [ALICE.username] and "tid" not in claims and "oid" not in claims
    info = json.loads(jwt.utils.base64url_decode(tokens["client_info"]))
    assert info == {"uid": f"{ALICE.oid}-b2c_1_signupsignin", "utid": standin.tenant_id}
    elsewhere = redeem(standin, http_session, EDIT, grant_type="refresh_token",
                       refresh_token=tokens["refresh_token"])
    assert b2c_error(elsewhere.json()["error_description"]) == "AADB2C90088"
    standin.b2c_claims.add("oid")
    refreshed = redeem(standin, http_session, SUSI, grant_type="refresh_token",
                       refresh_token=tokens["refresh_token"]).json()
    assert claims_of(refreshed["id_token"])["oid"] == ALICE.oid
    bad_secret = redeem(standin, http_session, SUSI, grant_type="refresh_token",
                        refresh_token=tokens["refresh_token"], client_secret="wrong")
    assert bad_secret.status_code == 401 and b2c_error(
        bad_secret.json()["error_description"]) == "AADB2C90081"


# ------------------------------------------------------------------ the stand-in: External ID
def test_external_id_discovery_on_its_host(standin: StandIn,
                                           http_session: requests.Session) -> None:
    """Requests to contoso.ciamlogin.com (its Host header) get External ID's document: the
    tenant MSAL derives from the host, its issuer form; no multi-tenant keyword."""
    url = f"{standin.base_url}/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration"
    document = http_session.get(url, headers={"Host": CIAM_HOST}).json()
    assert document["issuer"] == (f"https://{standin.tenant_id}.ciamlogin.com/"
                                  f"{standin.tenant_id}/v2.0")
    assert document["token_endpoint"] == (f"https://{CIAM_HOST}/contoso.onmicrosoft.com/"
                                          "oauth2/v2.0/token")
    refused = http_session.get(url.replace("contoso.onmicrosoft.com", "organizations"),
                               headers={"Host": CIAM_HOST})
    assert refused.status_code == 400 and refused.json()["error_codes"] == [90002]


# ------------------------------------------------------------------ settings
B2C_AUTHORITY = "https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_signupsignin"


def settings_problems(**env: str) -> str:
    try:
        load_settings(valid_env(env), DEFAULTS)
    except SettingsError as exc:
        return str(exc)
    return ""


def test_b2c_and_external_id_settings() -> None:
    settings = load_settings(valid_env({"AUTHORITY": B2C_AUTHORITY,
                                        "B2C_PASSWORD_RESET_FLOW": RESET,
                                        "B2C_PROFILE_EDIT_FLOW": ""}), DEFAULTS)
    assert settings.is_b2c and settings.authority_kind == "b2c"
    assert settings.b2c_user_flow == SUSI and settings.b2c_password_reset_flow == RESET
    assert settings.b2c_profile_edit_flow is None  # set but empty: no /edit-profile page
    assert settings.user_flow_authority(EDIT) == B2C_AUTHORITY.replace(SUSI, EDIT)
    # A custom domain: B2C by the user flow segment, as MSAL tells it.
    custom = load_settings(valid_env({"AUTHORITY": "https://login.contoso.com/"
                                                   f"{DEFAULT_TENANT_ID}/B2C_1A_signin"}),
                           DEFAULTS)
    assert custom.is_b2c
    ciam = load_settings(valid_env({"AUTHORITY": f"https://{CIAM_HOST}"}), DEFAULTS)
    assert ciam.authority_kind == "external_id" and not ciam.is_b2c  # path-less is fine
    entra = "https://login.microsoftonline.com/organizations"
    assert "B2C_PASSWORD_RESET_FLOW='B2C_1_passwordreset' applies to Azure AD B2C" in (
        settings_problems(AUTHORITY=entra, B2C_PASSWORD_RESET_FLOW=RESET))
    assert "B2C_PROFILE_EDIT_FLOW='profile' is not a user flow name" in settings_problems(
        AUTHORITY=B2C_AUTHORITY, B2C_PROFILE_EDIT_FLOW="profile")
    assert "is AUTHORITY's sign-up and sign-in user flow" in settings_problems(
        AUTHORITY=B2C_AUTHORITY, B2C_PASSWORD_RESET_FLOW=SUSI.lower())
    assert "ALLOWED_TENANT_IDS and ALLOWED_TENANTS_HOOK do not apply to Azure AD B2C" in (
        settings_problems(AUTHORITY=B2C_AUTHORITY, ALLOWED_TENANT_IDS=DEFAULT_TENANT_ID))
    assert "needs a path" in settings_problems(AUTHORITY="https://login.microsoftonline.com")


# ------------------------------------------------------------------ the app: B2C
@pytest.fixture
def b2c_app(make_app: Callable[..., AppUnderTest], standin: StandIn) -> AppUnderTest:
    return make_app(AUTHORITY=standin.b2c_authority(SUSI), B2C_PASSWORD_RESET_FLOW=RESET,
                    B2C_PROFILE_EDIT_FLOW=EDIT)


def session_user(app: AppUnderTest, browser: Browser) -> User:
    name = app.services.session_cookie.name
    value = next(c.value for c in browser.cookies if c.name == name)
    user = current_user(app.services.sessions.load(value))
    assert user is not None
    return user


def deliver(browser: Browser, response: requests.Response) -> requests.Response:
    """Follow the provider's answers (form_post pages) until a page of the app."""
    for _ in range(4):
        try:
            auth_response(response)
        except AssertionError:
            return response
        response = browser.follow_auth_response(response)
    return response


def press(browser: Browser, page: requests.Response, action: str) -> requests.Response:
    """Press a button of a B2C page ("forgot", "cancel") and deliver B2C's answer to the app."""
    answer = browser.submit_form(page, match=lambda f: ("action", action) in f.buttons,
                                 allow_redirects=False)
    return browser.follow_auth_response(answer)


def flows_asked(standin: StandIn, endpoint: str) -> list[dict[str, str]]:
    return [params for what, params in standin.b2c_requests if what == endpoint]


@b2c_project
def test_b2c_sign_in_keys_the_user_on_issuer_and_subject(b2c_app: AppUnderTest) -> None:
    browser = b2c_app.browser()
    page = browser.get(b2c_app.url("/login"))
    assert "b2c_1_signupsignin/oauth2/v2.0/authorize" in page.url
    home = deliver(browser, browser.sign_in(page, ALICE.username))
    assert home.url == b2c_app.url("/") and ALICE.name in home.text
    assert "/edit-profile" in home.text
    user = session_user(b2c_app, browser)
    # No tid in B2C tokens (no oid either, unless the user flow returns it): (iss, sub).
    assert user.tid == "" and user.identity == (b2c_app.standin.b2c_issuer, ALICE.oid)
    assert user.home_account_id == f"{ALICE.oid}-b2c_1_signupsignin.{b2c_app.standin.tenant_id}"
    assert user.username == ALICE.username  # from B2C's `emails`
    for name in user_apis(b2c_app.services.settings.apis):  # the app's own, on B2C tokens
        assert browser.get(b2c_app.url(page_of(name))).status_code == 200
    # No client capability (cp1) for B2C: MSAL would send it as a `claims` parameter.
    sent = flows_asked(b2c_app.standin, "authorize") + flows_asked(b2c_app.standin, "token")
    assert sent and not [params for params in sent if "claims" in params]


@b2c_project
def test_b2c_identity_with_the_object_id_claim(b2c_app: AppUnderTest) -> None:
    """A user flow that returns the object id: the user is still (iss, sub), B2C sends no tid."""
    b2c_app.standin.b2c_claims.add("oid")
    browser = b2c_app.browser()
    deliver(browser, browser.sign_in(browser.get(b2c_app.url("/login")), ALICE.username))
    user = session_user(b2c_app, browser)
    assert user.oid == ALICE.oid and user.identity == (b2c_app.standin.b2c_issuer, ALICE.oid)


@b2c_project
def test_forgot_password_runs_the_reset_flow_then_signs_in(b2c_app: AppUnderTest) -> None:
    browser = b2c_app.browser()
    reset_page = press(browser, browser.get(b2c_app.url("/login?next=/")), "forgot")
    assert "b2c_1_passwordreset/oauth2/v2.0/authorize" in reset_page.url
    assert "Reset your password" in reset_page.text
    home = deliver(browser, browser.sign_in(reset_page, ALICE.username))
    # After the reset, the sign-up and sign-in flow signs the user in (B2C's session: no page).
    assert home.url == b2c_app.url("/") and ALICE.name in home.text
    user = session_user(b2c_app, browser)
    assert user.home_account_id.endswith(f"-b2c_1_signupsignin.{b2c_app.standin.tenant_id}")
    reset_codes = [p for p in flows_asked(b2c_app.standin, "token")
                   if p.get("grant_type") == "authorization_code"]
    assert len(reset_codes) == 2  # the reset flow's answer checked, then the sign-in's


@b2c_project
def test_cancelling_a_user_flow_goes_home_signed_out(b2c_app: AppUnderTest) -> None:
    browser = b2c_app.browser()
    home = press(browser, browser.get(b2c_app.url("/login")), "cancel")
    assert home.status_code == 200 and home.url == b2c_app.url("/")
    assert "Sign in" in home.text and ALICE.name not in home.text


@b2c_project
def test_profile_edit_changes_the_name_and_keeps_the_tokens(b2c_app: AppUnderTest) -> None:
    browser = b2c_app.browser()
    deliver(browser, browser.sign_in(browser.get(b2c_app.url("/login")), ALICE.username))
    before = session_user(b2c_app, browser)
    page = browser.get(b2c_app.url("/edit-profile"))
    assert "b2c_1_profileedit/oauth2/v2.0/authorize" in page.url and "Edit your profile" in (
        page.text)
    answer = browser.submit_form(page, match=lambda f: f.get("username") == ALICE.username,
                                 fields={"name": "Alice Cooper"}, allow_redirects=False)
    home = deliver(browser, browser.follow_auth_response(answer))
    assert home.url == b2c_app.url("/") and "Alice Cooper" in home.text
    after = session_user(b2c_app, browser)
    assert after.name == "Alice Cooper"
    assert after.home_account_id == before.home_account_id  # the sign-in flow's tokens
    for name in user_apis(b2c_app.services.settings.apis):
        assert browser.get(b2c_app.url(page_of(name))).status_code == 200


@b2c_project
def test_profile_edit_needs_a_signed_in_user(b2c_app: AppUnderTest) -> None:
    page = b2c_app.browser().get(b2c_app.url("/edit-profile"))
    assert "b2c_1_signupsignin/oauth2/v2.0/authorize" in page.url


@b2c_project
def test_b2c_without_the_optional_user_flows(make_app: Callable[..., AppUnderTest],
                                             standin: StandIn) -> None:
    """No password-reset flow: "Forgot your password?" ends on a page saying so (not a
    "cancelled" one, nor a loop); no profile-edit flow: no /edit-profile page."""
    app = make_app(AUTHORITY=standin.b2c_authority(SUSI), B2C_PASSWORD_RESET_FLOW="",
                   B2C_PROFILE_EDIT_FLOW="")
    browser = app.browser()
    page = press(browser, browser.get(app.url("/login")), "forgot")
    assert page.status_code == 400 and "Password reset unavailable" in page.text
    assert "/edit-profile" not in deliver(browser, browser.sign_in(
        browser.get(app.url("/login")), ALICE.username)).text
    assert browser.get(app.url("/edit-profile")).status_code == 404


@b2c_project
def test_b2c_sign_out_ends_the_b2c_session(b2c_app: AppUnderTest) -> None:
    """Sign-out goes to the user flow's end-session endpoint with id_token_hint and client_id
    (OpenID Connect's RP-initiated logout); B2C then signs nobody in without a page."""
    browser = b2c_app.browser()
    deliver(browser, browser.sign_in(browser.get(b2c_app.url("/login")), ALICE.username))
    out = browser.post(b2c_app.url("/logout"), data=sign_out_form(b2c_app, browser),
                       allow_redirects=False)
    ending = urlsplit(out.headers["Location"])
    assert ending.path.endswith("/b2c_1_signupsignin/oauth2/v2.0/logout")
    assert set(parse_qs(ending.query)) == {"post_logout_redirect_uri", "client_id",
                                           "id_token_hint"}
    home = browser.follow(out)
    assert home.url == b2c_app.url("/") and ALICE.name not in home.text
    page = browser.get(b2c_app.url("/login"))  # the sign-in page again, not an answer
    assert "b2c_1_signupsignin/oauth2/v2.0/authorize" in page.url
    assert "Forgot your password?" in page.text


# ------------------------------------------------------------------ the app: External ID
class ConnectProxy(socketserver.ThreadingTCPServer):
    """An HTTP CONNECT proxy on 127.0.0.1 whose tunnels all lead to one address (the stand-in):
    names it is asked for (contoso.ciamlogin.com) resolve there, as DNS would make them."""

    daemon_threads = True

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.hosts: list[str] = []
        super().__init__(("127.0.0.1", 0), _Tunnel)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Tunnel(socketserver.BaseRequestHandler):
    server: ConnectProxy

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 8192:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            head += chunk
        method, authority, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method != "CONNECT":
            self.request.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            return
        self.server.hosts.append(authority)
        with socket.create_connection(self.server.target, timeout=5) as upstream:
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            ends = [self.request, upstream]
            while True:
                ready, _, _ = select.select(ends, [], [], 10)
                if not ready:
                    return
                for end in ready:
                    data = end.recv(65536)
                    if not data:
                        return
                    (upstream if end is self.request else self.request).sendall(data)


@pytest.fixture
def ciam_proxy(standin: StandIn, monkeypatch: pytest.MonkeyPatch) -> Iterator[ConnectProxy]:
    """The proxy, and this process's environment sending the app's https through it (read
    when an app is built), loopback excepted."""
    port = urlsplit(standin.base_url).port
    assert port is not None
    with ConnectProxy(("127.0.0.1", port)) as proxy:
        thread = threading.Thread(target=proxy.serve_forever, daemon=True)
        thread.start()
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        yield proxy
        proxy.shutdown()


def signs_in_through_external_id(app: AppUnderTest, browser: Browser,
                                 page: requests.Response, proxy: ConnectProxy,
                                 host: str) -> None:
    """Alice signs in on External ID's sign-in `page`, reached at `host` through `proxy`: the
    app keys her on Entra's tid and oid, and her session names the ciamlogin.com issuer."""
    home = deliver(browser, browser.sign_in(page, ALICE.username))
    assert home.url == app.url("/") and ALICE.name in home.text
    user = session_user(app, browser)
    assert user.issuer == app.standin.ciam_issuer
    assert user.identity == (app.standin.tenant_id, ALICE.oid)  # Entra's tid and oid
    assert f"{host}:443" in proxy.hosts


@external_id_project
def test_external_id_sign_in_with_the_path_less_authority(
        make_app: Callable[..., AppUnderTest], ciam_proxy: ConnectProxy) -> None:
    app = make_app(AUTHORITY=f"https://{CIAM_HOST}", INSTANCE_DISCOVERY="true")
    browser = app.browser()
    browser.proxies = {f"https://{CIAM_HOST}": ciam_proxy.url}
    page = browser.get(app.url("/login"))
    # MSAL derived the tenant from the host: contoso.onmicrosoft.com.
    assert page.url.startswith(f"https://{CIAM_HOST}/contoso.onmicrosoft.com/oauth2/v2.0/")
    signs_in_through_external_id(app, browser, page, ciam_proxy, CIAM_HOST)


@external_id_project
def test_external_id_behind_a_custom_url_domain(
        make_app: Callable[..., AppUnderTest], standin: StandIn,
        ciam_proxy: ConnectProxy) -> None:
    """A custom URL domain: MSAL's oidc_authority, whose discovery names the ciamlogin.com
    issuer (which MSAL accepts, and the app checks the ID token against)."""
    standin.ciam_custom_domains.add(CUSTOM_DOMAIN)
    app = make_app(AUTHORITY="", OIDC_AUTHORITY=f"https://{CUSTOM_DOMAIN}/{standin.tenant_id}/v2.0")
    browser = app.browser()
    browser.proxies = {f"https://{CUSTOM_DOMAIN}": ciam_proxy.url}
    page = browser.get(app.url("/login"))
    assert page.url.startswith(f"https://{CUSTOM_DOMAIN}/{standin.tenant_id}/oauth2/v2.0/")
    signs_in_through_external_id(app, browser, page, ciam_proxy, CUSTOM_DOMAIN)
