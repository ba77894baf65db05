"""The spec shapes the bake tests use: every pair of option values covered, every shape valid."""

from __future__ import annotations

import itertools
import keyword
import random
from typing import Any

from hypothesis import given, settings
from shapes import (
    API_NAMES,
    COVERING_ROWS,
    EXAMPLES,
    FACTORS,
    MULTI_TENANTS,
    R,
    all_valid_rows,
    example_rows,
    lower_bound,
    pairs_of,
    pairwise_shapes,
    row_is_valid,
    row_of_spec,
    search,
    spec_for_row,
    specs,
    uncovered_pairs,
    valid_pairs,
)

from generator import spec as gspec


def test_every_valid_pair_of_option_values_is_baked() -> None:
    """The examples and the pairwise shapes together: every pair that can occur is baked."""
    rows = [*example_rows(), *(row_of_spec(shape.spec) for shape in pairwise_shapes())]
    assert None not in rows
    covered = set().union(*(pairs_of(row) for row in rows if row is not None))
    every_pair = {((f1, v1), (f2, v2))
                  for (f1, vs1), (f2, vs2) in itertools.combinations(FACTORS.items(), 2)
                  for v1 in vs1 for v2 in vs2}
    impossible = every_pair - valid_pairs()
    assert valid_pairs() <= covered, (
        f"pairs no bake covers: {sorted(valid_pairs() - covered)}; after changing FACTORS or "
        "examples/, make a new COVERING_ROWS with `python tests/shapes.py`")
    # The only pairs left out are those the rules forbid: sign-in with an API that is not there,
    # a managed identity's assertion or groups with another OpenID Connect provider.
    # Azure AD B2C has no Microsoft Graph (sign-in with it either), no groups and no managed
    # identity.
    assert impossible == {(("apis", "0"), ("sign_in", "custom")),
                          (("graph", "no"), ("sign_in", "graph")),
                          (("authority", "oidc"), ("credential", "managed_identity")),
                          (("authority", "oidc"), ("authorization", "groups")),
                          (("authority", "oidc"), ("authorization", "both")),
                          (("graph", "yes"), ("authority", "b2c")),
                          (("sign_in", "graph"), ("authority", "b2c")),
                          (("authority", "b2c"), ("credential", "managed_identity")),
                          (("authority", "b2c"), ("authorization", "groups")),
                          (("authority", "b2c"), ("authorization", "both"))}
    assert all(row is not None and row_is_valid(row) for row in rows)
    # Each row is a bake of about half a minute: at most one more than the lower bound (the
    # 5 x 5 (authority, credential) pairs less the 2 the rules forbid, less the 3 the examples
    # cover), which the search finds in a second where the bound itself takes minutes.
    assert len(rows) <= len(FACTORS["authority"]) * len(FACTORS["credential"]) - 2 + 1
    assert len(pairwise_shapes()) <= lower_bound(uncovered_pairs(example_rows())) + 1
    assert len(example_rows()) == len(EXAMPLES)  # each example counts


def test_the_search_finds_a_covering_set() -> None:
    """`python tests/shapes.py` makes COVERING_ROWS anew: its search covers every pair left (a
    smaller problem here, the three rows of the examples and the rows but the last two given,
    so that it is quick)."""
    given = [*example_rows(), *COVERING_ROWS[:-2]]
    left = uncovered_pairs(given)
    assert left and lower_bound(left) <= 2
    found = search(2, left, seed=0, steps=2000)
    assert found is not None and left <= set().union(*(pairs_of(row) for row in found))
    assert all(row_is_valid(row) for row in found)
    assert search(1, left, seed=0, steps=200) is None  # two rows are needed


def test_row_of_spec_reads_the_options() -> None:
    for index, row in enumerate(all_valid_rows()):
        assert row_of_spec(spec_for_row(row, index)) == row


def test_row_validity_matches_the_rules() -> None:
    """A row the factor rules call valid renders a spec the hook accepts, and vice versa (a
    fixed sample of the 92 160 rows: each takes a validation)."""
    every_row = list(itertools.product(*FACTORS.values()))
    refused = 0
    for index, row in enumerate(random.Random(0).sample(every_row, 3000)):
        values = dict(zip(FACTORS, row, strict=True))
        if row_is_valid(row):
            assert R.validate_spec(spec_for_row(row, index)) == [], row
        elif not (values["sign_in"] == "custom" and values["apis"] == "0"):  # has no spec
            # (an odd index: sign_in graph is written out, not left to its default)
            assert R.validate_spec(spec_for_row(row, 2 * index + 1)) != [], row
            refused += 1
    assert refused > 300
    assert len(all_valid_rows()) < len(every_row)


