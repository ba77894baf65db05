"""Conformance tests of the Entra ID stand-in, over real HTTPS with the real ``msal``.

A stand-in that accepts anything proves nothing: most tests here show it REJECTS what Entra
rejects, with Entra's error and AADSTS code, and then that the legitimate request succeeds.
Time moves with ``standin.clock_offset``, never with sleeps.
"""

from __future__ import annotations

import base64
import dataclasses
import http.client
import http.server
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import msal
import pytest
import requests
import trustme
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import load_pem_x509_certificate

from devprovider import (
    DEFAULT_USERS,
    TOKEN_EXCHANGE_AUDIENCE,
    ClientAuth,
    ExternalIssuer,
    StandIn,
    TestUser,
)
from devprovider.__main__ import app_defaults, set_up_authorization, start_dev_environment
from devprovider.model import TENANT_PLACEHOLDER
from tests.browser import Browser, auth_response, parse_forms
from tests.devprovider_fixtures import (
    CLIENT_ID,
    CLIENT_SECRET,
    POST_LOGOUT_REDIRECT_URI,
    REDIRECT_URI,
    TODO_RESOURCE,
    authorize,
    authorize_url,
    make_http_session,
    pkce_pair,
)
from tests.processes import start, stop
from tests.servers import free_port

ALICE = "alice@contoso.test"
BOB = "bob@contoso.test"
TODO_READ = f"{TODO_RESOURCE}/Todo.Read"
TODO_AUD = TODO_RESOURCE.removeprefix("api://")
OTHER_ID, OTHER_SECRET = "0ther000-0000-4000-8000-000000000001", "other-secret"
SIGN_IN = "openid profile offline_access"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TODO_DEFAULT = f"{TODO_RESOURCE}/.default"


def token_url(standin: StandIn) -> str:
    return f"{standin.authority}/oauth2/v2.0/token"


def assert_error(resp: requests.Response, status: int, error: str, code: int,
                 suberror: str | None = None) -> None:
    """Entra's error JSON: error, AADSTS text with trace ids, error_codes, ids, error_uri."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert (body["error"], body["error_codes"], body.get("suberror")) == (error, [code], suberror)
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert "\r\nTrace ID: " in body["error_description"]
    assert {"timestamp", "trace_id", "correlation_id", "error_uri"} <= body.keys()


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def www_authenticate(resp: requests.Response) -> dict[str, str]:
    header = resp.headers["WWW-Authenticate"]
    assert header.startswith("Bearer ")
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


def msal_app(standin: StandIn, session: requests.Session, *, oidc: bool = False,
             **kwargs: Any) -> msal.ConfidentialClientApplication:
    where = ({"oidc_authority": standin.oidc_authority} if oidc
             else {"authority": standin.authority})
    kwargs.setdefault("client_credential", CLIENT_SECRET)
    return msal.ConfidentialClientApplication(
        CLIENT_ID, instance_discovery=False, http_client=session, **where, **kwargs)


def msal_sign_in(app: msal.ConfidentialClientApplication, browser: Browser, scopes: list[str],
                 username: str = ALICE, **kwargs: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """Interactive sign-in through MSAL and the stand-in's pages; returns (result, auth resp)."""
    flow = app.initiate_auth_code_flow(scopes, redirect_uri=REDIRECT_URI,
                                       response_mode="form_post", **kwargs)
    page = browser.get(flow["auth_uri"])
    assert page.status_code == 200, page.text
    response = auth_response(browser.sign_in(page, username, follow=False))
    result = app.acquire_token_by_auth_code_flow(flow, response)
    assert "access_token" in result, result
    return result, response


def test_discovery_jwks_and_unknown_tenant(standin: StandIn,
                                           http_session: requests.Session) -> None:
    base, tid = standin.base_url, standin.tenant_id
    doc = http_session.get(f"{standin.authority}/v2.0/.well-known/openid-configuration").json()
    assert doc["issuer"] == f"{base}/{tid}/v2.0"
    assert doc["authorization_endpoint"] == f"{base}/{tid}/oauth2/v2.0/authorize"
    assert doc["token_endpoint"] == f"{base}/{tid}/oauth2/v2.0/token"
    assert doc["end_session_endpoint"] == f"{base}/{tid}/oauth2/v2.0/logout"
    assert doc["jwks_uri"] == f"{base}/{tid}/discovery/v2.0/keys"
    assert doc["token_endpoint_auth_methods_supported"] == [
        "client_secret_post", "private_key_jwt", "client_secret_basic"]
    assert "form_post" in doc["response_modes_supported"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    # Multi-tenant aliases keep the alias in endpoints; the issuer has Entra's placeholder.
    org = http_session.get(f"{base}/organizations/v2.0/.well-known/openid-configuration").json()
    assert org["issuer"] == f"{base}/{TENANT_PLACEHOLDER}/v2.0"
    assert org["token_endpoint"] == f"{base}/organizations/oauth2/v2.0/token"
    oidc = http_session.get(f"{standin.oidc_authority}/.well-known/openid-configuration").json()
    assert oidc["issuer"] == standin.oidc_authority
    assert oidc["token_endpoint"] == f"{standin.oidc_authority}/token"
    unknown = http_session.get(f"{base}/{uuid.uuid4()}/v2.0/.well-known/openid-configuration")
    assert_error(unknown, 400, "invalid_tenant", 90002)
    keys = http_session.get(doc["jwks_uri"]).json()["keys"]
    assert [(k["kty"], k["alg"]) for k in keys] == [("RSA", "RS256")] and keys[0]["kid"]


def test_authorize_validates_client_redirect_uri_pkce_and_decline(
        standin: StandIn, new_browser: Callable[[], Browser]) -> None:
    browser = new_browser()
    _, challenge = pkce_pair()
    # Unknown client and unregistered redirect URI: an error page, never a redirect.
    page = browser.get(authorize_url(standin, client_id=str(uuid.uuid4()), challenge=challenge),
                       allow_redirects=False)
    assert page.status_code == 400 and "AADSTS700016" in page.text
    assert "Location" not in page.headers and not parse_forms(page)
    for wrong in ("https://app.test/Auth/callback", "https://app.test/auth/callback/",
                  "https://evil.test/auth/callback"):
        page = browser.get(authorize_url(standin, redirect_uri=wrong, challenge=challenge),
                           allow_redirects=False)
        assert page.status_code == 400 and "AADSTS50011" in page.text, wrong
        assert "Location" not in page.headers and not parse_forms(page)
    # Other errors go back to the redirect URI, with state, in the requested response mode.
    no_pkce = auth_response(browser.get(authorize_url(standin), allow_redirects=False))
    assert no_pkce["error"] == "invalid_request" and no_pkce["state"] == "st4te"
    assert no_pkce["error_description"].startswith("AADSTS9002325:")
    standin.register_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI, "https://app.test"],
                            display_name="Contoso Test App")
    query = browser.get(authorize_url(standin, redirect_uri="https://app.test",
                                      response_mode="query", response_type="token",
                                      challenge=challenge), allow_redirects=False)
    assert query.status_code == 302
    assert query.headers["Location"].startswith("https://app.test/?")  # Entra adds the "/"
    assert auth_response(query)["error"] == "unsupported_response_type"
    bad_scope = auth_response(browser.get(authorize_url(
        standin, scope=f"{SIGN_IN} api://unknown-api/Read", challenge=challenge)))
    assert bad_scope["error"] == "invalid_resource" and bad_scope["state"] == "st4te"
    # The sign-in page: the app, the scopes, one form per user, the hinted user first.
    page = browser.get(authorize_url(standin, scope=f"{SIGN_IN} User.Read {TODO_READ}",
                                     challenge=challenge, login_hint=BOB))
    assert page.status_code == 200 and "Sign in to Contoso Test App" in page.text
    assert "User.Read" in page.text and TODO_READ in page.text
    users = [f.get("username") for f in parse_forms(page) if f.get("username")]
    assert users == [BOB, ALICE, "carol@contoso.test"]
    declined = auth_response(browser.decline(page, follow=False))
    assert declined["error"] == "access_denied" and declined["state"] == "st4te"
    assert declined["error_description"].startswith(
        "AADSTS65004: User declined to consent to access the app.")
    ok = auth_response(browser.sign_in(page, ALICE, follow=False))
    assert ok.keys() == {"code", "client_info", "state", "session_state"}
    info = json.loads(base64.urlsafe_b64decode(ok["client_info"] + "=="))
    assert info == {"uid": standin.users[ALICE].oid, "utid": standin.tenant_id}
    assert standin.authorize_calls == 8


def test_code_redemption_is_bound_single_use_and_short_lived(
        standin: StandIn, new_browser: Callable[[], Browser],
        http_session: requests.Session) -> None:
    standin.register_client(OTHER_ID, OTHER_SECRET, [REDIRECT_URI])
    browser = new_browser()
    verifier, challenge = pkce_pair()
    code = authorize(standin, browser, challenge=challenge, scope=f"{SIGN_IN} User.Read")["code"]
    good = {"grant_type": "authorization_code", "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET, "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier, "scope": f"User.Read {SIGN_IN}"}

    def redeem(**changes: str | None) -> requests.Response:
        form = {k: v for k, v in {**good, **changes}.items() if v is not None}
        return http_session.post(token_url(standin), data=form)

    assert_error(redeem(client_secret="wrong"), 401, "invalid_client", 7000215)
    assert_error(redeem(client_secret=None), 401, "invalid_client", 7000218)
    assert_error(redeem(client_id=str(uuid.uuid4())), 400, "unauthorized_client", 700016)
    assert_error(redeem(code_verifier=pkce_pair()[0]), 400, "invalid_grant", 501481)
    assert_error(redeem(code_verifier=None), 400, "invalid_grant", 501481)
    assert_error(redeem(redirect_uri=REDIRECT_URI + "/"), 400, "invalid_grant", 500112)
    assert_error(redeem(redirect_uri=None), 400, "invalid_grant", 500112)
    assert_error(redeem(client_id=OTHER_ID, client_secret=OTHER_SECRET), 400, "invalid_grant",
                 70000)
    assert_error(redeem(code="garbage"), 400, "invalid_grant", 9002313)
    assert_error(redeem(scope=f"User.Read {TODO_READ} {SIGN_IN}"), 400, "invalid_request", 28000)
    assert_error(redeem(scope=""), 400, "invalid_request", 28003)
    # None of the failures used the code up; client_secret_basic works too.
    ok = http_session.post(token_url(standin), auth=(CLIENT_ID, CLIENT_SECRET),
                           data={k: v for k, v in good.items()
                                 if k not in ("client_id", "client_secret")})
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == "User.Read openid profile email"  # no offline_access, like Entra
    assert {"access_token", "refresh_token", "id_token", "client_info"} <= body.keys()
    id_token, at = claims_of(body["id_token"]), claims_of(body["access_token"])
    assert id_token["nonce"] == "n0nce" and id_token["aud"] == CLIENT_ID
    assert id_token["oid"] == standin.users[ALICE].oid and id_token["ver"] == "2.0"
    assert at["aud"] == "https://graph.microsoft.com" and "User.Read" in at["scp"].split()
    assert at["exp"] - at["iat"] == 3600 and at["tid"] == standin.tenant_id
    assert_error(redeem(), 400, "invalid_grant", 54005)  # single use
    # Expiry (~10 minutes) on the stand-in's clock.
    late = authorize(standin, browser, challenge=challenge, scope=f"{SIGN_IN} User.Read")["code"]
    standin.clock_offset = 601
    assert_error(redeem(code=late), 400, "invalid_grant", 70008)
    # No offline_access: no refresh token; no openid: no id token (Entra).
    standin.clock_offset = 0
    bare = authorize(standin, browser, challenge=challenge, scope="User.Read")["code"]
    body = redeem(code=bare, scope="User.Read").json()
    assert "refresh_token" not in body and "id_token" not in body and body["scope"] == "User.Read"
    assert standin.token_calls["authorization_code"] == 15


