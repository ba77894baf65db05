"""The project's record (.msal-webapp.json) and `msal-webapp update` across a real template change.

A copy of the generator and template becomes a git repository: a project is rendered at its
first commit, then a second commit changes the template (README.md gains a section, a line of
.gitignore changes, NOTES.md is new, .pre-commit-config.yaml is gone) and the project is updated
to it. The merge base is the first commit's render, from git unless a test says otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from generator import cli, update
from generator.render import render
from generator.spec import context_for_file, spec_to_context

record = update.record  # the template's msal_webapp_rules.record (importable via generator)

EXAMPLE = ROOT / "examples" / "app.yaml"
PROJECT_TEMPLATE = "template/{{cookiecutter.project_slug}}"
GIT = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com",
       "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"]
V2_SECTION = "\n## New in the second template\n\nA section the template added later.\n"
OLD_IGNORE, NEW_IGNORE = ".env\n", ".env\n.env.local\n"


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run([*GIT, *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


@dataclass(frozen=True)
class Repo:
    root: Path
    v1: str  # the commits
    v2: str
    project_v1: Path  # the project rendered at v1 (copied by each test)
    render_v2: Path  # a fresh render at v2, to compare with

    @property
    def template(self) -> Path:
        return self.root / "template"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    base = tmp_path_factory.mktemp("repo")
    root = base / "source"
    ignore = shutil.ignore_patterns("__pycache__", ".mypy_cache", ".ruff_cache")
    for name in ("generator", "template"):
        shutil.copytree(ROOT / name, root / name, ignore=ignore)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "v1")
    v1 = git(root, "rev-parse", "HEAD")
    context = context_for_file(EXAMPLE)
    project_v1 = render(context, base / "v1", root / "template")
    assert record.load(project_v1)["generator"]["template_commit"] == v1

    project_template = root / PROJECT_TEMPLATE
    readme = project_template / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8") + V2_SECTION, encoding="utf-8")
    ignore_file = project_template / ".gitignore"
    text = ignore_file.read_text(encoding="utf-8")
    assert text.startswith(OLD_IGNORE)
    ignore_file.write_text(NEW_IGNORE + text[len(OLD_IGNORE):], encoding="utf-8")
    (project_template / "NOTES.md").write_text("New in the second template.\n", encoding="utf-8")
    (project_template / ".pre-commit-config.yaml").unlink()
    git(root, "add", "-A")
    git(root, "commit", "-qm", "v2")
    v2 = git(root, "rev-parse", "HEAD")
    render_v2 = render(context, base / "v2", root / "template")
    return Repo(root, v1, v2, project_v1, render_v2)


@pytest.fixture
def project(repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The v1 project, in a fresh directory, with an empty cache of renders."""
    monkeypatch.setenv(update.CACHE_ENV, str(tmp_path / "cache"))
    target = tmp_path / "work" / repo.project_v1.name
    shutil.copytree(repo.project_v1, target)
    yield target


def run(repo: Repo, project: Path, capsys: pytest.CaptureFixture[str], *args: str
        ) -> tuple[int, str]:
    capsys.readouterr()
    status = cli.main(["update", str(project), "--template", str(repo.template), *args])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


# ------------------------------------------------------------------------------------ record
def test_new_records_the_spec_version_commit_and_every_file(tmp_path: Path) -> None:
    assert cli.main(["new", str(EXAMPLE), "-o", str(tmp_path)]) == 0
    project = tmp_path / "contoso-portal"
    saved = record.load(project)
    context = context_for_file(EXAMPLE)
    # The normalised spec: rendering it again gives the same context.
    assert spec_to_context(saved["spec"]) == context
    assert saved["spec"]["authority"]["instance"] == "https://login.microsoftonline.com"
    assert saved["generator"]["version"] == cli.__version__
    on_disk = {rel: record.digest(data) for rel, data in tree(project).items()
               if rel != record.FILE_NAME}
    assert saved["files"] == on_disk
    assert "registration.json" in saved["files"]


