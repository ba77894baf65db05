"""The spec's API description (path, method, headers, query, timeout) and app-only APIs."""

from __future__ import annotations

from typing import Any

import pytest

from generator import spec as gspec

R = gspec.rules()
DEFAULT_SCOPE = "api://22222222-2222-3333-4444-555555555555/.default"


def with_reports(spec: dict[str, Any], tenant: str = "contoso.onmicrosoft.com",
                 **api: Any) -> dict[str, Any]:
    """`spec` at one tenant, with the app-only API `reports` (`api`: more of its fields)."""
    spec["authority"] = {"kind": "entra", "tenant": tenant}
    spec["downstream_apis"]["reports"] = {"base_url": "https://reports.contoso.com/v1/",
                                          "scopes": [DEFAULT_SCOPE], "app_only": True, **api}
    return spec


def test_a_described_app_only_api_is_valid_and_reaches_the_context(
        spec: dict[str, Any]) -> None:
    with_reports(spec, path="daily/summary", method="get", headers={"X-Format": "compact"},
                 query={"api-version": "2024-01-01"}, timeout=2.5)
    assert R.validate_spec(spec) == []
    reports = gspec.spec_to_context(spec)["downstream_apis"]["reports"]
    assert reports["app_only"] is True and reports["path"] == "daily/summary"
    assert reports["headers"] == {"X-Format": "compact"} and reports["timeout"] == 2.5
    back = R.context_to_spec(gspec.spec_to_context(spec))
    assert R.validate_spec(back) == [] and back["downstream_apis"]["reports"]["app_only"] is True


@pytest.mark.parametrize(("changes", "expected"), [
    ({"scopes": ["api://22222222-2222-3333-4444-555555555555/Reports.Read"]},
     "downstream_apis.reports.scopes: an app-only API needs exactly one scope, its resource's "
     "'/.default'"),
    ({"scopes": [DEFAULT_SCOPE, "api://22222222-2222-3333-4444-555555555555/R"]},
     "needs exactly one scope"),
    ({"app_only": "yes"}, "downstream_apis.reports.app_only: expected true or false"),
    ({"path": "/v2/items"}, "downstream_apis.reports.path: '/v2/items' must be relative to "
                            "base_url"),
    ({"path": "a/../../admin"}, "must not hold '.' or '..' segments"),
    ({"path": "items?top=5"}, "give query parameters in query"),
    ({"path": "https://evil.example/x"}, "must be relative to base_url"),
    ({"path": "my items"}, "holds a space"),
    ({"method": "POST"}, "downstream_apis.reports.method: 'POST': the /api/<name> page makes "
                         "the API's default call on every visit of a link, without a body"),
    ({"method": "FETCH"}, "downstream_apis.reports.method: 'FETCH' is not allowed; allowed:"),
    ({"headers": {"Authorization": "Basic eA=="}}, "downstream_apis.reports.headers."
                                                   "Authorization: set by the app"),
    ({"headers": {"Content-Length": "3"}}, "set by the app or its HTTP client"),
    ({"headers": {"X-A": "b\r\nX-Injected: 1"}}, "line break or control character"),
    ({"headers": {"Bad Name": "x"}}, "'Bad Name' is not a valid header name"),
    ({"headers": {"X-A": "1", "x-a": "2"}}, "given twice"),
    ({"headers": {"X-Api-Key": "abc"}}, "an API key or other secret never goes in the spec; "
                                        "set API_REPORTS_HEADERS in the environment"),
    ({"query": {"code": "Zx8Q~abcdefghijklmnopqrstuvwxyz0123456789"}},
     "set API_REPORTS_QUERY in the environment"),
    ({"query": {"top": 5}}, "downstream_apis.reports.query.top: expected a string"),
    ({"headers": ["X-A: b"]}, "downstream_apis.reports.headers: expected a mapping"),
    ({"timeout": 0}, "downstream_apis.reports.timeout: 0 is not a number of seconds above 0"),
    ({"timeout": "5"}, "is not a number of seconds"),
    ({"timeout": True}, "is not a number of seconds"),
    ({"timeout": 601}, "at most 600"),
])
def test_mistakes_are_named_with_the_fix(spec: dict[str, Any], changes: dict[str, Any],
                                         expected: str) -> None:
    messages = R.validate_spec(with_reports(spec, **changes))
    assert any(expected in m for m in messages), messages


@pytest.mark.parametrize("tenant", ["organizations", "common", "consumers"])
def test_an_app_only_api_needs_one_tenant(spec: dict[str, Any], tenant: str) -> None:
    messages = R.validate_spec(with_reports(spec, tenant))
    assert messages == [f"downstream_apis.reports.app_only: an app-only API's token comes from "
                        f"one tenant, and authority.tenant is '{tenant}'; Entra refuses client "
                        "credentials there: use the tenant id or domain of the app's home "
                        "tenant, or call this API on the user's behalf (remove app_only)"]


def test_an_app_only_api_is_not_the_sign_in_api(spec: dict[str, Any]) -> None:
    with_reports(spec)
    spec["sign_in_api"] = "reports"
    assert R.validate_spec(spec) == [
        "sign_in_api: 'reports' is an app-only API: its token is the app's own, never the "
        "user's; sign in with another API's scopes, or '' for none"]


def test_graph_is_never_app_only_and_takes_no_description(spec: dict[str, Any]) -> None:
    spec["downstream_apis"]["graph"]["app_only"] = True
    (message,) = R.validate_spec(spec)
    assert message.startswith("downstream_apis.graph.app_only: the graph API is the signed-in "
                              "user's (/profile reads /me")
    assert "graph_app: {base_url: https://graph.microsoft.com/v1.0" in message
    del spec["downstream_apis"]["graph"]["app_only"]
    spec["downstream_apis"]["graph"]["path"] = "me"
    assert R.validate_spec(spec) == ["downstream_apis.graph.path: unknown key 'path'; allowed "
                                     "keys: 'base_url', 'scopes', 'sdk'"]


def test_app_only_graph_is_another_api(spec: dict[str, Any]) -> None:
    """Graph with the app's own token: an API of another name, on Graph's `.default`."""
    spec["authority"] = {"kind": "entra", "tenant": "contoso.onmicrosoft.com"}
    spec["downstream_apis"]["graph_app"] = {
        "base_url": "https://graph.microsoft.com/v1.0",
        "scopes": ["https://graph.microsoft.com/.default"], "app_only": True, "path": "users"}
    assert R.validate_spec(spec) == []


def test_a_generic_provider_has_no_app_only_apis(spec: dict[str, Any]) -> None:
    with_reports(spec)
    spec["authority"] = {"kind": "oidc", "issuer": "https://id.example.com/realms/acme"}
    del spec["downstream_apis"]["graph"]
    spec["sign_in_api"] = ""
    assert any(m.startswith("downstream_apis.reports.app_only: app-only calls ask Microsoft's "
                            "identity platform") for m in R.validate_spec(spec))


def test_a_delegated_api_takes_the_description_too(spec: dict[str, Any]) -> None:
    spec["downstream_apis"]["todo"].update(path="items", method="HEAD", timeout=3,
                                           query={"top": "5"})
    assert R.validate_spec(spec) == []