def test_refresh_tokens_serve_consented_resources_and_rotate(
        standin: StandIn, new_browser: Callable[[], Browser],
        http_session: requests.Session) -> None:
    standin.register_client(OTHER_ID, OTHER_SECRET, [REDIRECT_URI])
    verifier, challenge = pkce_pair()
    code = authorize(standin, new_browser(), challenge=challenge,
                     scope=f"{SIGN_IN} User.Read")["code"]
    first = http_session.post(token_url(standin), data={
        "grant_type": "authorization_code", "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET, "code": code, "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier, "scope": f"User.Read {SIGN_IN}"}).json()
    rt1 = first["refresh_token"]

    def refresh(rt: str, scope: str, client: tuple[str, str] = (CLIENT_ID, CLIENT_SECRET),
                **extra: str) -> requests.Response:
        return http_session.post(token_url(standin), data={
            "grant_type": "refresh_token", "client_id": client[0], "client_secret": client[1],
            "refresh_token": rt, "scope": f"{scope} {SIGN_IN}", **extra})

    assert_error(refresh(rt1, TODO_READ), 400, "invalid_grant", 65001, "consent_required")
    assert_error(refresh(rt1, f"User.Read {TODO_READ}"), 400, "invalid_request", 28000)
    assert_error(refresh(rt1, "User.Read", (OTHER_ID, OTHER_SECRET)), 400, "invalid_grant", 70000)
    assert_error(refresh("not-a-token", "User.Read"), 400, "invalid_grant", 9002313)
    assert_error(refresh(rt1, "User.Read", (CLIENT_ID, "nope")), 401, "invalid_client", 7000215)
    # After consent (e.g. admin consent), the same refresh token serves the custom API.
    standin.grant_consent(ALICE, CLIENT_ID, [TODO_READ])
    todo = refresh(rt1, f"{TODO_RESOURCE}/.default")
    assert todo.status_code == 200, todo.text
    body = todo.json()
    assert body["scope"] == TODO_READ  # other APIs' scopes in full form, no OIDC scopes
    at = claims_of(body["access_token"])
    assert (at["aud"], at["scp"], at["azp"], at["ver"]) == (TODO_AUD, "Todo.Read", CLIENT_ID,
                                                            "2.0")
    assert at["iss"] == f"{standin.base_url}/{standin.tenant_id}/v2.0"
    rt2 = body["refresh_token"]
    assert rt2 != rt1  # rotated...
    assert refresh(rt1, "User.Read").status_code == 200  # ...and the old one still works
    assert refresh(rt2, TODO_READ).status_code == 200
    standin.revoke_consent(ALICE, CLIENT_ID, TODO_RESOURCE)
    assert_error(refresh(rt2, TODO_READ), 400, "invalid_grant", 65001, "consent_required")
    standin.clock_offset = 91 * 24 * 3600
    assert_error(refresh(rt2, "User.Read"), 400, "invalid_grant", 700082, "bad_token")
    standin.clock_offset = 0
    standin.revoke_refresh_tokens(ALICE)
    assert_error(refresh(rt2, "User.Read"), 400, "invalid_grant", 50173, "bad_token")
    assert standin.token_calls == {"authorization_code": 1, "refresh_token": 11}


def test_msal_sign_in_silent_token_and_api_stand_ins(
        standin: StandIn, new_browser: Callable[[], Browser],
        http_session: requests.Session) -> None:
    app = msal_app(standin, http_session)
    result, _ = msal_sign_in(app, new_browser(), ["User.Read"])
    alice = standin.users[ALICE]
    assert result["id_token_claims"]["oid"] == alice.oid and result["expires_in"] == 3600
    (account,) = app.get_accounts()
    assert account["home_account_id"] == f"{alice.oid}.{alice.tid}"
    assert account["username"] == ALICE
    # The id token verifies against the JWKS; the Graph token does not (like Entra's).
    jwks = http_session.get(f"{standin.authority}/discovery/v2.0/keys").json()
    key = jwt.PyJWK(jwks["keys"][0]).key
    jwt.decode(result["id_token"], key, algorithms=["RS256"], audience=CLIENT_ID,
               issuer=f"{standin.base_url}/{standin.tenant_id}/v2.0")
    graph_at = result["access_token"]
    assert jwt.get_unverified_header(graph_at)["kid"] != jwks["keys"][0]["kid"]
    me = http_session.get(f"{standin.graph_base_url}/me", headers=bearer(graph_at))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == alice.oid and me.json()["userPrincipalName"] == ALICE
    # Another resource, silently, from the refresh token once consent exists; then cached.
    standin.grant_consent(ALICE, CLIENT_ID, [TODO_READ])
    todo = app.acquire_token_silent_with_error([TODO_READ], account)
    assert todo and "access_token" in todo, todo
    assert standin.token_calls["refresh_token"] == 1
    assert app.acquire_token_silent_with_error([TODO_READ], account)["access_token"] == \
        todo["access_token"]
    assert standin.token_calls["refresh_token"] == 1
    at = claims_of(todo["access_token"])
    assert at["aud"] == TODO_AUD and at["scp"] == "Todo.Read" and at["oid"] == alice.oid
    api = f"{standin.base_url}/apis/todo"
    ok = http_session.post(f"{api}/items?done=1", json={"title": "x"},
                           headers={**bearer(todo["access_token"]), "X-Tenant": "contoso"})
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"api": "todo", "method": "POST", "path": "/items",
                         "query": {"done": "1"}, "oid": alice.oid, "name": alice.name,
                         "preferred_username": ALICE, "scopes": ["Todo.Read"], "roles": [],
                         "idtyp": None, "headers": {"X-Tenant": "contoso"},
                         "body": {"title": "x"}}
    assert [(c["api"], c["path"]) for c in standin.api_calls] == [("graph", "/me"),
                                                                  ("todo", "/items")]
    # Rejections: wrong audience both ways, tampered signature, no token, missing scope.
    cross = http_session.get(f"{api}/items", headers=bearer(graph_at))
    assert cross.status_code == 401 and www_authenticate(cross)["error"] == "invalid_token"
    cross = http_session.get(f"{standin.graph_base_url}/me", headers=bearer(todo["access_token"]))
    assert cross.status_code == 401
    assert cross.json()["error"]["code"] == "InvalidAuthenticationToken"
    head, payload, sig = todo["access_token"].split(".")
    forged = base64.urlsafe_b64encode(json.dumps({**at, "oid": standin.users[BOB].oid}).encode())
    for token in (f"{head}.{forged.decode().rstrip('=')}.{sig}",
                  f"{head}.{payload}.{sig[:-4]}{'AAAA' if sig[-4:] != 'AAAA' else 'BBBB'}"):
        assert http_session.get(f"{api}/items", headers=bearer(token)).status_code == 401
    assert http_session.get(f"{api}/items").status_code == 401
    # Same signing key, another API's audience (and a scope name the todo API also knows).
    standin.register_api("other", "api://22222222-3333-4444-5555-666666666666", ["Todo.Read"])
    other = standin.mint_access_token(ALICE, CLIENT_ID,
                                      ["api://22222222-3333-4444-5555-666666666666/Todo.Read"])
    wrong_aud = http_session.get(f"{api}/items", headers=bearer(other))
    assert wrong_aud.status_code == 401
    assert "audience" in www_authenticate(wrong_aud)["error_description"]
    mail_only = standin.mint_access_token(ALICE, CLIENT_ID, ["Mail.Read"])
    denied = http_session.get(f"{standin.graph_base_url}/me", headers=bearer(mail_only))
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "Authorization_RequestDenied"
    # Expired (the stand-in's clock moves; MSAL's does not).
    standin.clock_offset = 3601
    for url, token in ((f"{standin.graph_base_url}/me", graph_at),
                       (f"{api}/items", todo["access_token"])):
        expired = http_session.get(url, headers=bearer(token))
        assert expired.status_code == 401 and "expired" in www_authenticate(expired)[
            "error_description"]
    assert len(standin.api_calls) == 2
    # The nonce fault: MSAL must refuse an id token whose nonce it did not send.
    standin.clock_offset = 0
    standin.faults.add("wrong_nonce")
    with pytest.raises(RuntimeError, match="nonce"):
        msal_sign_in(app, new_browser(), ["User.Read"], BOB)


def oidc_token_url(standin: StandIn) -> str:
    return f"{standin.oidc_authority}/token"


def assert_oidc_error(resp: requests.Response, error: str) -> None:
    """A generic provider's error JSON (RFC 6749 5.2): no Entra fields."""
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body.keys() == {"error", "error_description"} and body["error"] == error, body
    assert "AADSTS" not in body["error_description"]


def redeem_code(standin: StandIn, session: requests.Session, browser: Browser, scope: str, *,
                oidc: bool = True, username: str = ALICE) -> tuple[requests.Response,
                                                                  dict[str, str]]:
    """Sign ``username`` in at /authorize for ``scope`` and redeem the code (the form MSAL
    sends); returns the /token answer and the form, to replay it."""
    verifier, challenge = pkce_pair()
    authority = standin.oidc_authority if oidc else standin.authority
    code = authorize(standin, browser, username, challenge=challenge, scope=scope,
                     authority=authority)["code"]
    form = {"grant_type": "authorization_code", "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET, "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier, "scope": scope}
    url = oidc_token_url(standin) if oidc else token_url(standin)
    return session.post(url, data=form), form


