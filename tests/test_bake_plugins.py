"""The plugin that keeps the generated suites' rewritten asserts for a run (tests/bake_plugins)."""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
from pathlib import Path

from baking import BAKE_PLUGINS

MODULE = "def test_lists() -> None:\n    found = [1, 2]\n    assert found == [1, 3]\n"
CONFTEST = "import pytest\n\n\n@pytest.fixture\ndef two() -> int:\n    assert 2 > 1\n    return 2\n"

def run_suite(project: Path, kept: Path) -> str:
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONPATH": str(BAKE_PLUGINS),
           "KEPT_REWRITES_DIR": str(kept)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "kept_rewrites",
                           "-p", "no:cacheprovider", "--tb=long", "-rf"], cwd=project,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr  # the one test fails
    return done.stdout

def test_a_module_of_the_same_bytes_in_another_project_gets_the_kept_rewrite(
        tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    first, second = tmp_path / "first", tmp_path / "second"
    for project in (first, second):
        project.mkdir()
        (project / "test_module.py").write_text(MODULE)
        (project / "conftest.py").write_text(CONFTEST)

    output = run_suite(first, kept)
    assert "assert [1, 2] == [1, 3]" in output and "At index 1 diff: 2 != 3" in output
    assert len(list(kept.glob("*.code"))) == 2  # the test module and the conftest

    # The kept code is what the second project runs: made to say something else, it does (and
    # under the second project's own file name).
    made = compile(MODULE.replace("[1, 3]", "[1, 3], 'the kept code ran'"), "elsewhere.py",
                   "exec")
    source_code = {path: path.read_bytes() for path in kept.glob("*.code")}

    module_entry = next(path for path, code in source_code.items()
                        if "test_lists" in marshal.loads(code).co_names)
    module_entry.write_bytes(marshal.dumps(made))
    output = run_suite(second, kept)
    assert "AssertionError: the kept code ran" in output, output
    assert "test_module.py:3: AssertionError" in output and "elsewhere" not in output, output
    assert len(list(kept.glob("*.code"))) == 2
