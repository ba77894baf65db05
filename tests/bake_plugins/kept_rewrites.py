"""A pytest plugin for the bakes' generated suites (`-p kept_rewrites`): each test module's
rewritten asserts are kept by the module's bytes for the whole run, in the folder named by
KEPT_REWRITES_DIR.

pytest rewrites the asserts of every test module and conftest it imports (parse, rewrite,
compile: about 1.6 s of CPU for a generated suite, more than a third of its start-up) and keeps
the code beside the module, by its path; every bake is a new project folder, so every bake did
it again, for modules that are the same bytes in most bakes. Here the code is kept by a digest
of the bytes, the interpreter, pytest and the one setting that changes the rewrite
(`enable_assertion_pass_hook`); a module found there gets the same code with its own file name.
pytest's own checks (which modules it rewrites, its cache beside the module) are unchanged.
"""

from __future__ import annotations

import hashlib
import importlib.util
import marshal
import os
import sys
import types
from pathlib import Path

import pytest
from _pytest.assertion import rewrite

FOLDER_VARIABLE = "KEPT_REWRITES_DIR"
_rewrite_test = rewrite._rewrite_test


def with_file_name(code: types.CodeType, file_name: str) -> types.CodeType:
    """``code`` and the code objects inside it, as compiled from ``file_name``."""
    constants = tuple(with_file_name(c, file_name) if isinstance(c, types.CodeType) else c
                      for c in code.co_consts)
    return code.replace(co_filename=file_name, co_consts=constants)


def kept_rewrite(folder: Path, fn: Path, config: pytest.Config
                 ) -> tuple[bytes, types.CodeType]:
    """`_pytest.assertion.rewrite._rewrite_test`, kept in ``folder`` by content."""
    source = fn.read_bytes()
    key = hashlib.sha256(b"\0".join([
        sys.version.encode(), pytest.__version__.encode(),
        str(config.getini("enable_assertion_pass_hook")).encode(), source])).hexdigest()
    kept = folder / f"{key}.code"
    try:
        code = marshal.loads(kept.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        source_hash, code = _rewrite_test(fn, config)
        staging = kept.with_name(f"{kept.name}.{os.getpid()}")
        staging.write_bytes(marshal.dumps(code))
        os.replace(staging, kept)  # whole, whichever process of the run wrote it
        return source_hash, code
    return importlib.util.source_hash(source), with_file_name(code, str(fn))


def _install() -> None:
    # On import: `-p` plugins are imported before the first conftest is.
    folder = os.environ.get(FOLDER_VARIABLE)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        rewrite._rewrite_test = (
            lambda fn, config: kept_rewrite(Path(folder), fn, config))


_install()