def refresh_with(standin: StandIn, session: requests.Session, rt: str, scope: str, *,
                 oidc: bool = True) -> requests.Response:
    return session.post(oidc_token_url(standin) if oidc else token_url(standin), data={
        "grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "refresh_token": rt, "scope": scope})


def test_generic_oidc_issuer_with_msal(standin: StandIn, new_browser: Callable[[], Browser],
                                       http_session: requests.Session) -> None:
    app = msal_app(standin, http_session, oidc=True)
    result, response = msal_sign_in(app, new_browser(), ["User.Read"], BOB)
    assert "client_info" not in response and "client_info" not in result
    claims = result["id_token_claims"]
    assert claims["iss"] == standin.oidc_authority
    (account,) = app.get_accounts()
    assert account["home_account_id"] == claims["sub"]
    # Codes do not cross between the Entra and the OIDC endpoints.
    verifier, challenge = pkce_pair()
    code = authorize(standin, new_browser(), challenge=challenge,
                     authority=standin.oidc_authority)["code"]
    cross = http_session.post(token_url(standin), data={
        "grant_type": "authorization_code", "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET, "code": code, "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier, "scope": SIGN_IN})
    assert_error(cross, 400, "invalid_grant", 9002313)


def test_strict_oidc_refresh_token_is_never_widened(
        standin: StandIn, new_browser: Callable[[], Browser],
        http_session: requests.Session) -> None:
    """RFC 6749 section 6: a refresh may not ask for scopes not granted with the token, even
    once the user has consented to them; Entra's refresh tokens serve any consented resource."""
    app = msal_app(standin, http_session, oidc=True)
    browser = new_browser()
    msal_sign_in(app, browser, ["User.Read"])
    (account,) = app.get_accounts()
    standin.grant_consent(ALICE, CLIENT_ID, [TODO_READ])
    standin.reset_counts()
    widened = app.acquire_token_silent_with_error([TODO_READ], account)
    assert widened["error"] == "invalid_scope" and "error_codes" not in widened, widened
    assert standin.token_calls["refresh_token"] == 1 and standin.token_grants == {}
    # The same with the raw protocol: one more Graph scope than granted is refused too, while
    # the granted scopes (or fewer) are fine.
    body, _ = redeem_code(standin, http_session, browser, f"{SIGN_IN} User.Read")
    rt = body.json()["refresh_token"]
    assert_oidc_error(refresh_with(standin, http_session, rt, f"{SIGN_IN} {TODO_READ}"),
                      "invalid_scope")
    assert_oidc_error(refresh_with(standin, http_session, rt, f"{SIGN_IN} User.Read Mail.Read"),
                      "invalid_scope")
    assert_oidc_error(refresh_with(standin, http_session, rt, f"{SIGN_IN} email User.Read"),
                      "invalid_scope")
    ok = refresh_with(standin, http_session, rt, f"{SIGN_IN} User.Read")
    assert ok.status_code == 200, ok.text
    # A refused refresh did not use the token up: after the interactive round trip for the
    # API, MSAL holds two refresh tokens, and the silent call finds the one that fits.
    result, _ = msal_sign_in(app, browser, [TODO_READ])
    standin.reset_counts()
    todo = app.acquire_token_silent_with_error([TODO_READ], account, force_refresh=True)
    assert todo and "access_token" in todo, todo
    assert claims_of(todo["access_token"])["aud"] == TODO_AUD
    assert standin.token_grants == {"refresh_token": 1}
    # Entra, for contrast: the Graph sign-in's refresh token serves the consented API.
    entra = msal_app(standin, make_http_session(str(http_session.verify)))
    msal_sign_in(entra, new_browser(), ["User.Read"])
    assert "access_token" in entra.acquire_token_silent_with_error(
        [TODO_READ], entra.get_accounts()[0])


def test_strict_oidc_refresh_tokens_rotate_and_reuse_revokes_the_family(
        standin: StandIn, new_browser: Callable[[], Browser],
        http_session: requests.Session) -> None:
    scope = f"{SIGN_IN} User.Read"
    first, _ = redeem_code(standin, http_session, new_browser(), scope)
    other, _ = redeem_code(standin, http_session, new_browser(), scope, username=BOB)
    rt1 = first.json()["refresh_token"]
    standin.reset_counts()
    second = refresh_with(standin, http_session, rt1, scope)
    assert second.status_code == 200, second.text
    rt2 = second.json()["refresh_token"]
    third = refresh_with(standin, http_session, rt2, scope)
    rt3 = third.json()["refresh_token"]
    assert len({rt1, rt2, rt3}) == 3
    # rt1 was exchanged: its reuse fails and revokes rt3, the family's live token...
    assert_oidc_error(refresh_with(standin, http_session, rt1, scope), "invalid_grant")
    assert_oidc_error(refresh_with(standin, http_session, rt3, scope), "invalid_grant")
    # ...but not another sign-in's tokens.
    assert refresh_with(standin, http_session, other.json()["refresh_token"],
                        scope).status_code == 200
    assert standin.token_calls["refresh_token"] == 5
    assert standin.token_grants["refresh_token"] == 3
    # Entra keeps the old refresh token valid after rotation.
    entra, _ = redeem_code(standin, http_session, new_browser(), scope, oidc=False)
    old = entra.json()["refresh_token"]
    for _ in range(2):
        assert refresh_with(standin, http_session, old, scope, oidc=False).status_code == 200


def test_msal_swaps_in_rotated_refresh_tokens(
        standin: StandIn, new_browser: Callable[[], Browser],
        http_session: requests.Session) -> None:
    """MSAL replaces the refresh token it used with the new one (TokenCache.update_rt), so a
    rotating provider keeps working through repeated refreshes."""
    app = msal_app(standin, http_session, oidc=True)
    msal_sign_in(app, new_browser(), ["User.Read"])
    (account,) = app.get_accounts()

    def refresh_tokens() -> list[str]:
        return [rt["secret"] for rt in app.token_cache.search(
            msal.TokenCache.CredentialType.REFRESH_TOKEN)]

    before = refresh_tokens()
    standin.reset_counts()
    for _ in range(3):
        result = app.acquire_token_silent_with_error(["User.Read"], account, force_refresh=True)
        assert result and "access_token" in result, result
    assert standin.token_calls == {"refresh_token": 3} == standin.token_grants
    after = refresh_tokens()
    assert len(after) == len(before) == 1 and after != before


def test_strict_oidc_code_replay_revokes_the_tokens_issued_from_it(
        standin: StandIn, new_browser: Callable[[], Browser],
        http_session: requests.Session) -> None:
    scope = f"{SIGN_IN} User.Read"
    first, form = redeem_code(standin, http_session, new_browser(), scope)
    other, _ = redeem_code(standin, http_session, new_browser(), scope)
    rt = first.json()["refresh_token"]
    standin.reset_counts()
    assert_oidc_error(http_session.post(oidc_token_url(standin), data=form), "invalid_grant")
    assert_oidc_error(refresh_with(standin, http_session, rt, scope), "invalid_grant")
    assert refresh_with(standin, http_session, other.json()["refresh_token"],
                        scope).status_code == 200
    assert standin.token_grants == {"refresh_token": 1}
    # Entra answers a replay with AADSTS54005 and keeps the refresh token.
    entra, entra_form = redeem_code(standin, http_session, new_browser(), scope, oidc=False)
    assert_error(http_session.post(token_url(standin), data=entra_form), 400, "invalid_grant",
                 54005)
    assert refresh_with(standin, http_session, entra.json()["refresh_token"], scope,
                        oidc=False).status_code == 200


def test_claims_challenge_round_trip(standin: StandIn, new_browser: Callable[[], Browser],
                                     http_session: requests.Session) -> None:
    app = msal_app(standin, http_session, client_capabilities=["cp1"])
    browser = new_browser()
    msal_sign_in(app, browser, ["User.Read"])
    (account,) = app.get_accounts()
    standin.grant_consent(ALICE, CLIENT_ID, [TODO_READ])
    todo = app.acquire_token_silent_with_error([TODO_READ], account)["access_token"]
    demand = {"access_token": {"acrs": {"essential": True, "value": "c1"}}}
    standin.demand_claims("todo", demand, step_up=True)
    api = f"{standin.base_url}/apis/todo/items"
    challenged = http_session.get(api, headers=bearer(todo))
    assert challenged.status_code == 401
    params = www_authenticate(challenged)
    assert params["error"] == "insufficient_claims"
    assert params["authorization_uri"] == f"{standin.authority}/oauth2/v2.0/authorize"
    claims = base64.b64decode(params["claims"]).decode()
    assert json.loads(claims) == demand
    # Step-up: the refresh token cannot satisfy it; MSAL gets 50076 / basic_action.
    silent = app.acquire_token_silent_with_error([TODO_READ], account, claims_challenge=claims)
    assert silent["error"] == "invalid_grant" and silent["error_codes"] == [50076], silent
    assert silent["classification"] == "basic_action"
    # An interactive sign-in with the claims gives a token that carries them.
    result, _ = msal_sign_in(app, browser, [TODO_READ], claims_challenge=claims)
    stepped = claims_of(result["access_token"])
    assert stepped["acrs"] == ["c1"] and stepped["xms_cc"] == ["cp1"]
    assert http_session.get(api, headers=bearer(result["access_token"])).status_code == 200
    # Its refresh token now satisfies the demand too.
    again = app.acquire_token_silent_with_error([TODO_READ], account, claims_challenge=claims)
    assert claims_of(again["access_token"])["acrs"] == ["c1"], again
    # Without step-up (e.g. a CAE-style challenge), the refresh itself satisfies the claims.
    graph_demand = {"access_token": {"nbf": {"essential": True, "value": "1700000000"}}}
    standin.demand_claims("graph", graph_demand, step_up=False)
    graph_at = app.acquire_token_silent_with_error(["User.Read"], account)["access_token"]
    me = f"{standin.graph_base_url}/me"
    challenged = http_session.get(me, headers=bearer(graph_at))
    assert challenged.status_code == 401
    decoded = base64.b64decode(www_authenticate(challenged)["claims"]).decode()
    fresh = app.acquire_token_silent_with_error(["User.Read"], account, claims_challenge=decoded)
    assert http_session.get(me, headers=bearer(fresh["access_token"])).status_code == 200
    standin.demand_claims("graph", None, step_up=False)
    assert http_session.get(me, headers=bearer(graph_at)).status_code == 200


def test_browser_pages_on_plain_http_localhost(
        tls_server_files: tuple[str, str], ca_bundle_path: str) -> None:
    cert, key = tls_server_files
    with StandIn(cert, key, browser_base_url="http://localhost:0") as standin, \
            make_http_session(ca_bundle_path) as session, Browser(ca_bundle_path) as browser:
        standin.register_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI],
                                [POST_LOGOUT_REDIRECT_URI], optional_claims=["login_hint"])
        web = standin.browser_base_url
        assert web and web.startswith("http://localhost:") and not web.endswith(":0")
        doc = session.get(f"{standin.authority}/v2.0/.well-known/openid-configuration").json()
        assert doc["authorization_endpoint"] == f"{web}/{standin.tenant_id}/oauth2/v2.0/authorize"
        assert doc["end_session_endpoint"] == f"{web}/{standin.tenant_id}/oauth2/v2.0/logout"
        assert doc["token_endpoint"].startswith(standin.base_url + "/")
        app = msal_app(standin, session)
        flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT_URI,
                                           response_mode="form_post")
        assert flow["auth_uri"].startswith(web + "/")
        page = browser.get(flow["auth_uri"])
        response = auth_response(browser.sign_in(page, ALICE, follow=False))
        result = app.acquire_token_by_auth_code_flow(flow, response)
        assert result["id_token_claims"]["preferred_username"] == ALICE, result
        # The plain-http listener serves no token endpoint, discovery or APIs.
        for path in (f"/{standin.tenant_id}/oauth2/v2.0/token", "/graph/v1.0/me",
                     f"/{standin.tenant_id}/v2.0/.well-known/openid-configuration"):
            assert browser.post(web + path, data={"grant_type": "x"}).status_code == 404
        out = browser.get(doc["end_session_endpoint"], allow_redirects=False, params={
            "logout_hint": result["id_token_claims"]["login_hint"],
            "post_logout_redirect_uri": POST_LOGOUT_REDIRECT_URI})
        assert out.headers["Location"] == POST_LOGOUT_REDIRECT_URI
        assert not standin.errors


def signed_in(standin: StandIn, browser: Browser, authority: str) -> bool:
    """Whether the provider session of ``browser`` still has a signed-in user (prompt=none)."""
    _, challenge = pkce_pair()
    answer = auth_response(browser.get(authorize_url(standin, challenge=challenge,
                                                     prompt="none", authority=authority)))
    return "code" in answer


def test_login_hint_is_an_optional_claim(standin: StandIn, new_browser: Callable[[], Browser],
                                         http_session: requests.Session) -> None:
    plain, _ = msal_sign_in(msal_app(standin, http_session), new_browser(), ["User.Read"])
    assert "login_hint" not in plain["id_token_claims"]
    standin.register_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI],
                            optional_claims=["login_hint"])
    asked, _ = msal_sign_in(msal_app(standin, http_session), new_browser(), ["User.Read"])
    hint = asked["id_token_claims"]["login_hint"]
    assert hint and ALICE not in hint and standin.users[ALICE].oid not in hint  # opaque
    bob, _ = msal_sign_in(msal_app(standin, http_session), new_browser(), ["User.Read"], BOB)
    assert bob["id_token_claims"]["login_hint"] not in ("", hint)
    # Generic OpenID Connect providers have no such claim.
    oidc, _ = msal_sign_in(msal_app(standin, http_session, oidc=True), new_browser(),
                           ["User.Read"])
    assert "login_hint" not in oidc["id_token_claims"]


def test_entra_logout(standin: StandIn, new_browser: Callable[[], Browser],
                      http_session: requests.Session) -> None:
    standin.register_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI, POST_LOGOUT_REDIRECT_URI],
                            optional_claims=["login_hint"])
    logout = f"{standin.authority}/oauth2/v2.0/logout"
    browser = new_browser()
    result, _ = msal_sign_in(msal_app(standin, http_session), browser, ["User.Read"])
    hint = result["id_token_claims"]["login_hint"]
    assert signed_in(standin, browser, standin.authority)
    # logout_hint names the account: signed out and sent back at once (with state).
    out = browser.get(logout, params={"post_logout_redirect_uri": POST_LOGOUT_REDIRECT_URI,
                                      "logout_hint": hint, "state": "s1"},
                      allow_redirects=False)
    assert out.status_code == 302, out.text
    assert out.headers["Location"] == f"{POST_LOGOUT_REDIRECT_URI}?state=s1"
    assert standin.last_logout == {"post_logout_redirect_uri": POST_LOGOUT_REDIRECT_URI,
                                   "logout_hint": hint, "state": "s1"}
    assert not signed_in(standin, browser, standin.authority)

    # Without logout_hint (or with one of nobody signed in here), the user picks the account.
    msal_sign_in(msal_app(standin, http_session), browser, ["User.Read"])
    for extra in ({}, {"logout_hint": "O.not-a-hint"}):
        picker = browser.get(logout, params={"post_logout_redirect_uri": POST_LOGOUT_REDIRECT_URI,
                                             **extra}, allow_redirects=False)
        assert picker.status_code == 200 and "Pick an account" in picker.text
        assert "Location" not in picker.headers and signed_in(standin, browser, standin.authority)
    (form,) = parse_forms(picker)
    assert form.get("logout_hint") == hint
    out = browser.submit_form(picker, allow_redirects=False)
    assert out.headers["Location"] == POST_LOGOUT_REDIRECT_URI
    assert not signed_in(standin, browser, standin.authority)

    # The target must be a redirect URI of the app signed out of (no separate list).
    for target in ("https://evil.test/", "https://app.test/elsewhere"):
        browser = new_browser()
        result, _ = msal_sign_in(msal_app(standin, http_session), browser, ["User.Read"])
        page = browser.get(logout, params={"post_logout_redirect_uri": target,
                                           "logout_hint": result["id_token_claims"][
                                               "login_hint"]}, allow_redirects=False)
        assert page.status_code == 200 and "You signed out" in page.text, target
        assert "Location" not in page.headers and target not in page.text
    # No session, so no app to check the target against, unless client_id names it.
    anonymous = new_browser()
    page = anonymous.get(logout, params={"post_logout_redirect_uri": POST_LOGOUT_REDIRECT_URI},
                         allow_redirects=False)
    assert page.status_code == 200 and "Location" not in page.headers
    out = anonymous.get(logout, params={"post_logout_redirect_uri": POST_LOGOUT_REDIRECT_URI,
                                        "client_id": CLIENT_ID}, allow_redirects=False)
    assert out.headers["Location"] == POST_LOGOUT_REDIRECT_URI
    assert standin.logout_calls == 8


