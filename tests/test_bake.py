"""Bake the template with representative option sets; check every file; run each app's own tests.

Each generated project's suite runs in a subprocess (its conftest, rootdir and package must not
mix with this session) with this interpreter: one shared virtual environment holds every
generated app's dependencies, so no bake installs anything.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template"
TODO = {"base_url": "https://api.contoso.com/",
        "scopes": ["api://11111111-2222-3333-4444-555555555555/Todo.Read"]}

COMBINATIONS: dict[str, dict[str, Any]] = {
    "entra-memory-graph-and-api": {"downstream_apis": {"todo": TODO}},
    "oidc-filesystem-api-only": {
        "project_name": "Fabrikam Orders",
        "authority_kind": "oidc",
        "oidc_issuer": "https://id.fabrikam.example/realms/orders",
        "cache_backend": "filesystem",
        "call_graph": False,
        "downstream_apis": {"orders": {"base_url": "https://orders.fabrikam.example/v2",
                                       "scopes": ["api://orders.fabrikam.example/Orders.Read",
                                                  "api://orders.fabrikam.example/Orders.Write"]}},
        "sign_in_api": "orders",
        "redirect_path": "/auth/callback",
    },
    "entra-tenant-graph-only": {
        "project_name": "Tailwind Intranet",
        "entra_tenant": "0b2e6b5c-6d0e-4e8a-9a41-5f3f0c7d2a11",
        "graph_scopes": "User.Read Mail.Read",
        "client_id": "3f1f8e9a-2b7c-4d5e-8f60-1a2b3c4d5e6f",
    },
}

UNRENDERED = re.compile(r"\{\{\s*cookiecutter\.|\{%[^%]*cookiecutter\.")


@pytest.fixture(scope="module", params=sorted(COMBINATIONS))
def baked(request: pytest.FixtureRequest, cookies_session: Any) -> Path:
    started = time.perf_counter()
    result = cookies_session.bake(template=str(TEMPLATE),
                                  extra_context=COMBINATIONS[request.param])
    assert result.exception is None, result.exception
    assert result.exit_code == 0
    print(f"render {request.param}: {time.perf_counter() - started:.2f}s")
    return Path(result.project_path)


def test_every_file_is_rendered_and_parses(baked: Path) -> None:
    files = [p for p in baked.rglob("*") if p.is_file() and ".ruff_cache" not in p.parts]
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not UNRENDERED.search(text), f"unrendered template code in {path}"
        if path.suffix == ".py":
            compile(text, str(path), "exec")
        elif path.suffix == ".toml":
            tomllib.loads(text)
        elif path.suffix == ".json":
            json.loads(text)
        elif path.suffix in {".yaml", ".yml"}:
            yaml.safe_load(text)
    assert (baked / ".env.example").is_file() and not (baked / ".env").exists()


def test_generated_code_is_ruff_clean(baked: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."],
                            cwd=baked, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_code_is_typed(baked: Path, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path)],
                            cwd=baked, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_test_suite_passes(baked: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(baked)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=baked, env=env, capture_output=True, text=True, timeout=600,
    )
    elapsed = time.perf_counter() - started
    print(f"generated suite in {baked.name}: {elapsed:.1f}s\n{result.stdout[-400:]}")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert re.search(r"\d+ passed", result.stdout)


def test_the_documented_cookiecutter_command(tmp_path: Path) -> None:
    """`cookiecutter <repo> --directory template` on defaults, and a bad answer refused."""
    command = [sys.executable, "-m", "cookiecutter", str(ROOT), "--directory", "template",
               "--no-input", "-o", str(tmp_path)]
    env = {**os.environ, "HOME": str(tmp_path)}  # no user config or replay files leak in
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    config = (tmp_path / "contoso-portal" / "contoso_portal" / "config.py").read_text()
    assert '"graph"' in config and "https://login.microsoftonline.com/organizations" in config

    refused = subprocess.run([*command, "entra_tenant=not a tenant!",
                              "project_name=Second"], capture_output=True, text=True, env=env)
    assert refused.returncode != 0
    assert "ERROR: entra_tenant" in refused.stdout + refused.stderr
    assert not (tmp_path / "second").exists()