def test_every_shape_is_a_valid_spec_with_its_options() -> None:
    shapes = pairwise_shapes()
    assert len({shape.id for shape in shapes}) == len(shapes)
    for shape in shapes:
        assert gspec.validate_spec(shape.spec) == [], shape
        values = dict(item.split("=") for item in shape.about.split())
        ctx = gspec.spec_to_context(shape.spec)
        assert len(ctx["downstream_apis"]) == int(values["apis"])
        assert ctx["call_graph"] is (values["graph"] == "yes")
        assert ctx["sign_in_api"] == {"graph": "graph", "none": ""}.get(
            values["sign_in"], ctx["sign_in_api"])
        if values["sign_in"] == "custom":
            assert ctx["sign_in_api"] in ctx["downstream_apis"]
        assert ctx["authority_kind"] == (values["authority"] if values["authority"] in (
            "oidc", "b2c", "external_id") else "entra")
        if values["authority"] == "multi":
            assert ctx["entra_tenant"] in MULTI_TENANTS
        assert ctx["cache_backend"] == values["cache"]
        default_redirect = ctx["redirect_path"] == R.DEFAULT_REDIRECT_PATH
        assert default_redirect is (values["redirect"] == "default")
        kind = ctx["credential_kind"]
        assert (ctx["assertion_source"] if kind == "assertion" else kind) == values["credential"]
        authorization = ctx["authorization"]
        assert bool(authorization.get("roles")) is (values["authorization"] in ("roles", "both"))
        assert bool(authorization.get("groups")) is (values["authorization"] in ("groups", "both"))


def test_shapes_bake_the_authorization_details() -> None:
    """Every form of the section is baked: none in its three spellings, roles of several
    kinds, groups with ids in upper case, and both ways of reading a user's groups when there
    are too many for the token."""
    specs_ = [shape.spec for shape in pairwise_shapes()]
    sections = [spec.get("authorization", "absent") for spec in specs_]
    assert "absent" in sections and None in sections and {} in sections
    contexts = [gspec.spec_to_context(spec)["authorization"] for spec in specs_]
    overage = {spec["authorization"].get("groups_overage", "(default)") for spec in specs_
               if (spec.get("authorization") or {}).get("groups")}
    assert overage == {"(default)", "user", "app"}, overage
    assert {c["groups_overage"] for c in contexts if c.get("groups")} == {"user", "app"}
    roles = {role for c in contexts for role in c.get("roles", [])}
    assert {"Task.Write", "Orders:Approve"} <= roles and any(len(c.get("roles", [])) > 2
                                                            for c in contexts)
    names = {name for c in contexts for name in c.get("groups", {})}
    assert "class" in names and any(len(name) == 40 for name in names)
    given_ids = {group_id for spec in specs_
                 for group_id in ((spec.get("authorization") or {}).get("groups") or {}).values()}
    assert any(group_id != group_id.lower() for group_id in given_ids)
    assert all(group_id == group_id.lower()
               for c in contexts for group_id in c.get("groups", {}).values())


def test_shapes_bake_the_credential_details() -> None:
    """The shapes bake the spec's optional credential fields too, not only the kinds."""
    defaults = [gspec.spec_to_context(shape.spec)["credential_defaults"]
                for shape in pairwise_shapes()]
    baked = {name for d in defaults for name in d}
    assert {} in defaults
    assert baked == set(R.CREDENTIAL_VARIABLES.values()), baked
    assert any(" " in d.get("CLIENT_CERTIFICATE_FILE", "") for d in defaults)


def test_shapes_use_unusual_api_names() -> None:
    used = {name for shape in pairwise_shapes() for name in shape.spec["downstream_apis"]}
    assert any(keyword.iskeyword(name) for name in used)
    assert any(len(name) == 1 for name in used)
    assert {"login", "static", "profile", "logout"} & used  # the app's own route names
    assert any(any(c.isdigit() for c in name) for name in used)
    assert "tickets" in used and set(used) - {"graph"} <= set(API_NAMES)


@settings(max_examples=150, deadline=None, database=None)
@given(specs())
def test_the_random_strategy_draws_only_valid_specs(spec: dict[str, Any]) -> None:
    """What --spec-shapes bakes: the rules accept every drawn spec and it maps to a context."""
    assert gspec.validate_spec(spec) == []
    ctx = gspec.spec_to_context(spec)
    assert R.spec_to_context(R.context_to_spec(ctx)) == ctx