class _Recorder(http.server.BaseHTTPRequestHandler):
    """An app's front-channel logout URL: records each request (path and query, Cookie)."""

    seen: list[tuple[str, str | None]]

    def do_GET(self) -> None:  # noqa: N802 - the handler's protocol
        self.seen.append((self.path, self.headers.get("Cookie")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_entra_sign_out_calls_the_front_channel_logout_url_of_each_app_signed_in_to(
        standin: StandIn, new_browser: Callable[[], Browser],
        http_session: requests.Session) -> None:
    seen: list[tuple[str, str | None]] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as apps:
        threading.Thread(target=apps.serve_forever, daemon=True).start()
        try:
            base = f"http://127.0.0.1:{apps.server_address[1]}"
            standin.register_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI],
                                    optional_claims=["login_hint"],
                                    front_channel_logout_url=f"{base}/a/logout?x=1")
            standin.register_client(OTHER_ID, OTHER_SECRET, [REDIRECT_URI],
                                    front_channel_logout_url=f"{base}/b/logout")
            browser = new_browser()
            first, _ = msal_sign_in(msal_app(standin, http_session), browser, ["User.Read"])
            again, _ = msal_sign_in(msal_app(standin, http_session), browser, ["User.Read"])
            sid = first["id_token_claims"]["sid"]
            # One provider session, one sid, whatever the sign-ins in it; another browser's
            # session has its own.
            assert again["id_token_claims"]["sid"] == sid
            elsewhere, _ = msal_sign_in(msal_app(standin, http_session), new_browser(),
                                        ["User.Read"])
            assert elsewhere["id_token_claims"]["sid"] != sid
            browser.get(f"{standin.authority}/oauth2/v2.0/logout",
                        params={"logout_hint": first["id_token_claims"]["login_hint"]})
        finally:
            apps.shutdown()
    # The app signed in to in that browser session, once, with the sid only (as Entra), and no
    # cookie; not the app the user never signed in to there.
    assert seen == [(f"/a/logout?x=1&sid={sid}", None)]
    assert standin.front_channel_calls == [(f"{base}/a/logout?x=1&sid={sid}", 200)]


def test_oidc_logout_like_keycloak(standin: StandIn, new_browser: Callable[[], Browser],
                                   http_session: requests.Session) -> None:
    logout = f"{standin.oidc_authority}/logout"
    browser = new_browser()
    result, _ = msal_sign_in(msal_app(standin, http_session, oidc=True), browser, ["User.Read"])
    id_token = result["id_token"]
    entra, _ = msal_sign_in(msal_app(standin, http_session), new_browser(), ["User.Read"])
    target = {"post_logout_redirect_uri": POST_LOGOUT_REDIRECT_URI}

    def refused(params: dict[str, str], why: str) -> None:
        page = browser.get(logout, params=params, allow_redirects=False)
        assert page.status_code == 400 and why in page.text, (params, page.text)
        assert "Location" not in page.headers and not parse_forms(page)

    refused(target, "id_token_hint")  # Keycloak 18+: "Missing parameters: id_token_hint"
    refused({**target, "id_token_hint": "forged.token.here"}, "Invalid parameter: id_token_hint")
    refused({**target, "id_token_hint": entra["id_token"]}, "Invalid parameter: id_token_hint")
    refused({**target, "id_token_hint": id_token, "client_id": OTHER_ID}, "client_id")
    refused({**target, "client_id": OTHER_ID}, "Invalid parameter: client_id")
    refused({"post_logout_redirect_uri": "https://evil.test/", "id_token_hint": id_token},
            "Invalid redirect uri")
    assert signed_in(standin, browser, standin.oidc_authority)
    # client_id alone: the user confirms first.
    confirm = browser.get(logout, params={**target, "client_id": CLIENT_ID, "state": "s2"},
                          allow_redirects=False)
    assert confirm.status_code == 200 and "Do you want to log out?" in confirm.text
    assert signed_in(standin, browser, standin.oidc_authority)
    out = browser.submit_form(confirm, allow_redirects=False)
    assert out.headers["Location"] == f"{POST_LOGOUT_REDIRECT_URI}?state=s2"
    assert not signed_in(standin, browser, standin.oidc_authority)
    # id_token_hint (even expired): no question asked.
    browser = new_browser()
    msal_sign_in(msal_app(standin, http_session, oidc=True), browser, ["User.Read"])
    standin.clock_offset = 7200
    out = browser.get(logout, params={**target, "id_token_hint": id_token},
                      allow_redirects=False)
    assert out.headers["Location"] == POST_LOGOUT_REDIRECT_URI
    assert not signed_in(standin, browser, standin.oidc_authority)


