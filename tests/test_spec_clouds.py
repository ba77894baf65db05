"""Microsoft Graph follows the cloud of `authority.instance`: the rules refuse another cloud's
Graph (as the 'graph' API's base URL or in a full-form scope) and the project renders that
cloud's Graph (config.py's graph API, .env.example), rendered without running its suite."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from baking import baked_default
from conftest import BASE_SPEC

from generator import render
from generator import spec as gspec

R = gspec.rules()
GLOBAL, US, CHINA = ("https://login.microsoftonline.com", "https://login.microsoftonline.us",
                     "https://login.partner.microsoftonline.cn")
# (instance, Graph base URL rendered by default, the other base URLs the cloud allows)
CLOUDS = [
    (None, "https://graph.microsoft.com/v1.0", ["https://graph.microsoft.com/beta/"]),
    (GLOBAL, "https://graph.microsoft.com/v1.0", ["https://graph.microsoft.com/beta"]),
    ("https://login.windows.net", "https://graph.microsoft.com/v1.0", []),
    (US, "https://graph.microsoft.us/v1.0",
     ["https://graph.microsoft.us/beta", "https://dod-graph.microsoft.us/v1.0",
      "https://dod-graph.microsoft.us/beta/"]),
    ("https://login.usgovcloudapi.net/", "https://graph.microsoft.us/v1.0",
     ["https://dod-graph.microsoft.us/v1.0"]),
    (CHINA, "https://microsoftgraph.chinacloudapi.cn/v1.0",
     ["https://microsoftgraph.chinacloudapi.cn/beta"]),
    ("https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn/v1.0", []),
]
CLOUD_IDS = ["default", "global", "global-alias", "us-gov", "us-gov-alias", "china",
             "china-alias"]
ALL_BASE_URLS = ["https://graph.microsoft.com/v1.0", "https://graph.microsoft.us/v1.0",
                 "https://dod-graph.microsoft.us/v1.0",
                 "https://microsoftgraph.chinacloudapi.cn/v1.0"]


def cloud_spec(instance: str | None, **graph: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE_SPEC)
    if instance:
        spec["authority"]["instance"] = instance
    spec["downstream_apis"]["graph"].update(graph)
    return spec


def rendered_graph(tmp_path: Path, context: dict[str, Any]) -> tuple[str, str]:
    """(config.py's graph base URL, .env.example's API_GRAPH_BASE_URL line)."""
    project = render.render(context, tmp_path, gspec.template_dir())
    apis = baked_default(project / context["package_name"] / "config.py", "downstream_apis")
    base_url = apis["graph"]["base_url"]
    env = (project / ".env.example").read_text(encoding="utf-8")
    line = next(x for x in env.splitlines() if x.startswith("# API_GRAPH_BASE_URL="))
    return base_url, line


@pytest.mark.parametrize(("instance", "default", "others"), CLOUDS, ids=CLOUD_IDS)
def test_each_cloud_takes_only_its_own_graph(instance: str | None, default: str,
                                             others: list[str]) -> None:
    assert gspec.validate_spec(cloud_spec(instance)) == []
    for url in [default, default + "/", *others]:
        assert gspec.validate_spec(cloud_spec(instance, base_url=url)) == [], url
    for url in ALL_BASE_URLS:
        if url.rsplit("/", 1)[0] == default.rsplit("/", 1)[0] or url in others:
            continue
        problems = gspec.validate_spec(cloud_spec(instance, base_url=url))
        # The field, the value, and the fix: this cloud's Graph.
        assert len(problems) == 1 and problems[0].startswith(
            f"downstream_apis.graph.base_url: '{url}' is not Microsoft Graph in "), problems
        assert default in problems[0] and "or omit it" in problems[0], problems
    # Neither another path nor another version.
    for url in (default.replace("/v1.0", "/v2.0"), default.replace("/v1.0", ""),
                default + "/me"):
        assert gspec.validate_spec(cloud_spec(instance, base_url=url)), url


@pytest.mark.parametrize(("instance", "default", "others"), CLOUDS, ids=CLOUD_IDS)
def test_full_form_graph_scopes_name_the_clouds_graph(instance: str | None, default: str,
                                                      others: list[str]) -> None:
    root = default.rsplit("/", 1)[0]
    for scopes in (["User.Read", "Mail.Read"], [f"{root}/User.Read", "Mail.Read"],
                   [f"{root}/.default"], [f"{R.GRAPH_APP_ID}/User.Read"]):
        assert gspec.validate_spec(cloud_spec(instance, scopes=scopes)) == [], scopes
    for other in {u.rsplit("/", 1)[0] for u in ALL_BASE_URLS} - {root} - {
            u.rstrip("/").rsplit("/", 1)[0] for u in others}:
        problems = gspec.validate_spec(cloud_spec(instance, scopes=[f"{other}/User.Read"]))
        assert problems == [
            f"downstream_apis.graph.scopes[0]: '{other}/User.Read' is Microsoft Graph of another "
            f"cloud than authority.instance's; use the short form 'User.Read' or "
            f"'{root}/User.Read'"], problems
        # In any API: a token of this cloud is refused by another cloud's Graph.
        spec = cloud_spec(instance)
        spec["downstream_apis"]["mail"] = {"base_url": other + "/v1.0",
                                           "scopes": [f"{other}/Mail.Read"]}
        assert [p.split(":")[0] for p in gspec.validate_spec(spec)] == [
            "downstream_apis.mail.scopes[0]"]


@pytest.mark.parametrize(("instance", "default", "others"), CLOUDS, ids=CLOUD_IDS)
def test_the_clouds_graph_is_rendered(tmp_path: Path, instance: str | None, default: str,
                                      others: list[str]) -> None:
    context = gspec.spec_to_context(cloud_spec(instance))
    assert context["graph_base_url"] == ""  # the cloud's default, rendered by the template
    assert rendered_graph(tmp_path / "default", context) == (
        default, f"# API_GRAPH_BASE_URL='{default}'")
    if others:  # a base URL the spec gives is rendered as given (without a trailing '/')
        context = gspec.spec_to_context(cloud_spec(instance, base_url=others[0]))
        given = others[0].rstrip("/")
        assert context["graph_base_url"] == given
        assert rendered_graph(tmp_path / "given", context) == (
            given, f"# API_GRAPH_BASE_URL='{given}'")
        assert R.context_to_spec(context)["downstream_apis"]["graph"]["base_url"] == given


@pytest.mark.parametrize("host", ["fr", "de", "sg"])
def test_a_cloud_whose_graph_is_not_known_names_it(tmp_path: Path, host: str) -> None:
    """MSAL knows the login.sovcloud-identity.* clouds; their Graph root is not documented:
    the spec gives the Graph base URL, and the global one is never assumed."""
    instance = f"https://login.sovcloud-identity.{host}"
    problems = gspec.validate_spec(cloud_spec(instance))
    assert len(problems) == 1 and problems[0].startswith(
        "downstream_apis.graph.base_url: missing; Microsoft Graph's root in the cloud of "
        f"authority.instance {instance} is not known here: give it"), problems
    own = f"https://graph.sovcloud.{host}"  # an example: any https Graph root is taken
    spec = cloud_spec(instance, base_url=own + "/beta", scopes=[f"{own}/User.Read"])
    assert gspec.validate_spec(spec) == []
    problems = gspec.validate_spec(cloud_spec(instance, base_url=own + "/v3"))
    assert problems and "is not a Microsoft Graph base URL" in problems[0], problems
    assert rendered_graph(tmp_path, gspec.spec_to_context(spec))[0] == own + "/beta"
    # Without Graph the spec needs no Graph base URL.
    spec = cloud_spec(instance)
    del spec["downstream_apis"]["graph"]
    spec["sign_in_api"] = ""
    assert gspec.validate_spec(spec) == []


def test_cookiecutter_context_names_the_graph_base_url() -> None:
    """People running cookiecutter give it as graph_base_url, checked by the same rules."""
    context = gspec.spec_to_context(cloud_spec(US))
    assert R.context_problems({**context, "graph_base_url": ""}) == []
    problems = R.context_problems({**context,
                                       "graph_base_url": "https://graph.microsoft.com/v1.0"})
    assert len(problems) == 1 and problems[0].startswith(
        "graph_base_url: 'https://graph.microsoft.com/v1.0' is not Microsoft Graph in the "
        f"cloud of authority.instance {US}"), problems
    problems = R.context_problems({**context, "call_graph": False, "sign_in_api": "",
                                       "graph_base_url": "https://graph.microsoft.us/v1.0"})
    assert problems == ["graph_base_url: only used when call_graph is true; remove it"]