def test_lock_files_and_the_record_are_not_template_managed(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("x==1 --hash=sha256:00\n")
    (tmp_path / record.FILE_NAME).write_text("{}")
    (tmp_path / "app.py").write_text("print()\n")
    assert list(record.managed_files(tmp_path)) == ["app.py"]


def test_a_project_without_a_record_is_refused_with_the_fix(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["update", str(tmp_path)]) == 2
    assert ".msal-webapp.json: missing" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ update
def test_update_of_an_untouched_project(repo: Repo, project: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    (project / "mine.txt").write_text("the user's own file\n")
    before = tree(project)
    status, out = run(repo, project, capsys, "--check")
    assert status == 1, out
    assert tree(project) == before  # --check writes nothing
    for line in ("update   README.md", "update   .gitignore", "add      NOTES.md",
                 "delete   .pre-commit-config.yaml"):
        assert line in out
    status, out = run(repo, project, capsys)
    assert status == 0, out
    after = tree(project)
    assert after.pop("mine.txt") == b"the user's own file\n"  # never touched
    assert after == tree(repo.render_v2)  # exactly the new render, record included
    assert record.load(project)["generator"]["template_commit"] == repo.v2
    assert not [p for p in project.iterdir() if p.name.startswith(".msal-webapp-update")]
    assert run(repo, project, capsys, "--check")[0] == 0


def test_edited_files_are_merged_kept_or_left(repo: Repo, project: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    readme = project / "README.md"
    ours = readme.read_text().replace("# Contoso Portal\n", "# Contoso Portal (ours)\n", 1)
    readme.write_text(ours)
    views = project / "contoso_portal" / "views.py"
    views.write_text(views.read_text() + "# our note\n")  # the template did not change it
    hooks = project / ".pre-commit-config.yaml"
    hooks.write_text(hooks.read_text() + "# our hook\n")  # the template dropped it
    status, out = run(repo, project, capsys)
    assert status == 0, out
    assert "merge    README.md" in out and f"template commit {repo.v1[:12]}" in out
    merged = readme.read_text()
    assert merged.startswith("# Contoso Portal (ours)\n") and merged.endswith(V2_SECTION)
    assert "keep     contoso_portal/views.py" in out
    assert views.read_text().endswith("# our note\n")
    assert "kept     .pre-commit-config.yaml" in out and hooks.read_text().endswith("# our hook\n")
    # The record now describes the new render: the merged file counts as edited.
    assert record.load(project)["files"]["README.md"] == record.digest(
        (repo.render_v2 / "README.md").read_bytes())


def test_a_conflict_leaves_every_file_untouched(repo: Repo, project: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    ignore = project / ".gitignore"
    ignore.write_text(".env\n.env.production\n" + ignore.read_text()[len(OLD_IGNORE):])
    (project / "NOTES.md").write_text("my notes\n")  # where the template now has its own
    before = tree(project)
    status, out = run(repo, project, capsys, "--show-conflicts")
    assert status == 1, out
    assert tree(project) == before  # README.md was not updated either: all or nothing
    assert "CONFLICT .gitignore: 1 conflicting hunk(s)" in out
    assert "CONFLICT NOTES.md: the new template adds this file" in out
    assert "<<<<<<< yours" in out and ">>>>>>> new template" in out
    assert "nothing was written" in out


def test_a_spec_change_adds_a_store(repo: Repo, project: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["cache"] = {"backend": "redis"}
    changed = tmp_path / "redis.yaml"
    changed.write_text(yaml.safe_dump(spec))
    status, out = run(repo, project, capsys, "--spec", str(changed))
    assert status == 0, out
    for added in ("contoso_portal/core/stores/redis.py", "tests/test_redis_store.py",
                  "compose.yaml"):
        assert f"add      {added}" in out and (project / added).is_file()
    assert "redis" in (project / "pyproject.toml").read_text()
    assert 'token_cache_backend="redis"' in (project / "contoso_portal" / "config.py").read_text()
    assert record.load(project)["spec"]["cache"] == {"backend": "redis"}
    assert run(repo, project, capsys, "--check")[0] == 0  # the recorded spec is the new one

    spec["cache"] = {"backend": "nosuch"}
    changed.write_text(yaml.safe_dump(spec))
    before = tree(project)
    status, out = run(repo, project, capsys, "--spec", str(changed))
    assert status == 2 and "cache.backend" in out and tree(project) == before


def test_merge_base_sources_are_trusted_only_when_they_match_the_record(
        repo: Repo, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = record.load(project)
    saved["generator"]["template_commit"] = None  # e.g. rendered from an uncommitted template
    (project / record.FILE_NAME).write_text(record.dumps(saved))
    readme = project / "README.md"
    readme.write_text("Our introduction.\n\n" + readme.read_text())
    before = tree(project)
    status, out = run(repo, project, capsys)
    assert status == 1 and "CONFLICT README.md" in out and "--base DIR" in out
    assert tree(project) == before

    tampered = tmp_path / "tampered"
    shutil.copytree(repo.project_v1, tampered)
    # Not the old render: with the new README as the base, a merge would silently drop the
    # template's change; its digest differs from the record's, so it is not used.
    shutil.copy(repo.render_v2 / "README.md", tampered / "README.md")
    status, out = run(repo, project, capsys, "--base", str(tampered))
    assert status == 1 and "CONFLICT README.md" in out and tree(project) == before

    update.remember(repo.project_v1)  # what `new` does
    status, out = run(repo, project, capsys)
    assert status == 0, out
    assert "merge base: the cache of renders" in out
    assert readme.read_text().startswith("Our introduction.\n") and V2_SECTION in readme.read_text()


def test_a_file_changed_while_updating_puts_everything_back(repo: Repo, project: Path) -> None:
    before = tree(project)
    planned = update.plan(project, template=repo.template)
    assert [c.path for c in planned.writes][:3] == [".gitignore", ".pre-commit-config.yaml",
                                                    "NOTES.md"]
    (project / "README.md").write_text("edited after planning\n")  # applied after the three
    with pytest.raises(update.UpdateError, match="README.md changed while updating"):
        update.apply(planned)
    after = tree(project)
    assert after.pop("README.md") == b"edited after planning\n"
    before.pop("README.md")
    assert after == before
    assert not [p for p in project.iterdir() if p.name.startswith(".msal-webapp-update")]


def test_update_runs_the_project_suite(repo: Repo, project: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """--test runs `python -m pytest` in the project with its Python (here a stand-in that
    records its arguments, so as not to run the whole suite)."""
    fake = tmp_path / "python"
    fake.write_text(f"#!{sys.executable}\nimport os, sys\n"
                    "open('ran.txt', 'w').write(os.getcwd() + ' ' + ' '.join(sys.argv[1:]))\n"
                    "sys.exit(3)\n")
    fake.chmod(0o755)
    status, out = run(repo, project, capsys, "--test", "--python", str(fake))
    assert status == 1 and "tests failed (exit status 3)" in out
    assert (project / "ran.txt").read_text() == f"{project.resolve()} -m pytest -q"


# ------------------------------------------------------------------------------------- cruft
def test_cruft_create_and_update_keep_working(repo: Repo, tmp_path: Path) -> None:
    """cruft renders through cookiecutter and the hooks: the record is written at create and
    follows cruft's update; msal-webapp then finds the project up to date."""
    cruft = [sys.executable, "-m", "cruft"]
    env = {**os.environ, "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "t@example.com"}
    made = subprocess.run([*cruft, "create", str(repo.root), "--directory", "template",
                           "--checkout", repo.v1, "--no-input", "--output-dir",
                           str(tmp_path)], capture_output=True, text=True, env=env, check=False)
    assert made.returncode == 0, made.stdout + made.stderr
    project = tmp_path / "contoso-portal"
    saved = record.load(project)
    assert saved["generator"]["template_commit"] == repo.v1
    assert saved["files"] == {rel: record.digest(data) for rel, data in tree(project).items()
                              if rel not in (record.FILE_NAME, ".cruft.json")}
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "generated")
    done = subprocess.run([*cruft, "update", "-y", "--checkout", "main"], cwd=project,
                          capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (project / ".gitignore").read_text().startswith(NEW_IGNORE)
    assert record.load(project)["generator"]["template_commit"] == repo.v2
    status = cli.main(["update", str(project), "--template", str(repo.template), "--check"])
    assert status == 0
    assert json.loads((project / ".cruft.json").read_text())["commit"] == repo.v2


def test_a_recorded_spec_the_rules_refuse_is_reported_with_the_fix(
        repo: Repo, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = record.load(project)
    saved["spec"]["framework"] = "rails"  # e.g. a choice a newer template no longer offers
    (project / record.FILE_NAME).write_text(record.dumps(saved))
    before = tree(project)
    status, out = run(repo, project, capsys)
    assert status == 2 and tree(project) == before
    assert "framework: 'rails'" in out
    assert f"{project / record.FILE_NAME}: 1 problem(s); nothing was written (give a corrected " \
           "spec with --spec)" in out
