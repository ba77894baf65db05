"""`msal-webapp update`: bring a generated project to the current template, all or nothing.

The project's record (`.msal-webapp.json`, msal_webapp_rules/record.py) holds the spec it was
rendered from and a digest of every template-managed file. The project is rendered again, from
that spec (or a changed one) with the current template, into a temporary directory; then, file
by file:

    unchanged by the user (digest as recorded)     replaced by the new render ("update")
    edited by the user, changed by the template    three-way merge, the old render as the base
                                                   ("merge"), or a conflict
    edited by the user, same in the new template   left as it is ("keep")
    new in the template                            added; a file of the user's at that path
                                                   is a conflict
    gone from the template                         deleted if unchanged, else kept (listed)
    added by the user (not in the record)          never touched

Any conflict: nothing is written and the conflicts are listed. Otherwise every change is staged
in a temporary directory and moved into place, and a failure on the way puts back what was moved.

The merge base, the old render, is rebuilt and trusted only where its digests match the record:
  1. a directory given with --base (e.g. the old generator's render of the recorded spec);
  2. the cache of renders (`new` and `update` keep each render there, by its digests);
  3. the recorded template commit, when the generator runs from a git checkout holding it: the
     generator and template of that commit are extracted (`git archive`) and render the spec;
  4. the current template, when it is the recorded commit.
Without a base, an edited file that the template changed is a conflict (the fix says how to
give a base). Merges are `git merge-file` (git is on every development machine; it is the merge
users already read, with its conflict markers).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from msal_webapp_rules import record

from generator.paths import template_dir
from generator.render import render
from generator.spec import spec_to_context

CACHE_ENV = "MSAL_WEBAPP_CACHE_DIR"
CACHE_KEEP = 50  # renders kept in the cache (the newest)


class UpdateError(Exception):
    """The update cannot be planned or applied; nothing was written."""


@dataclass
class Change:
    path: str
    action: str  # add, update, merge, delete, keep, kept, conflict
    detail: str = ""
    content: bytes | None = None  # what to write (add, update, merge)
    mode: int | None = None
    before: str | None = None  # the digest of the file when planned (None: absent)

    @property
    def writes(self) -> bool:
        return self.action in ("add", "update", "merge", "delete")


@dataclass
class Plan:
    project: Path
    changes: list[Change] = field(default_factory=list)
    record_text: str = ""  # the new record (written with the changes)
    record_changes: bool = False  # the spec or the managed files differ from the record's
    base_source: str = ""  # where the merge base came from, if one was needed

    @property
    def conflicts(self) -> list[Change]:
        return [c for c in self.changes if c.action == "conflict"]

    @property
    def writes(self) -> list[Change]:
        return [c for c in self.changes if c.writes]

    @property
    def pending(self) -> bool:
        """Whether applying would change anything (or cannot, for conflicts)."""
        return bool(self.writes or self.conflicts or self.record_changes)


# ------------------------------------------------------------------------------ the old render
def cache_dir() -> Path:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "msal-webapp"


def _cache_key(files: dict[str, str]) -> str:
    return record.digest(json.dumps(files, sort_keys=True).encode()).split(":", 1)[1]


def remember(project: Path) -> None:
    """Keep the managed files of a fresh render in the cache, as a future merge base.
    Best effort: a cache that cannot be written only means no base from it later."""
    try:
        files = record.load(project)["files"]
        folder = cache_dir() / "renders"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{_cache_key(files)}.tar.gz"
        if target.exists():
            os.utime(target)
            return
        fd, partial = tempfile.mkstemp(dir=folder, suffix=".partial")
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for rel in files:
                tar.add(project / rel, arcname=rel, recursive=False)
        os.replace(partial, target)
        entries = sorted(folder.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[CACHE_KEEP:]:
            old.unlink(missing_ok=True)
    except (OSError, record.RecordError, tarfile.TarError):
        return


def _from_cache(files: dict[str, str]) -> dict[str, bytes] | None:
    path = cache_dir() / "renders" / f"{_cache_key(files)}.tar.gz"
    try:
        with tarfile.open(path, "r:gz") as tar:
            found: dict[str, bytes] = {}
            for member in tar.getmembers():
                extracted = tar.extractfile(member) if member.isfile() else None
                if extracted is not None:
                    found[member.name] = extracted.read()
            return found
    except (OSError, tarfile.TarError):
        return None


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False, timeout=120)


def _render_at_commit(commit: str, template: Path, spec: dict[str, Any],
                      work: Path) -> tuple[dict[str, bytes] | None, str]:
    """The project that the generator and template of `commit` render from `spec`, run in a
    subprocess (that commit's own code and rules), or None and why not."""
    try:
        top = _git(template, "rev-parse", "--show-toplevel")
        if top.returncode != 0:
            return None, "the template is not in a git checkout"
        root = Path(top.stdout.decode().strip())
        if _git(root, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
            return None, f"the template's git repository has no commit {commit[:12]}"
        prefix = template.resolve().relative_to(root.resolve()).as_posix()
        archive = _git(root, "archive", "--format=tar", commit, "--", prefix, "generator")
        if archive.returncode != 0:
            return None, f"git archive {commit[:12]} failed: {archive.stderr.decode()[:200]}"
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        return None, f"git failed: {exc}"
    work.mkdir(parents=True, exist_ok=True)
    source = work / "source"
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        try:
            tar.extractall(source, filter="data")
        except TypeError:  # Python < 3.11.4: no filters; the archive is git's own output
            tar.extractall(source)
    spec_file = work / "spec.json"
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(source), CACHE_ENV: str(work / "no-cache")}
    done = subprocess.run([sys.executable, "-m", "generator.cli", "new", str(spec_file), "-o",
                           str(work / "out")], cwd=source, env=env, capture_output=True,
                          text=True, check=False, timeout=600)
    outputs = list((work / "out").iterdir()) if (work / "out").is_dir() else []
    if done.returncode != 0 or len(outputs) != 1:
        return None, (f"the generator of commit {commit[:12]} did not render the spec: "
                      + (done.stderr.strip().splitlines() or ["no output"])[-1])
    return _tree(outputs[0]), f"re-rendered at template commit {commit[:12]}"


def find_base(old: dict[str, Any], template: Path, base_dir: Path | None,
              needed: list[str], work: Path) -> tuple[dict[str, bytes], str]:
    """The old render's files among `needed`, each matching its recorded digest, and where
    they came from; ({}, why none) when no source has them."""
    files: dict[str, str] = old["files"]

    def trusted(found: dict[str, bytes] | None) -> dict[str, bytes]:
        if not found:
            return {}
        return {p: found[p] for p in needed if p in found and record.digest(found[p]) == files[p]}

    why: list[str] = []
    sources: list[tuple[str, Callable[[], dict[str, bytes] | None]]] = []
    if base_dir is not None:
        sources.append((f"--base {base_dir}", lambda: {
            rel: (base_dir / rel).read_bytes() for rel in needed if (base_dir / rel).is_file()}))
    sources.append(("the cache of renders", lambda: _from_cache(files)))
    commit = old["generator"].get("template_commit")
    if isinstance(commit, str) and commit:
        def at_commit() -> dict[str, bytes] | None:
            found, reason = _render_at_commit(commit, template, old["spec"], work / "base")
            if found is None:
                why.append(reason)
            return found
        sources.append((f"template commit {commit[:12]}", at_commit))
    else:
        why.append("the record names no template commit (rendered from a template with "
                   "uncommitted changes, or not from a git checkout)")
    if record.template_commit(template) == commit and commit:
        sources.insert(-1, ("the current template (the recorded commit)",
                            lambda: _render_tree(old["spec"], template, work / "same")))
    best: tuple[dict[str, bytes], str] = ({}, "")
    for name, load in sources:
        got = trusted(load())
        if len(got) > len(best[0]):
            best = (got, name)
        if len(got) == len(needed):
            return got, name
    return best[0], best[1] or "; ".join(why) or "no source of the old render"


def _render_tree(spec: dict[str, Any], template: Path, work: Path) -> dict[str, bytes] | None:
    from generator.render import RenderError
    from generator.spec import SpecError

    work.mkdir(parents=True, exist_ok=True)
    try:
        return _tree(render(spec_to_context(spec), work, template))
    except (RenderError, SpecError):
        return None  # not a base, then; the new render reports its own problems


# ------------------------------------------------------------------------------------ merging
def merge(current: bytes, base: bytes, new: bytes, work: Path) -> tuple[bytes, int]:
    """`git merge-file` of the user's file with the new render, the old render as the base:
    the merged bytes (with conflict markers if any) and the number of conflicts."""
    if any(b"\0" in data for data in (current, base, new)):
        return current, 1  # binary: no line merge
    paths = []
    folder = work / "merge"
    folder.mkdir(exist_ok=True)
    for name, data in (("yours", current), ("old", base), ("new", new)):
        path = folder / name
        path.write_bytes(data)
        paths.append(str(path))
    done = subprocess.run(["git", "merge-file", "-p", "--diff3", "-L", "yours", "-L",
                           "old template", "-L", "new template", *paths],
                          capture_output=True, check=False, timeout=60)
    if done.returncode < 0 or done.returncode > 127:
        raise UpdateError(f"git merge-file failed: {done.stderr.decode(errors='replace')[:200]}")
    return done.stdout, done.returncode


# ----------------------------------------------------------------------------------- planning
def plan(project: Path, spec: dict[str, Any] | None = None, *, template: Path | None = None,
         base_dir: Path | None = None) -> Plan:
    """What updating `project` would do; writes nothing in it. Raises RecordError, SpecError,
    RenderError, UpdateError."""
    project = project.resolve()
    template = template or template_dir()
    if base_dir is not None and not base_dir.is_dir():
        raise UpdateError(f"--base {base_dir}: not a directory; give the folder of the old "
                          "render (the project as the old generator rendered it)")
    old = record.load(project)
    new_spec = spec if spec is not None else old["spec"]
    context = spec_to_context(new_spec)
    result = Plan(project)
    with tempfile.TemporaryDirectory(prefix="msal-webapp-update.") as tmp:
        work = Path(tmp)
        rendered = render(context, work / "new", template)
        new_files = _tree(rendered)
        new_record_text = new_files.pop(record.FILE_NAME).decode("utf-8")
        new_record = json.loads(new_record_text)
        modes = {rel: (rendered / rel).stat().st_mode & 0o777 for rel in new_files}
        old_files: dict[str, str] = old["files"]
        current: dict[str, bytes | None] = {}
        odd: list[str] = []  # a folder or a link where a managed file is
        for rel in sorted(set(old_files) | set(new_files)):
            path = project / rel
            if path.is_symlink() or (os.path.lexists(path) and not path.is_file()):
                odd.append(rel)
            current[rel] = path.read_bytes() if rel not in odd and path.is_file() else None
        # Edited files that the template changed need the old render.
        def edited(rel: str) -> bool:
            data = current[rel]
            return data is not None and record.digest(data) != old_files[rel]

        needed = [rel for rel in old_files
                  if edited(rel) and rel in new_files and current[rel] != new_files[rel]
                  and record.digest(new_files[rel]) != old_files[rel]]
        base: dict[str, bytes] = {}
        if needed:
            base, result.base_source = find_base(old, template, base_dir, needed, work)
        for rel in sorted(set(old_files) | set(new_files)):
            if rel in odd:
                result.changes.append(Change(rel, "conflict", "not a regular file (a folder or "
                                             "a link); move it aside, then update again"))
                continue
            change = _classify(rel, old_files.get(rel), current[rel], new_files.get(rel),
                               base.get(rel), result.base_source, work)
            if change is not None:
                data = current[rel]
                change.before = None if data is None else record.digest(data)
                if change.content is not None:
                    mode = (project / rel).stat().st_mode & 0o777 if change.action == "merge" \
                        else modes.get(rel)
                    change.mode = mode
                result.changes.append(change)
    result.record_text = new_record_text
    result.record_changes = (new_record["files"] != old_files
                             or new_record["spec"] != old["spec"])
    return result


def _classify(rel: str, recorded: str | None, current: bytes | None, new: bytes | None,
              base: bytes | None, base_source: str, work: Path) -> Change | None:
    if recorded is None:  # new in the template
        if new is None or current == new:
            return None
        if current is None:
            return Change(rel, "add", content=new)
        return Change(rel, "conflict", "the new template adds this file, and yours is there; "
                      "move yours aside (or make it the template's), then update again")
    edited = current is not None and record.digest(current) != recorded
    if new is None:  # gone from the template
        if current is None:
            return None
        if not edited:
            return Change(rel, "delete")
        return Change(rel, "kept", "edited by you, and the new template no longer has it; "
                      "delete it if nothing uses it")
    if current is None:
        if record.digest(new) == recorded:
            return None  # you deleted it and the template did not change it: stays deleted
        return Change(rel, "conflict", "you deleted it and the new template changes it; "
                      "restore it (git checkout) or copy the new version in, then update again")
    if current == new:
        return None
    if not edited:
        return Change(rel, "update", content=new)
    if record.digest(new) == recorded:
        return Change(rel, "keep", "edited by you; the template did not change it")
    if base is None:
        return Change(rel, "conflict", "edited by you and changed by the template, and the old "
                      f"render is not available to merge them ({base_source}); give it with "
                      "--base DIR (the old generator's render of the same spec)")
    merged, conflicts = merge(current, base, new, work)
    if conflicts:
        # The merged text, markers and all, for --show-conflicts; never written.
        return Change(rel, "conflict", f"{conflicts} conflicting hunk(s) between your edits and "
                      "the template's (--show-conflicts prints them); reconcile your edit with "
                      "the new template by hand, or undo it, then update again", content=merged)
    return Change(rel, "merge", "your edits and the template's", content=merged)


# ----------------------------------------------------------------------------------- applying
def apply(plan: Plan) -> None:
    """Write every change of a conflict-free plan, all or nothing: each file is staged in a
    temporary directory in the project (one file system: moves are atomic renames), the
    originals are kept aside, and a failure puts them back."""
    if plan.conflicts:
        raise UpdateError("the update has conflicts; nothing was written")
    if not plan.writes and not plan.record_changes:
        return
    project = plan.project
    changes = [*plan.writes,  # the record last
               Change(record.FILE_NAME, "update", content=plan.record_text.encode("utf-8"))]
    stage = Path(tempfile.mkdtemp(prefix=".msal-webapp-update.", dir=project))
    moved: list[tuple[Path, Path | None]] = []  # (target, its original kept aside, if any)
    created_dirs: list[Path] = []
    try:
        for number, change in enumerate(changes):
            if change.content is not None:
                staged = stage / f"new{number}"
                staged.write_bytes(change.content)
                if change.mode is not None:
                    os.chmod(staged, change.mode)
        for number, change in enumerate(changes):
            target = project / change.path
            if change.path != record.FILE_NAME and _digest_now(target) != change.before:
                raise UpdateError(f"{change.path} changed while updating; run the update again")
            kept = stage / f"old{number}" if target.exists() else None
            for parent in reversed(target.relative_to(project).parents):
                folder = project / parent
                if not folder.is_dir():
                    folder.mkdir()
                    created_dirs.append(folder)
            if kept is not None:
                os.replace(target, kept)
            moved.append((target, kept))
            if change.content is not None:
                os.replace(stage / f"new{number}", target)
        for change in changes:  # folders left empty by deletions
            if change.action == "delete":
                for parent in (project / change.path).parents:
                    if parent == project or any(parent.iterdir()):
                        break
                    parent.rmdir()
    except BaseException:
        for target, kept in reversed(moved):
            if target.exists() or target.is_symlink():
                target.unlink()
            if kept is not None:
                os.replace(kept, target)
        for folder in reversed(created_dirs):
            try:
                folder.rmdir()
            except OSError:
                pass
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    remember(project)


def _digest_now(path: Path) -> str | None:
    """The digest of a regular file, None if absent; a folder or link is neither."""
    if path.is_symlink() or (os.path.lexists(path) and not path.is_file()):
        return "not a regular file"
    return record.digest(path.read_bytes()) if path.is_file() else None


# ---------------------------------------------------------------------------------- reporting
LABELS = {"add": "add", "update": "update", "merge": "merge", "delete": "delete",
          "keep": "keep", "kept": "kept", "conflict": "CONFLICT"}


def describe(plan: Plan) -> list[str]:
    lines = []
    for change in plan.changes:
        detail = f" ({change.detail})" if change.detail and change.action != "conflict" else ""
        if change.action == "conflict":
            detail = f": {change.detail}"
        lines.append(f"  {LABELS[change.action]:<8} {change.path}{detail}")
    return lines


def project_python(project: Path, python: Path | None = None) -> str:
    """The project's Python: --python, else its .venv's, else the one running this."""
    if python is not None:
        return str(python)
    for candidate in (project / ".venv" / "bin" / "python",
                      project / ".venv" / "Scripts" / "python.exe"):
        if candidate.is_file():
            return str(candidate)
    return sys.executable


def run_suite(project: Path, python: Path | None = None) -> int:
    """Run the project's own test suite with its Python; its exit status."""
    return subprocess.run([project_python(project, python), "-m", "pytest", "-q"],
                          cwd=project, check=False).returncode


# ---------------------------------------------------------------------------- the subcommand
def add_parser(sub: Any) -> None:
    """`msal-webapp update`'s arguments (sub: the CLI's subparsers)."""
    parser = sub.add_parser(
        "update", help="bring PROJECT to the current template (and optionally a changed spec): "
        "untouched files are replaced, edited ones merged, all or nothing")
    parser.add_argument("project", type=Path, nargs="?", default=Path("."), metavar="PROJECT",
                        help="the generated project's directory (default: .)")
    parser.add_argument("--spec", type=Path, metavar="SPEC.yaml",
                        help="a changed spec to render with (default: the recorded one)")
    parser.add_argument("--check", action="store_true",
                        help="only say what would change; exit 1 if anything would")
    parser.add_argument("--show-conflicts", action="store_true",
                        help="print each conflicting file's merge, with conflict markers")
    parser.add_argument("--base", type=Path, metavar="DIR",
                        help="the old render (the project as the recorded generator rendered "
                             "it), when neither the cache nor the template's git history has it")
    parser.add_argument("--test", action="store_true",
                        help="after updating, run the project's test suite")
    parser.add_argument("--python", type=Path, metavar="PYTHON",
                        help="the project's Python for --test (default: PROJECT/.venv's, else "
                             "this one)")
    # Another template directory (a fork's): not in --help, for the generator's own tests.
    parser.add_argument("--template", type=Path, metavar="DIR", help=argparse.SUPPRESS)


def command(args: Any) -> int:
    """Run `msal-webapp update`: 0 done (or nothing to do), 1 conflicts, a failed suite, or with
    --check pending changes, 2 bad input (record, spec)."""
    from generator.render import RenderError
    from generator.spec import SpecError, load_spec

    def error(message: str) -> None:
        print(f"error: {message}", file=sys.stderr)

    try:
        spec = load_spec(args.spec) if args.spec is not None else None
        if spec is not None:
            spec_to_context(spec)  # every problem now, before any rendering
        result = plan(args.project, spec, template=args.template, base_dir=args.base)
    except SpecError as exc:
        for message in exc.messages:
            error(message)
        source = args.spec or args.project / record.FILE_NAME  # the recorded spec, if no --spec
        print(f"{source}: {len(exc.messages)} problem(s); nothing was written (give a corrected "
              "spec with --spec)", file=sys.stderr)
        return 2
    except record.RecordError as exc:
        error(str(exc))
        return 2
    except (RenderError, UpdateError, OSError) as exc:
        error(f"the update failed, nothing was written: {exc}")
        return 1
    name = args.project
    for line in describe(result):
        print(line)
    if result.base_source and not result.conflicts:
        print(f"merge base: {result.base_source}")
    if args.show_conflicts:
        for change in result.conflicts:
            if change.content is not None:
                print(f"----- {change.path} (merged, with conflict markers) -----")
                print(change.content.decode("utf-8", errors="replace"), end="")
    if result.conflicts:
        print(f"{name}: {len(result.conflicts)} conflict(s); nothing was written. Resolve them "
              "(each line says how) and run `msal-webapp update` again.", file=sys.stderr)
        return 1
    if not result.pending:
        print(f"{name}: up to date with the template")
        return 0
    if args.check:
        print(f"{name}: {len(result.writes)} file(s) would change (run `msal-webapp update` to "
              "apply)" if result.writes else f"{name}: the record would change (spec or "
              "template); no file would")
        return 1
    try:
        apply(result)
    except (OSError, UpdateError) as exc:
        error(f"the update failed, nothing was changed: {exc}")
        return 1
    print(f"{name}: updated ({len(result.writes)} file(s) changed)")
    if args.test:
        status = run_suite(result.project, args.python)
        print(f"{name}: the project's tests " + ("passed" if status == 0 else
                                                 f"failed (exit status {status})"))
        return 0 if status == 0 else 1
    return 0
