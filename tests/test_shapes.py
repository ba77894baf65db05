"""The spec shapes the bake tests use: every pair of option values covered, every shape valid."""

from __future__ import annotations

import itertools
import keyword
from typing import Any

from hypothesis import given, settings
from shapes import (
    API_NAMES,
    EXAMPLES,
    FACTORS,
    R,
    all_valid_rows,
    example_rows,
    pairs_of,
    pairwise_shapes,
    row_is_valid,
    row_of_spec,
    spec_for_row,
    specs,
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
    assert valid_pairs() <= covered, sorted(valid_pairs() - covered)
    # The only pairs left out are those the rules forbid: sign-in with an API that is not there,
    # a managed identity's assertion with another OpenID Connect provider.
    assert impossible == {(("apis", "0"), ("sign_in", "custom")),
                          (("graph", "no"), ("sign_in", "graph")),
                          (("authority", "oidc"), ("credential", "managed_identity"))}
    assert all(row is not None and row_is_valid(row) for row in rows)
    # Each row is a bake of about half a minute: no more than the lower bound, the 4 x 5
    # (apis, credential) pairs.
    assert len(rows) == len(FACTORS["apis"]) * len(FACTORS["credential"])
    assert len(example_rows()) == len(EXAMPLES)  # each example counts


def test_row_of_spec_reads_the_options() -> None:
    for index, row in enumerate(all_valid_rows()):
        assert row_of_spec(spec_for_row(row, index)) == row


def test_row_validity_matches_the_rules() -> None:
    """A row the factor rules call valid renders a spec the hook accepts, and vice versa."""
    for index, row in enumerate(itertools.product(*FACTORS.values())):
        if row_is_valid(row):
            assert R.validate_spec(spec_for_row(row, index)) == [], row
    assert len(all_valid_rows()) < len(list(itertools.product(*FACTORS.values())))


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
        assert ctx["authority_kind"] == ("oidc" if values["authority"] == "oidc" else "entra")
        if values["authority"] in ("organizations", "common"):
            assert ctx["entra_tenant"] == values["authority"]
        assert ctx["cache_backend"] == values["cache"]
        default_redirect = ctx["redirect_path"] == R.DEFAULT_REDIRECT_PATH
        assert default_redirect is (values["redirect"] == "default")
        kind = ctx["credential_kind"]
        assert (ctx["assertion_source"] if kind == "assertion" else kind) == values["credential"]


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