def test_private_key_jwt_client_assertions(standin: StandIn, tls_ca: trustme.CA,
                                           http_session: requests.Session) -> None:
    # Entra takes RSA certificates only (trustme's default is ECDSA).
    issued = tls_ca.issue_cert("client.contoso.test", key_type=trustme.KeyType.RSA)
    cert_pem = issued.cert_chain_pems[0].bytes().decode()
    key_pem = issued.private_key_pem.bytes().decode()
    cert_id = "ce271000-0000-4000-8000-000000000001"
    standin.register_client(cert_id, None, [REDIRECT_URI])
    standin.register_client_certificate(cert_id, cert_pem)
    # MSAL with the certificate: PS256 + x5t#S256, client credentials for the custom API.
    app = msal.ConfidentialClientApplication(
        cert_id, client_credential={"private_key": key_pem, "public_certificate": cert_pem},
        authority=standin.authority, instance_discovery=False, http_client=http_session)
    result = app.acquire_token_for_client([f"{TODO_RESOURCE}/.default"])
    assert "access_token" in result and "refresh_token" not in result, result
    assert claims_of(result["access_token"])["aud"] == TODO_AUD
    # Hand-made assertions: RS256 + x5t, reuse of one assertion, expiry, unknown key, audience.
    cert = load_pem_x509_certificate(cert_pem.encode())
    key = serialization.load_pem_private_key(key_pem.encode(), None)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    def assertion(alg: str = "RS256", exp_in: int = 600, aud: str | None = None,
                  signer: Any = key) -> str:
        header = ({"x5t": b64(cert.fingerprint(hashes.SHA1()))} if alg == "RS256"
                  else {"x5t#S256": b64(cert.fingerprint(hashes.SHA256()))})
        now = int(time.time())
        return jwt.encode({"aud": aud or token_url(standin), "iss": cert_id, "sub": cert_id,
                           "jti": str(uuid.uuid4()), "iat": now, "exp": now + exp_in},
                          signer, algorithm=alg, headers=header)

    def call(signed: str) -> requests.Response:
        return http_session.post(token_url(standin), data={
            "grant_type": "client_credentials", "client_id": cert_id,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": signed, "scope": f"{TODO_RESOURCE}/.default"})

    standin.reset_counts()
    reused = assertion()
    assert call(reused).status_code == 200 and call(reused).status_code == 200
    assert call(assertion("PS256")).status_code == 200
    # Each use is logged under the certificate's SHA-256 thumbprint, whatever the header named.
    assert standin.client_auth_log == 3 * [ClientAuth(cert_id, "certificate",
                                                      b64(cert.fingerprint(hashes.SHA256())),
                                                      "client_credentials")]
    assert_error(call(assertion(exp_in=-1000)), 401, "invalid_client", 700024)
    other_key = serialization.load_pem_private_key(
        tls_ca.issue_cert("x.test", key_type=trustme.KeyType.RSA).private_key_pem.bytes(), None)
    assert_error(call(assertion(signer=other_key)), 401, "invalid_client", 700027)
    assert_error(call(assertion(aud=f"{standin.base_url}/common/oauth2/v2.0/token")), 401,
                 "invalid_client", 700023)
    assert len(standin.client_auth_log) == 3  # refusals are not client authentications
    # An unregistered certificate is unknown again, for the assertion in use too.
    standin.unregister_client_certificate(cert_id, cert_pem)
    assert_error(call(reused), 401, "invalid_client", 700027)
    assert_error(call(assertion("PS256")), 401, "invalid_client", 700027)
    with pytest.raises(KeyError):
        standin.unregister_client_certificate(cert_id, cert_pem)
    standin.register_client_certificate(CLIENT_ID, tls_ca.issue_cert("y.test")
                                        .cert_chain_pems[0].bytes())
    assert_error(http_session.post(token_url(standin), data={
        "grant_type": "client_credentials", "client_id": CLIENT_ID,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": reused, "scope": f"{TODO_RESOURCE}/.default"}),
        401, "invalid_client", 700027)


def client_credentials(standin: StandIn, session: requests.Session, client_id: str, *,
                       oidc: bool = False, **credential: str) -> requests.Response:
    """A client credentials request for the todo API, authenticated by ``credential``: a
    ``client_secret`` or a ``client_assertion`` (its type is added)."""
    if "client_assertion" in credential:
        credential = {"client_assertion_type": ASSERTION_TYPE, **credential}
    url = oidc_token_url(standin) if oidc else token_url(standin)
    return session.post(url, data={"grant_type": "client_credentials", "client_id": client_id,
                                   "scope": TODO_DEFAULT, **credential})


def test_several_client_secrets_revoked_and_expired(standin: StandIn,
                                                    http_session: requests.Session) -> None:
    def with_secret(secret: str, *, basic: bool = False) -> requests.Response:
        if basic:  # client_secret_basic: the same checks
            return http_session.post(token_url(standin), auth=(CLIENT_ID, secret), data={
                "grant_type": "client_credentials", "scope": TODO_DEFAULT})
        return client_credentials(standin, http_session, CLIENT_ID, client_secret=secret)

    first = standin.client_secret_id(CLIENT_ID, CLIENT_SECRET)  # register_client's secret
    second = standin.add_client_secret(CLIENT_ID, "second-secret-value")
    assert uuid.UUID(first) and uuid.UUID(second) and first != second
    assert standin.add_client_secret(CLIENT_ID, "second-secret-value") == second
    standin.reset_counts()
    assert with_secret(CLIENT_SECRET).status_code == 200
    assert with_secret("second-secret-value", basic=True).status_code == 200
    assert standin.client_auth_log == [
        ClientAuth(CLIENT_ID, "secret", first, "client_credentials"),
        ClientAuth(CLIENT_ID, "secret", second, "client_credentials")]
    assert "secret-value" not in repr(standin.client_auth_log)
    # A removed secret is refused like a wrong one; the other keeps working.
    standin.remove_client_secret(CLIENT_ID, CLIENT_SECRET)
    assert_error(with_secret(CLIENT_SECRET), 401, "invalid_client", 7000215)
    assert_error(with_secret(CLIENT_SECRET, basic=True), 401, "invalid_client", 7000215)
    assert with_secret("second-secret-value").status_code == 200
    with pytest.raises(KeyError):
        standin.client_secret_id(CLIENT_ID, CLIENT_SECRET)
    # Registering the app again sets its first secret and keeps the ones added since.
    standin.register_client(CLIENT_ID, "new-first-secret", [REDIRECT_URI])
    assert with_secret("new-first-secret").status_code == 200
    assert with_secret("second-secret-value").status_code == 200
    assert_error(with_secret(CLIENT_SECRET), 401, "invalid_client", 7000215)
    # An expired secret: AADSTS7000222 from its expiry on, on the stand-in's clock.
    expiring = standin.add_client_secret(CLIENT_ID, "short-lived", expires_at=standin.now() + 60)
    assert with_secret("short-lived").status_code == 200
    standin.clock_offset += 61
    expired = with_secret("short-lived")
    assert_error(expired, 401, "invalid_client", 7000222)
    assert (f"The provided client secret keys for app '{CLIENT_ID}' are expired."
            in expired.json()["error_description"])
    assert with_secret("second-secret-value").status_code == 200
    assert [r.credential for r in standin.client_auth_log] == [
        first, second, second, standin.client_secret_id(CLIENT_ID, "new-first-secret"), second,
        expiring, second]
    standin.reset_counts()
    assert standin.client_auth_log == []


K8S_ISSUER = "https://oidc.kubernetes.test/cluster-1"
SERVICE_ACCOUNT = "system:serviceaccount:web:portal"


def test_federated_credentials_match_issuer_subject_and_audience(
        standin: StandIn, http_session: requests.Session) -> None:
    fed_id = "fed00000-0000-4000-8000-000000000001"
    standin.register_client(fed_id, None, [REDIRECT_URI])
    cluster = standin.external_issuer(K8S_ISSUER)
    assert standin.external_issuer(K8S_ISSUER) is cluster  # one issuer, one key
    standin.add_federated_credential(fed_id, issuer=K8S_ISSUER, subject=SERVICE_ACCOUNT)

    def present(token: str) -> requests.Response:
        return client_credentials(standin, http_session, fed_id, client_assertion=token)

    # The same token may be presented many times while it is valid; MSAL takes it too.
    standin.reset_counts()
    token = cluster.mint(SERVICE_ACCOUNT)
    assert claims_of(token)["aud"] == TOKEN_EXCHANGE_AUDIENCE
    assert all(present(token).status_code == 200 for _ in range(3))
    app = msal.ConfidentialClientApplication(
        fed_id, client_credential={"client_assertion": lambda: token},
        authority=standin.authority, instance_discovery=False, http_client=http_session)
    assert "access_token" in app.acquire_token_for_client([TODO_DEFAULT])
    assert standin.client_auth_log == 4 * [ClientAuth(
        fed_id, "federated", f"{K8S_ISSUER}|{SERVICE_ACCOUNT}", "client_credentials")]
    # Expired; another audience; another subject, also by case only (Entra is case-sensitive).
    assert_error(present(cluster.mint(SERVICE_ACCOUNT, lifetime=-600)), 401,
                 "invalid_client", 700024)
    assert_error(present(cluster.mint(SERVICE_ACCOUNT, audience="api://Elsewhere")), 401,
                 "invalid_client", 700212)
    for subject in ("system:serviceaccount:web:other", SERVICE_ACCOUNT.upper()):
        wrong = present(cluster.mint(subject))
        assert_error(wrong, 401, "invalid_client", 700213)
        assert ("No matching federated identity record found for presented assertion subject "
                f"'{subject}'") in wrong.json()["error_description"]
    # An issuer the app does not trust (known to the stand-in or not): no record for it.
    github = standin.external_issuer("https://token.actions.githubusercontent.com")
    for issuer in (github, standin.external_issuer(K8S_ISSUER.upper())):
        unknown = present(issuer.mint(SERVICE_ACCOUNT))
        assert_error(unknown, 401, "invalid_client", 700211)
        assert f"presented assertion issuer '{issuer.url}'" in unknown.json()[
            "error_description"]
    # A trusted issuer's name on a token it did not sign: a key it does not publish, or its
    # key id on another key's signature.
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = claims_of(token)
    assert_error(present(jwt.encode(claims, forger, algorithm="RS256", headers={"kid": "k2"})),
                 401, "invalid_client", 7000272)
    assert_error(present(jwt.encode(claims, forger, algorithm="RS256",
                                    headers={"kid": cluster.kid})), 401, "invalid_client",
                 7000274)
    # A credential naming an issuer whose keys cannot be had (Entra fetches its metadata).
    standin.add_federated_credential(fed_id, issuer="https://unreachable.test",
                                     subject=SERVICE_ACCOUNT)
    assert_error(present(jwt.encode({**claims, "iss": "https://unreachable.test"}, forger,
                                    algorithm="RS256", headers={"kid": "k"})),
                 400, "invalid_request", 50166)
    assert len(standin.client_auth_log) == 4  # none of the refusals authenticated
    # Removing credentials: the issuer's last one goes; with none left, Entra says so.
    standin.remove_federated_credential(fed_id, issuer=K8S_ISSUER, subject=SERVICE_ACCOUNT)
    assert_error(present(token), 401, "invalid_client", 700211)
    standin.remove_federated_credential(fed_id, issuer="https://unreachable.test",
                                        subject=SERVICE_ACCOUNT)
    assert_error(present(token), 401, "invalid_client", 70025)
    with pytest.raises(KeyError):
        standin.remove_federated_credential(fed_id, issuer=K8S_ISSUER, subject=SERVICE_ACCOUNT)
    # An issuer's keys are public, for apps that check such tokens themselves.
    key = jwt.PyJWK(cluster.jwks()["keys"][0]).key
    assert jwt.decode(token, key, algorithms=["RS256"],
                      audience=TOKEN_EXCHANGE_AUDIENCE)["iss"] == K8S_ISSUER


def test_managed_identity_app_service_endpoint_through_msal(
        standin: StandIn, http_session: requests.Session,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)  # other managed identity sources
    monkeypatch.setenv("IDENTITY_ENDPOINT", standin.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", standin.identity_header)
    assert standin.identity_endpoint.startswith("http://127.0.0.1:")
    assert standin.identity_endpoint.endswith("/msi/token")
    system = standin.add_managed_identity()
    assert standin.add_managed_identity() is system  # one system-assigned identity
    user_id = "a55e55ed-0000-4000-8000-0000000005e2"
    user = standin.add_managed_identity(client_id=user_id)
    assert len({system.object_id, system.client_id, user.object_id, user_id}) == 4

    def identity_token(identity: Any) -> dict[str, Any]:
        client = msal.ManagedIdentityClient(identity, http_client=http_session)
        return client.acquire_token_for_client(resource=TOKEN_EXCHANGE_AUDIENCE)

    result = identity_token(msal.SystemAssignedManagedIdentity())
    assert "access_token" in result, result
    assert standin.msi_requests == [{"resource": TOKEN_EXCHANGE_AUDIENCE, "client_id": None,
                                     "api_version": "2019-08-01"}]
    # A v2 app-only token of the stand-in's tenant, signed with its published key.
    jwks = http_session.get(f"{standin.authority}/discovery/v2.0/keys").json()
    signed = jwt.decode(result["access_token"], jwt.PyJWK(jwks["keys"][0]).key,
                        algorithms=["RS256"], audience=TOKEN_EXCHANGE_AUDIENCE)
    assert signed["iss"] == standin.issuer == f"{standin.base_url}/{standin.tenant_id}/v2.0"
    assert signed["sub"] == signed["oid"] == system.object_id
    assert signed["azp"] == system.client_id and signed["tid"] == standin.tenant_id
    user_result = identity_token(msal.UserAssignedManagedIdentity(client_id=user_id))
    assert claims_of(user_result["access_token"])["oid"] == user.object_id
    assert standin.msi_requests[-1]["client_id"] == user_id
    # An identity the app service does not have; a wrong or missing X-IDENTITY-HEADER.
    unknown = identity_token(msal.UserAssignedManagedIdentity(
        client_id="0dd00000-0000-4000-8000-000000000000"))
    assert unknown.get("error_description") == "400, Unable to load the proper Managed Identity."
    params = {"api-version": "2019-08-01", "resource": TOKEN_EXCHANGE_AUDIENCE}
    raw = http_session.get(standin.identity_endpoint, params=params,
                           headers={"X-IDENTITY-HEADER": "not-the-header"})
    assert raw.status_code == 401 and raw.json()["statusCode"] == 401
    assert http_session.get(standin.identity_endpoint, params=params).status_code == 400
    old_version = {**params, "api-version": "2017-09-01"}  # App Service's older protocol
    assert http_session.get(standin.identity_endpoint, params=old_version, headers={
        "X-IDENTITY-HEADER": standin.identity_header}).status_code == 400
    # Only on its own listener: the https endpoints do not serve it.
    assert http_session.get(f"{standin.base_url}/msi/token", params=params).status_code == 404
    # The identity as an app registration's federated credential (the managed identity's
    # token is the client assertion, fetched by MSAL's callback at each token request).
    app_id = "a9900000-0000-4000-8000-000000000001"
    standin.register_client(app_id, None, [REDIRECT_URI])
    standin.add_federated_credential(app_id, issuer=standin.issuer, subject=user.object_id)
    standin.reset_counts()
    user_client = msal.ManagedIdentityClient(msal.UserAssignedManagedIdentity(client_id=user_id),
                                             http_client=http_session)
    app = msal.ConfidentialClientApplication(
        app_id, authority=standin.authority, instance_discovery=False, http_client=http_session,
        client_credential={"client_assertion": lambda: user_client.acquire_token_for_client(
            resource=TOKEN_EXCHANGE_AUDIENCE)["access_token"]})
    assert "access_token" in app.acquire_token_for_client([TODO_DEFAULT])
    assert standin.client_auth_log == [ClientAuth(
        app_id, "federated", f"{standin.issuer}|{user.object_id}", "client_credentials")]
    # Another identity's token; a user's token from the same issuer (app-only tokens only).
    assert_error(client_credentials(standin, http_session, app_id,
                                    client_assertion=result["access_token"]),
                 401, "invalid_client", 700213)
    # The system-assigned identity, even when a federated credential names it: Entra documents
    # only user-assigned identities as federated credentials (its answer is UNCONFIRMED)...
    standin.add_federated_credential(app_id, issuer=standin.issuer, subject=system.object_id)
    refused = client_credentials(standin, http_session, app_id,
                                 client_assertion=result["access_token"])
    assert_error(refused, 401, "invalid_client", 70021)
    assert "Only user-assigned managed identities" in refused.json()["error_description"]
    # ...unless the stand-in is told to trust it.
    monkeypatch.setattr(standin, "system_identity_federation", True)
    assert client_credentials(standin, http_session, app_id,
                              client_assertion=result["access_token"]).status_code == 200
    user_token = standin.mint_access_token(ALICE, CLIENT_ID, [TODO_READ])
    assert_error(client_credentials(standin, http_session, app_id, client_assertion=user_token),
                 401, "invalid_client", 700229)


def assert_oidc_client_error(resp: requests.Response) -> None:
    """A strict provider's refusal of a client's credentials: 401 invalid_client, RFC 6749
    error JSON without Entra's fields."""
    assert resp.status_code == 401, resp.text
    body = resp.json()
    assert body.keys() == {"error", "error_description"} and body["error"] == "invalid_client"
    assert "AADSTS" not in body["error_description"]


def test_strict_oidc_private_key_jwt_rules(standin: StandIn, tls_ca: trustme.CA,
                                           http_session: requests.Session) -> None:
    issued = tls_ca.issue_cert("client.contoso.test", key_type=trustme.KeyType.RSA)
    cert_pem = issued.cert_chain_pems[0].bytes().decode()
    key: Any = serialization.load_pem_private_key(issued.private_key_pem.bytes(), None)
    cert = load_pem_x509_certificate(cert_pem.encode())
    thumbprint = base64.urlsafe_b64encode(cert.fingerprint(hashes.SHA256())).rstrip(b"=").decode()
    cert_id = "ce271000-0000-4000-8000-000000000002"
    standin.register_client(cert_id, None, [REDIRECT_URI])
    standin.register_client_certificate(cert_id, cert_pem)

    def assertion(drop: str = "", header: dict[str, str] | None = None,
                  **claims: Any) -> str:
        now = int(time.time())
        body = {"aud": oidc_token_url(standin), "iss": cert_id, "sub": cert_id,
                "jti": str(uuid.uuid4()), "iat": now, "exp": now + 300, **claims}
        body.pop(drop, None)
        return jwt.encode(body, key, algorithm="RS256", headers=header or {"kid": "any-id"})

    def present(signed: str) -> requests.Response:
        return client_credentials(standin, http_session, cert_id, oidc=True,
                                  client_assertion=signed)

    standin.reset_counts()
    once = assertion()
    assert present(once).status_code == 200  # an unknown kid: each certificate is tried
    assert_oidc_client_error(present(once))  # a replayed jti is refused
    # The audience may be the issuer identifier too; the key named by x5t#S256 or kid.
    assert present(assertion(aud=standin.oidc_issuer,
                             header={"x5t#S256": thumbprint})).status_code == 200
    assert present(assertion(header={"kid": thumbprint})).status_code == 200
    assert standin.client_auth_log == 3 * [ClientAuth(cert_id, "certificate", thumbprint,
                                                      "client_credentials")]
    for refused in (assertion(aud=token_url(standin)),  # Entra's token endpoint: not ours
                    assertion(aud=standin.issuer),
                    assertion(drop="jti"), assertion(drop="exp"), assertion(exp=1_000_000),
                    assertion(sub="someone-else"),
                    jwt.encode(claims_of(assertion()), rsa.generate_private_key(
                        public_exponent=65537, key_size=2048), algorithm="RS256")):
        assert_oidc_client_error(present(refused))
    # Entra's endpoint under the same stand-in keeps accepting a reused assertion (MSAL's).
    entra = assertion(aud=token_url(standin), header={
        "x5t": base64.urlsafe_b64encode(cert.fingerprint(hashes.SHA1())).rstrip(b"=").decode()})
    assert all(client_credentials(standin, http_session, cert_id, client_assertion=entra
                                  ).status_code == 200 for _ in range(2))
    # Federated tokens at /oidc: the same trust rules, and they may be presented again.
    cluster = standin.external_issuer(K8S_ISSUER)
    standin.add_federated_credential(cert_id, issuer=K8S_ISSUER, subject=SERVICE_ACCOUNT)
    token = cluster.mint(SERVICE_ACCOUNT)
    assert present(token).status_code == 200 and present(token).status_code == 200
    assert_oidc_client_error(present(cluster.mint(SERVICE_ACCOUNT, audience="api://other")))
    assert isinstance(cluster, ExternalIssuer)


def test_robustness_and_silent_authorize(standin: StandIn, new_browser: Callable[[], Browser],
                                         http_session: requests.Session,
                                         ca_bundle_path: str) -> None:
    url = token_url(standin)
    assert_error(http_session.post(url), 400, "invalid_request", 900144)
    assert_error(http_session.get(url), 400, "invalid_request", 900561)
    assert_error(http_session.post(url, data={"grant_type": "password", "client_id": CLIENT_ID,
                                              "client_secret": CLIENT_SECRET}),
                 400, "unsupported_grant_type", 70003)
    assert http_session.post(url, data=b"\xff\xfe=%%%", headers={
        "Content-Type": "application/x-www-form-urlencoded"}).status_code == 400
    assert http_session.get(f"{standin.base_url}/nope/nothing/here").status_code == 404
    assert http_session.get(f"{standin.base_url}/apis/unknown/x").status_code == 404
    bad_json = http_session.post(
        f"{standin.base_url}/apis/todo/x", data=b"{not json",
        headers={**bearer(standin.mint_access_token(ALICE, CLIENT_ID, [TODO_READ])),
                 "Content-Type": "application/json"})
    assert bad_json.status_code == 400
    assert http_session.get(standin.base_url).status_code == 200
    raw = http.client.HTTPSConnection(urlsplit(url).netloc, timeout=10,
                                      context=ssl.create_default_context(cafile=ca_bundle_path))
    raw.request("POST", urlsplit(url).path, body=b"x", headers={"Content-Length": "-5"})
    bad_length = raw.getresponse()
    assert bad_length.status == 400 and b"Bad Content-Length" in bad_length.read()
    raw.close()
    # A handler bug answers 500 JSON and is recorded (the fixture fails a test that leaves one).
    standin.faults.add("server_crash")
    crashed = http_session.get(standin.base_url)
    assert crashed.status_code == 500 and crashed.json()["error"] == "server_error"
    assert len(standin.errors) == 1 and "server_crash" in standin.errors[0]
    standin.faults.clear()
    standin.errors.clear()
    # prompt=none: no session -> login_required; after an interactive sign-in -> a code.
    _, challenge = pkce_pair()
    browser = new_browser()
    silent = auth_response(browser.get(authorize_url(standin, challenge=challenge,
                                                     prompt="none")))
    assert silent["error"] == "login_required" and silent["state"] == "st4te"
    authorize(standin, browser, challenge=challenge)
    silent = auth_response(browser.get(authorize_url(standin, challenge=challenge,
                                                     prompt="none", response_mode="query"),
                                       allow_redirects=False))
    assert "code" in silent and silent["state"] == "st4te"
    needs_consent = auth_response(browser.get(authorize_url(
        standin, challenge=challenge, prompt="none", scope=f"{SIGN_IN} {TODO_READ}")))
    assert needs_consent["error"] == "consent_required"


def challenge_params(resp: requests.Response) -> dict[str, str]:
    """The auth-params of a ``Bearer`` challenge, quoted-strings unescaped (RFC 9110 5.6.4)."""
    header = resp.headers["WWW-Authenticate"]
    assert header.startswith("Bearer ")
    pairs = re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', header)
    return {name: re.sub(r"\\(.)", r"\1", value) for name, value in pairs}


@pytest.mark.parametrize("encoding", ["base64", "json"])
def test_claims_challenge_encodings(standin: StandIn, http_session: requests.Session,
                                    encoding: str) -> None:
    demand = {"access_token": {"acrs": {"essential": True, "value": "c1"},
                               "note": {"value": 'a "quoted" \\ value'}}}
    standin.demand_claims("todo", demand, step_up=False, encoding=encoding)
    # A client that declared it can answer claims challenges (cp1), as Graph requires.
    token = standin.mint_access_token(ALICE, CLIENT_ID, [TODO_READ], xms_cc=["cp1"])
    challenged = http_session.get(f"{standin.base_url}/apis/todo/x", headers=bearer(token))
    assert challenged.status_code == 401
    params = challenge_params(challenged)
    assert params["error"] == "insufficient_claims"
    if encoding == "json":
        assert params["claims"].startswith("{")
        assert json.loads(params["claims"]) == demand
    else:
        assert json.loads(base64.b64decode(params["claims"], validate=True)) == demand
    assert [(c["api"], c["encoding"]) for c in standin.api_challenges] == [("todo", encoding)]
    assert standin.api_calls == []  # only accepted calls
    with pytest.raises(ValueError):
        standin.demand_claims("todo", demand, step_up=False, encoding="hex")


@pytest.mark.parametrize("app_host,pages_host", [("localhost", "127.0.0.1"),
                                                 ("127.0.0.1", "localhost")])
def test_dev_environment_puts_the_sign_in_pages_on_another_site(
        tmp_path: Path, ca_bundle_path: str, app_host: str, pages_host: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = app_defaults()
    finance = str(uuid.uuid4())

    class WithAuthorization:  # the app's defaults, with an authorization section
        authorization = {"roles": ["Admin"], "groups": {"finance": finance},
                         "groups_overage": "user"}

        def __getattr__(self, name: str) -> Any:
            return getattr(defaults, name)

    monkeypatch.setattr("devprovider.__main__.app_defaults", WithAuthorization)
    app_url = f"http://{app_host}:5999"
    standin, env = start_dev_environment(tmp_path, app_url)
    try:
        # Its test users have the app's roles and groups (see the test of set_up_authorization).
        assert standin.users["alice@contoso.test"].groups == (finance,)
        assert len(standin.users["dana@contoso.test"].groups) == 251
        web = urlsplit(standin.browser_base_url or "")
        assert (web.scheme, web.hostname) == ("http", pages_host) and web.port
        oidc = bool(defaults.oidc_authority)
        # An Azure AD B2C app gets the stand-in's B2C mode, with its sign-up and sign-in flow.
        flow = defaults.authority.rsplit("/", 1)[-1]
        entra = standin.b2c_authority(flow) if flow.lower().startswith("b2c_") else (
            standin.authority)
        assert (env["OIDC_AUTHORITY"], env["AUTHORITY"]) == (
            (standin.oidc_authority, "") if oidc else ("", entra))
        issuer = env["OIDC_AUTHORITY"] or env["AUTHORITY"]
        with make_http_session(env["CA_BUNDLE"]) as session:
            suffix = "" if oidc else "/v2.0"
            doc = session.get(f"{issuer}{suffix}/.well-known/openid-configuration").json()
            assert doc["token_endpoint"].startswith("https://127.0.0.1:")
            assert urlsplit(doc["authorization_endpoint"]).netloc == web.netloc
            assert urlsplit(doc["end_session_endpoint"]).netloc == web.netloc
        # The app's redirect URI and its home page (the sign-out target) are redirect URIs.
        client = standin._clients[env["CLIENT_ID"]]
        assert client.redirect_uris == [env["REDIRECT_URI"], app_url + "/"]
        assert env["REDIRECT_URI"] == app_url + defaults.redirect_path
    finally:
        standin.stop()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is POSIX")
def test_dev_mode_removes_its_key_folder_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    project = Path(__file__).resolve().parents[1]
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    proc = start([sys.executable, "-m", "devprovider", "--port", str(port)],
                 cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                 text=True)
    try:
        deadline = time.monotonic() + 60
        while True:  # ready when the app answers
            assert proc.poll() is None, proc.communicate()[0]
            try:
                with socket.create_connection(("localhost", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the app did not start"
                time.sleep(0.2)
        (folder,) = tmp_path.glob("devprovider-*")
        assert (folder / "server.key").is_file()
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0]
    finally:
        stop(proc)  # and nothing it started is left
    assert not folder.exists(), output
    assert f"http://localhost:{port}" in output and "http://127.0.0.1:" in output


# ------------------------------------------------------------------ app roles, groups, Graph
GRAPH_DEFAULT = "https://graph.microsoft.com/.default"


def code_flow_tokens(standin: StandIn, browser: Browser, session: requests.Session,
              username: str = ALICE, *, oidc: bool = False) -> dict[str, Any]:
    """A sign-in by the authorization code flow (no MSAL): the token response."""
    verifier, challenge = pkce_pair()
    authority = standin.oidc_authority if oidc else standin.authority
    code = authorize(standin, browser, username, challenge=challenge, authority=authority,
                     scope=f"{SIGN_IN} User.Read")["code"]
    resp = session.post(oidc_token_url(standin) if oidc else token_url(standin), data={
        "grant_type": "authorization_code", "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET, "code": code, "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier, "scope": f"User.Read {SIGN_IN}"})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def refreshed_id_token(standin: StandIn, session: requests.Session,
                       refresh_token: str) -> dict[str, Any]:
    resp = session.post(token_url(standin), data={
        "grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "refresh_token": refresh_token, "scope": f"User.Read {SIGN_IN}"})
    assert resp.status_code == 200, resp.text
    return claims_of(resp.json()["id_token"])


def graph_post(standin: StandIn, session: requests.Session, token: str, path: str,
               body: Any) -> requests.Response:
    return session.post(f"{standin.graph_base_url}{path}", json=body,
                        headers={**bearer(token), "client-request-id": "c0ffee"})


def assert_graph_error(resp: requests.Response, status: int, code: str) -> str:
    """Graph's error JSON: {"error": {"code", "message", "innerError": {date, ids}}}."""
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code, error
    assert {"date", "request-id", "client-request-id"} <= error["innerError"].keys()
    return str(error["message"])


def app_token(standin: StandIn, session: requests.Session, scope: str = GRAPH_DEFAULT) -> str:
    resp = session.post(token_url(standin), data={
        "grant_type": "client_credentials", "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET, "scope": scope})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


def new_groups(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def test_id_tokens_carry_roles_groups_and_the_groups_overage(
        standin: StandIn, new_browser: Callable[[], Browser],
        http_session: requests.Session) -> None:
    groups = new_groups(201)
    # Group ids are object ids: kept in Graph's lower-case form; anything else is refused.
    alice = standin.update_user(ALICE, roles=["Admin", "Reader"],
                                groups=[groups[0].upper(), groups[1]])
    assert alice.groups == (groups[0], groups[1]) and alice.tid == standin.tenant_id
    with pytest.raises(ValueError):
        standin.update_user(ALICE, groups=["finance"])
    id_token = claims_of(code_flow_tokens(standin, new_browser(), http_session)["id_token"])
    assert id_token["roles"] == ["Admin", "Reader"]
    assert id_token["groups"] == [groups[0], groups[1]]
    # hasgroups is for implicit-flow tokens only; no overage claims below the limit.
    assert not {"hasgroups", "_claim_names", "_claim_sources"} & id_token.keys()
    # No roles, no groups: no claims at all (not empty lists).
    bob_body = code_flow_tokens(standin, new_browser(), http_session, BOB)
    assert not {"roles", "groups", "hasgroups", "_claim_names"} & claims_of(
        bob_body["id_token"]).keys()
    # Tokens issued later reflect a change: exactly 200 groups still fit in the claim...
    standin.update_user(BOB, groups=groups[:200])
    assert len(refreshed_id_token(standin, http_session, bob_body["refresh_token"])
               ["groups"]) == 200
    # ...201 do not: Entra's overage claims, pointing at (Azure AD) Graph, instead.
    standin.update_user(BOB, groups=groups)
    overage = refreshed_id_token(standin, http_session, bob_body["refresh_token"])
    assert "groups" not in overage and "hasgroups" not in overage
    assert overage["_claim_names"] == {"groups": "src1"}
    endpoint = (f"https://graph.windows.net/{standin.tenant_id}/users/"
                f"{standin.users[BOB].oid}/getMemberObjects")
    assert overage["_claim_sources"] == {"src1": {"endpoint": endpoint}}
    # A registration without groupMembershipClaims gets roles but no groups.
    standin.register_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI],
                            group_membership_claims="None")
    plain = refreshed_id_token(standin, http_session, bob_body["refresh_token"])
    assert not {"groups", "_claim_names", "_claim_sources"} & plain.keys()
    with pytest.raises(ValueError):
        standin.register_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI],
                                group_membership_claims="ApplicationGroup")
    # The generic OIDC provider (no Graph behind it): roles, never Entra's groups.
    standin.register_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI])
    generic = claims_of(code_flow_tokens(standin, new_browser(), http_session,
                                         oidc=True)["id_token"])
    assert generic["roles"] == ["Admin", "Reader"] and "groups" not in generic
    # add_user adds or replaces (by username, case-insensitively).
    erin = standin.add_user(TestUser("erin@contoso.test", "Erin Ko", str(uuid.uuid4()),
                                     roles=("Reader",)))
    assert standin.users["erin@contoso.test"] is erin and erin.tid == standin.tenant_id
    standin.add_user(dataclasses.replace(erin, username="Erin@contoso.test", roles=()))
    assert standin.users["erin@contoso.test"].roles == ()


def test_graph_membership_functions_for_the_signed_in_user(standin: StandIn,
                                                            http_session: requests.Session) -> None:
    groups = new_groups(3)
    standin.update_user(ALICE, groups=groups[:2])
    user_read = standin.mint_access_token(ALICE, CLIENT_ID, ["User.Read"])
    check = graph_post(standin, http_session, user_read, "/me/checkMemberGroups",
                       {"groupIds": [groups[1].upper(), groups[2], groups[0]]})
    assert check.status_code == 200, check.text
    assert check.json() == {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(Edm.String)",
        "value": [groups[1], groups[0]]}  # the ids asked for that the user is a member of
    assert graph_post(standin, http_session, user_read, "/me/checkMemberGroups",
                      {"groupIds": [groups[2], *new_groups(19)]}).json()["value"] == []
    # At most 20 ids; one malformed id fails the whole request; the body must be JSON.
    assert_graph_error(graph_post(standin, http_session, user_read, "/me/checkMemberGroups",
                                  {"groupIds": new_groups(21)}), 400, "Request_BadRequest")
    message = assert_graph_error(graph_post(standin, http_session, user_read,
                                            "/me/checkMemberGroups",
                                            {"groupIds": [groups[0], "finance"]}),
                                 400, "Request_BadRequest")
    assert message == "Invalid object identifier 'finance'."
    assert_graph_error(http_session.post(f"{standin.graph_base_url}/me/checkMemberGroups",
                                         data=b"{groupIds", headers=bearer(user_read)),
                       400, "BadRequest")
    objects = graph_post(standin, http_session, user_read, "/me/getMemberObjects",
                         {"securityEnabledOnly": True})
    assert objects.status_code == 200 and objects.json()["value"] == groups[:2]
    assert_graph_error(graph_post(standin, http_session, user_read, "/me/getMemberObjects", {}),
                       400, "Request_BadRequest")
    # Graph answers from the directory as it is now, whatever the token was issued with.
    standin.update_user(ALICE, groups=[groups[2]])
    assert graph_post(standin, http_session, user_read, "/me/getMemberObjects",
                      {"securityEnabledOnly": False}).json()["value"] == [groups[2]]
    # No permission for it: Graph's 403; a token Graph cannot accept: 401.
    mail = standin.mint_access_token(ALICE, CLIENT_ID, ["Mail.Read"])
    for operation in ("checkMemberGroups", "getMemberObjects"):
        assert_graph_error(graph_post(standin, http_session, mail, f"/me/{operation}",
                                      {"groupIds": groups, "securityEnabledOnly": True}),
                           403, "Authorization_RequestDenied")
    todo = standin.mint_access_token(ALICE, CLIENT_ID, [TODO_READ])
    assert_graph_error(graph_post(standin, http_session, todo, "/me/checkMemberGroups",
                                  {"groupIds": groups}), 401, "InvalidAuthenticationToken")
    # Another user: the delegated permissions for other users (User.Read is not enough).
    bob_path = f"/users/{standin.users[BOB].oid}/checkMemberGroups"
    assert_graph_error(graph_post(standin, http_session, user_read, bob_path,
                                  {"groupIds": groups}), 403, "Authorization_RequestDenied")
    wider = standin.mint_access_token(ALICE, CLIENT_ID,
                                      ["User.ReadBasic.All", "GroupMember.Read.All"])
    assert graph_post(standin, http_session, wider, bob_path,
                      {"groupIds": groups}).json()["value"] == []
    assert http_session.get(f"{standin.graph_base_url}/me/checkMemberGroups",
                            headers=bearer(user_read)).status_code == 405
    # Each request is counted by operation, whatever its outcome; accepted ones are recorded.
    assert standin.graph_calls == {"POST /me/checkMemberGroups": 7,
                                   "POST /me/getMemberObjects": 4,
                                   "POST /users/{id}/checkMemberGroups": 2,
                                   "GET /me/checkMemberGroups": 1}
    assert [c["path"] for c in standin.api_calls].count("/me/checkMemberGroups") == 2
    standin.reset_counts()
    assert not standin.graph_calls


def test_app_only_tokens_carry_application_permissions_graph_checks(
        standin: StandIn, http_session: requests.Session) -> None:
    groups = new_groups(2)
    dana = standin.add_user(TestUser("dana@contoso.test", "Dana Overage", str(uuid.uuid4()),
                                     groups=(groups[0],)))
    bare = app_token(standin, http_session)
    claims = claims_of(bare)
    # A Graph token (v1, like Entra's) without permissions has no roles claim at all.
    assert "roles" not in claims and claims["idtyp"] == "app" and claims["ver"] == "1.0"
    assert claims["iss"] == f"https://sts.windows.net/{standin.tenant_id}/"
    assert (claims["aud"], claims["appid"]) == ("https://graph.microsoft.com", CLIENT_ID)
    check = f"/users/{dana.oid}/checkMemberGroups"
    assert_graph_error(graph_post(standin, http_session, bare, check, {"groupIds": groups}),
                       403, "Authorization_RequestDenied")
    # User.Read.All alone: enough for getMemberObjects, not for checkMemberGroups.
    standin.grant_app_permissions(CLIENT_ID, "https://graph.microsoft.com/", ["user.read.all"])
    user_read_all = app_token(standin, http_session)
    assert claims_of(user_read_all)["roles"] == ["User.Read.All"]
    assert_graph_error(graph_post(standin, http_session, user_read_all, check,
                                  {"groupIds": groups}), 403, "Authorization_RequestDenied")
    by_upn = graph_post(standin, http_session, user_read_all,
                        "/users/Dana@contoso.test/getMemberObjects", {"securityEnabledOnly": True})
    assert by_upn.status_code == 200 and by_upn.json()["value"] == [groups[0]]
    standin.grant_app_permissions(CLIENT_ID, GRAPH_DEFAULT.rsplit("/", 1)[0],
                                  ["GroupMember.Read.All"])
    granted = app_token(standin, http_session)
    assert claims_of(granted)["roles"] == ["GroupMember.Read.All", "User.Read.All"]
    assert graph_post(standin, http_session, granted, check,
                      {"groupIds": groups}).json()["value"] == [groups[0]]
    assert standin.api_calls[-1]["roles"] == ["GroupMember.Read.All", "User.Read.All"]
    # /me means the signed-in user: an app-only token gets Graph's 400.
    message = assert_graph_error(graph_post(standin, http_session, granted,
                                            "/me/checkMemberGroups", {"groupIds": groups}),
                                 400, "BadRequest")
    assert message == "/me request is only valid with delegated authentication flow."
    assert_graph_error(http_session.get(f"{standin.graph_base_url}/me", headers=bearer(granted)),
                       400, "BadRequest")
    assert_graph_error(graph_post(standin, http_session, granted,
                                  f"/users/{uuid.uuid4()}/checkMemberGroups",
                                  {"groupIds": groups}), 404, "Request_ResourceNotFound")
    # Custom APIs' application permissions, and revoking a grant.
    standin.grant_app_permissions(CLIENT_ID, TODO_RESOURCE, ["Todo.Read.All"])
    todo = claims_of(app_token(standin, http_session, TODO_DEFAULT))
    assert (todo["roles"], todo["aud"], todo["ver"]) == (["Todo.Read.All"], TODO_AUD, "2.0")
    standin.revoke_app_permissions(CLIENT_ID, "https://graph.microsoft.com")
    assert "roles" not in claims_of(app_token(standin, http_session))
    with pytest.raises(KeyError):
        standin.grant_app_permissions("unknown-client", TODO_RESOURCE, ["Todo.Read.All"])


def test_fail_answers_a_status_for_a_while(standin: StandIn,
                                           http_session: requests.Session) -> None:
    group = str(uuid.uuid4())
    standin.update_user(ALICE, groups=[group])
    token = standin.mint_access_token(ALICE, CLIENT_ID, ["User.Read"])
    path = "/me/checkMemberGroups"
    prefix = "/graph/v1.0" + path

    def check() -> requests.Response:
        return graph_post(standin, http_session, token, path, {"groupIds": [group]})

    with standin.fail(prefix, 503, times=2) as fault:  # an outage of two answers
        for _ in range(2):
            outage = check()
            assert_graph_error(outage, 503, "serviceNotAvailable")
            assert outage.headers["Retry-After"] == "1"
        assert check().json()["value"] == [group]
    assert fault.answered == 2
    # For a time on the stand-in's clock: a refusal with Graph's 403 (no Retry-After).
    standin.fail(prefix, 403, seconds=60)
    refused = check()
    assert_graph_error(refused, 403, "Authorization_RequestDenied")
    assert "Retry-After" not in refused.headers
    standin.clock_offset = 61
    assert check().status_code == 200
    standin.clock_offset = 0
    # Until undone; a prefix covers every path under it, other paths are untouched.
    throttled = standin.fail("/graph/v1.0/me/", 429, retry_after=7)
    answer = check()
    assert_graph_error(answer, 429, "TooManyRequests")
    assert answer.headers["Retry-After"] == "7"
    assert http_session.get(f"{standin.graph_base_url}/me", headers=bearer(token)).ok
    throttled.undo()
    assert check().status_code == 200
    # Elsewhere than Graph the answer is OAuth-style error JSON.
    standin.fail("/apis/todo", 503)
    todo = http_session.get(f"{standin.base_url}/apis/todo/x",
                            headers=bearer(standin.mint_access_token(ALICE, CLIENT_ID,
                                                                     [TODO_READ])))
    assert todo.status_code == 503 and todo.json()["error"] == "temporarily_unavailable"
    standin.unfail()
    # Every request was counted, the failed ones too: "one Graph call per account" is testable.
    assert standin.graph_calls == {"POST /me/checkMemberGroups": 7, "GET /me": 1}
    with pytest.raises(ValueError):
        standin.fail(prefix, 200)


def test_api_test_switches_throttle_redirect_and_answer_large(
        standin: StandIn, http_session: requests.Session) -> None:
    """What the downstream API tests rely on: Retry-After as an HTTP date, a redirect to
    another host name of the stand-in whose /echo/ records what arrives, and a large answer
    streamed with its length or chunked."""
    todo = f"{standin.base_url}/apis/todo/x"
    auth = bearer(standin.mint_access_token(ALICE, CLIENT_ID, [TODO_READ]))
    date = "Wed, 21 Oct 2026 07:28:00 GMT"
    with standin.fail("/apis/todo", 429, retry_after=date, times=1):
        throttled = http_session.get(todo, headers=auth)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == date

    standin.reset_counts()
    with standin.redirect("/apis/todo", standin.echo_url("localhost"), status=302) as moved:
        answer = http_session.get(todo, headers=auth, allow_redirects=False)
    assert answer.status_code == 302 and moved.answered == 1
    assert answer.headers["Location"] == standin.echo_url("localhost")
    echoed = http_session.get(answer.headers["Location"], headers={"X-Probe": "1"})
    assert echoed.json() == {"echo": "/echo/"}
    (arrived,) = standin.echo_requests
    assert arrived["url"].startswith("https://localhost:") and arrived["headers"]["X-Probe"] == "1"
    with pytest.raises(ValueError):
        standin.redirect("/apis/todo", "https://elsewhere.test/", status=200)

    size = 3 * 64 * 1024 + 5
    for chunked in (False, True):
        with standin.large_answer("/apis/todo", size, chunked=chunked, times=1):
            large = http_session.get(todo, headers=auth)
        assert large.status_code == 200 and len(large.content) == size
        assert large.json()["data"] == "x" * (size - 12)
        assert ("Content-Length" in large.headers) is not chunked
        assert (large.headers.get("Transfer-Encoding") == "chunked") is chunked


def test_dev_mode_gives_test_users_the_apps_roles_and_groups(
        standin: StandIn, new_browser: Callable[[], Browser],
        http_session: requests.Session) -> None:
    # Roles only, the overage resolved with the user's token: no dana, no app permissions.
    set_up_authorization(standin, {"roles": ["Admin"], "groups": {}, "groups_overage": "user"},
                         CLIENT_ID)
    assert standin.users[ALICE].roles == ("Admin",) and standin.users[ALICE].groups == ()
    assert "dana@contoso.test" not in standin.users
    assert "roles" not in claims_of(app_token(standin, http_session))
    finance, hr = new_groups(2)
    set_up_authorization(standin, {"roles": ["Admin", "Reader"],
                                   "groups": {"finance": finance.upper(), "hr": hr},
                                   "groups_overage": "app"}, CLIENT_ID)
    alice, bob = standin.users[ALICE], standin.users[BOB]
    assert (alice.roles, alice.groups) == (("Admin", "Reader"), (finance, hr))
    assert (bob.roles, bob.groups) == ((), ())
    dana = standin.users["dana@contoso.test"]
    assert dana.roles == () and dana.groups[:2] == (finance, hr) and len(dana.groups) == 252
    # The sign-in page says who has what.
    page = new_browser().get(authorize_url(standin, challenge=pkce_pair()[1])).text
    assert "roles: Admin, Reader; groups: finance, hr</small>" in page
    assert "no app roles, no groups" in page
    assert "groups: finance, hr, 250 other groups (over 200: not in the token" in page
    # "app": the registration may ask Graph about dana with its own token.
    token = app_token(standin, http_session)
    assert claims_of(token)["roles"] == ["GroupMember.Read.All", "User.Read.All"]
    answer = graph_post(standin, http_session, token, f"/users/{dana.oid}/checkMemberGroups",
                        {"groupIds": [hr, str(uuid.uuid4())]})
    assert answer.json()["value"] == [hr]


# ---------------------------------------------------------------------- claims challenges and cp1
@pytest.mark.parametrize("api", ["todo", "graph"])
def test_claims_challenges_go_only_to_clients_that_declared_cp1(
        standin: StandIn, new_browser: Callable[[], Browser], http_session: requests.Session,
        api: str) -> None:
    """Graph sends claims challenges only to clients whose token carries `xms_cc` `cp1` (MSAL's
    client_capabilities, a `claims` request at /token); another client's token is refused with
    a plain 401 `invalid_token`, no `claims` to act on."""
    scope = TODO_READ if api == "todo" else "User.Read"
    url = (f"{standin.base_url}/apis/todo/items" if api == "todo"
           else f"{standin.graph_base_url}/me")
    standin.grant_consent(ALICE, CLIENT_ID, [scope])
    demand = {"access_token": {"nbf": {"essential": True, "value": "1700000000"}}}
    standin.demand_claims(api, demand, step_up=False)
    for capabilities in ([], ["cp1"]):
        app = msal_app(standin, http_session, client_capabilities=capabilities or None)
        result, _ = msal_sign_in(app, new_browser(), [scope])
        token = result["access_token"]
        assert claims_of(token).get("xms_cc") == (capabilities or None)
        standin.reset_counts()
        answer = http_session.get(url, headers=bearer(token))
        assert answer.status_code == 401
        params = www_authenticate(answer)
        if capabilities:
            assert params["error"] == "insufficient_claims" and params["claims"]
            assert len(standin.api_challenges) == 1 and not standin.api_refusals
        else:
            assert params["error"] == "invalid_token" and "claims" not in params
            assert not standin.api_challenges and len(standin.api_refusals) == 1
    standin.demand_claims(api, None, step_up=False)
    assert http_session.get(url, headers=bearer(token)).status_code == 200


# ---------------------------------------------------------------------- several tenants
FABRIKAM = "f4b21c00-0000-4000-8000-00000000fab2"
FRED = TestUser("fred@fabrikam.test", "Fred Fabrikam", "f2ed0000-0000-4000-8000-00000000f2ed")
NORTHWIND = "a0e7b000-0000-4000-8000-0000000a0e7b"
NINA = TestUser("nina@northwind.test", "Nina North", "a1aa0000-0000-4000-8000-00000000a1aa")


def with_tenants(standin: StandIn) -> None:
    """Two more tenants: Fabrikam (Fred) and Northwind (Nina)."""
    standin.add_tenant(FABRIKAM, "fabrikam.test", [FRED])
    standin.add_tenant(NORTHWIND, "northwind.test", [NINA])


def sign_in_at(standin: StandIn, browser: Browser, session: requests.Session, tenant: str,
               username: str, *, client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET,
               ) -> dict[str, Any]:
    """The token answer of a sign-in of `username` at the authority `{base}/{tenant}`."""
    authority = f"{standin.base_url}/{tenant}"
    verifier, challenge = pkce_pair()
    answer = authorize(standin, browser, username, authority=authority, client_id=client_id,
                       challenge=challenge, scope=f"{SIGN_IN} User.Read")
    tokens = session.post(f"{authority}/oauth2/v2.0/token", data={
        "grant_type": "authorization_code", "client_id": client_id, "client_secret": secret,
        "code": answer["code"], "redirect_uri": REDIRECT_URI, "code_verifier": verifier,
        "scope": f"{SIGN_IN} User.Read"})
    assert tokens.status_code == 200, tokens.text
    body: dict[str, Any] = tokens.json()
    info = json.loads(base64.urlsafe_b64decode(answer["client_info"] + "=="))
    assert json.loads(base64.urlsafe_b64decode(body["client_info"] + "==")) == info
    return body


def client_info_of(body: dict[str, Any]) -> dict[str, str]:
    decoded: dict[str, str] = json.loads(base64.urlsafe_b64decode(body["client_info"] + "=="))
    return decoded


def test_each_tenant_has_its_own_discovery_issuer_and_tokens(
        standin: StandIn, new_browser: Callable[[], Browser],
        http_session: requests.Session) -> None:
    with_tenants(standin)
    base = standin.base_url
    for segment in (FABRIKAM, "fabrikam.test", "FABRIKAM.test"):
        doc = http_session.get(f"{base}/{segment}/v2.0/.well-known/openid-configuration").json()
        assert doc["issuer"] == f"{base}/{FABRIKAM}/v2.0" == standin.issuer_of(FABRIKAM)
    with pytest.raises(ValueError):
        standin.add_tenant(str(uuid.uuid4()), "fabrikam.test")
    # A multi-tenant app at `organizations`: each user's token is from their home tenant.
    for user, tid in ((FRED, FABRIKAM), (DEFAULT_USERS[0], standin.tenant_id)):
        body = sign_in_at(standin, new_browser(), http_session, "organizations", user.username)
        id_token = claims_of(body["id_token"])
        assert (id_token["tid"], id_token["iss"], id_token["oid"]) == (
            tid, standin.issuer_of(tid), user.oid)
        assert "idp" not in id_token
        assert client_info_of(body) == {"uid": user.oid, "utid": tid}
        assert claims_of(body["access_token"])["iss"] == f"https://sts.windows.net/{tid}/"
        # Graph's stand-in knows the user from any tenant's token.
        me = http_session.get(f"{standin.graph_base_url}/me", headers=bearer(body["access_token"]))
        assert me.status_code == 200 and me.json()["id"] == user.oid
        # And a refresh keeps the tenant.
        refreshed = http_session.post(f"{base}/organizations/oauth2/v2.0/token", data={
            "grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "refresh_token": body["refresh_token"], "scope": SIGN_IN})
        assert claims_of(refreshed.json()["id_token"])["tid"] == tid


def test_a_guest_gets_the_resource_tenants_tokens_and_keeps_its_home_account(
        standin: StandIn, new_browser: Callable[[], Browser],
        http_session: requests.Session) -> None:
    """A B2B guest signing in at the resource tenant's authority: `tid`, `iss` and `oid` are the
    resource tenant's (its guest object), `idp` names the home tenant, and client_info (MSAL's
    home_account_id) the HOME account."""
    with_tenants(standin)
    guest_oid = standin.add_guest(FRED.username, standin.tenant_id)
    with pytest.raises(ValueError):
        standin.add_guest(FRED.username, FABRIKAM)  # a member there, not a guest
    body = sign_in_at(standin, new_browser(), http_session, standin.tenant_id, FRED.username)
    id_token = claims_of(body["id_token"])
    tid = standin.tenant_id
    assert (id_token["tid"], id_token["iss"], id_token["oid"]) == (
        tid, standin.issuer_of(tid), guest_oid)
    assert id_token["idp"] == f"https://sts.windows.net/{FABRIKAM}/"
    assert client_info_of(body) == {"uid": FRED.oid, "utid": FABRIKAM}
    access = claims_of(body["access_token"])
    assert (access["tid"], access["oid"]) == (tid, guest_oid)
    me = http_session.get(f"{standin.graph_base_url}/me", headers=bearer(body["access_token"]))
    assert me.json()["id"] == guest_oid
    assert me.json()["userPrincipalName"] == "fred_fabrikam.test#EXT#@contoso.test"
    # At `organizations` the same user is a member of their home tenant.
    home = claims_of(sign_in_at(standin, new_browser(), http_session, "organizations",
                                FRED.username)["id_token"])
    assert (home["tid"], home["oid"]) == (FABRIKAM, FRED.oid) and "idp" not in home


def test_users_the_tenant_or_the_app_may_not_serve_are_refused_as_entra_does(
        standin: StandIn, new_browser: Callable[[], Browser],
        http_session: requests.Session) -> None:
    """AADSTS50020 (an account that is neither a member nor a guest of the authority's tenant,
    or of a single-tenant app's tenant): on the provider's own page, no redirect. AADSTS50194
    (a single-tenant app at `organizations`/`common`): sent back to the app, state and all.
    AADSTS700016: a single-tenant app at another tenant's authority, on the provider's page."""
    with_tenants(standin)
    base = standin.base_url
    # A multi-tenant app: Nina is no member or guest of the stand-in's own tenant.
    browser = new_browser()
    page = browser.get(authorize_url(standin, challenge=pkce_pair()[1]))
    refused = browser.sign_in(page, NINA.username, follow=False)
    assert refused.status_code == 400 and "AADSTS50020" in refused.text
    assert not refused.is_redirect and not parse_forms(refused)
    assert f"https://sts.windows.net/{NORTHWIND}/" in refused.text
    # ... once a guest there, she may.
    standin.add_guest(NINA.username, standin.tenant_id)
    assert claims_of(sign_in_at(standin, new_browser(), http_session, standin.tenant_id,
                                NINA.username)["id_token"])["idp"].endswith(f"/{NORTHWIND}/")

    single, single_secret = "5191e000-0000-4000-8000-000000005191", "single-secret"
    standin.register_client(single, single_secret, [REDIRECT_URI], display_name="Contoso Only",
                            sign_in_audience="AzureADMyOrg")
    with pytest.raises(ValueError):
        standin.register_client(single, None, [REDIRECT_URI], sign_in_audience="AzureADMy0rg")
    for generic in ("organizations", "common"):
        answer = new_browser().get(authorize_url(
            standin, client_id=single, challenge=pkce_pair()[1], response_mode="query",
            authority=f"{base}/{generic}"), allow_redirects=False)
        assert answer.status_code in (302, 303), answer.text
        query = auth_response(answer)
        assert query["error"] == "invalid_request" and query["state"] == "st4te"
        assert query["error_description"].startswith("AADSTS50194: ")
    other = new_browser().get(authorize_url(standin, client_id=single, challenge=pkce_pair()[1],
                                            authority=f"{base}/{FABRIKAM}"))
    assert other.status_code == 400 and "AADSTS700016" in other.text
    # Fred's home tenant is not the app's: 50020, even with the app's own authority ...
    browser = new_browser()
    page = browser.get(authorize_url(standin, client_id=single, challenge=pkce_pair()[1]))
    refused = browser.sign_in(page, FRED.username, follow=False)
    assert refused.status_code == 400 and "AADSTS50020" in refused.text
    # ... while the tenant's own users and guests sign in.
    for username in (ALICE, NINA.username):
        sign_in_at(standin, new_browser(), http_session, standin.tenant_id, username,
                   client_id=single, secret=single_secret)
