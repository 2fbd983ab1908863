"""A repository's ``mkdocs.yml`` is untrusted: what a hostile one asks for is refused for that
entity alone, nothing in it runs, and nothing outside the repository reaches a built site.

Every case goes through the real build path: ``Callboard.sync`` over a catalog folder in
``tmp_path``, then ``sync_docs()``, which builds with real MkDocs (techdocs-core) in the real
build workers. Each component below is its own repository (a ``.git`` folder marks it); a
secret is written beside the repositories, another one is set in the server's environment, and
neither may ever show up in the docs store. Payloads that would run create a marker file; the
test asserts the marker does not exist.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from callboard.bot.app import Callboard
from callboard.bot.config import Settings
from callboard.bot.shell.render import render_text
from callboard.commands.api import Status
from callboard.commands.dispatch import CommandRegistry

from ..catalog.test_bad_input import TEAM

OUTSIDE_SECRET = "OUTSIDE-SECRET-read-from-beside-the-repository"
ENV_SECRET = "xoxb-ENV-SECRET-from-the-server-environment"


COMPONENT = """apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: {name}
  annotations:
    backstage.io/techdocs-ref: dir:.
spec:
  type: service
  lifecycle: production
  owner: team-a
"""
INDEX = {"docs/index.md": "# Home\n\nHello.\n"}


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def repository(root: Path, name: str, files: dict[str, str], links: dict[str, str] | None = None) -> Path:
    """A component in its own repository: ``catalog-info.yaml``, the files, and symlinks
    (path -> target, as written in the link)."""
    folder = root / name
    (folder / ".git").mkdir(parents=True)
    write(folder / "catalog-info.yaml", COMPONENT.format(name=name))
    for path, text in files.items():
        write(folder / path, text)
    for path, target in (links or {}).items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).symlink_to(target)
    return folder


def catalog(tmp_path: Path) -> Path:
    """The catalog root, with a secret beside the repositories (outside every one of them)."""
    root = tmp_path / "catalog"
    write(root / "org" / "catalog-info.yaml", TEAM)
    write(root / "outside.env", f"SLACK_BOT_TOKEN={OUTSIDE_SECRET}\n")
    write(root / "outside.png", OUTSIDE_SECRET)
    write(root / "outside-docs" / "index.md", f"# Outside\n\n{OUTSIDE_SECRET}\n")
    write(root / "outside-theme" / "main.html", f"{OUTSIDE_SECRET}{{{{ super() }}}}")
    write(root / "shared" / "base.yml", "site_name: shared\n")
    return root


async def open_app(tmp_path: Path, **settings: Any) -> Callboard:
    return await Callboard.open(
        Settings(database_url=f"sqlite:///{tmp_path / 'cb.db'}", data_dir=str(tmp_path / "data"),
                 docs_workers=2, **settings),
        CommandRegistry.from_entry_points(),
        resident=True,
    )


def store_bytes(app: Callboard) -> bytes:
    """Every byte of the docs store: the built sites, their search indexes, the section index."""
    return b"".join(p.read_bytes() for p in sorted(app.docs.store.rglob("*")) if p.is_file() and not p.is_symlink())


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    """What a folder holds (path -> size, mtime): to show a build never writes into a repository."""
    out = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        out[str(path.relative_to(folder))] = (st.st_size, st.st_mtime_ns)
    return out


def pytag(marker: Path) -> str:
    return f'!!python/object/apply:os.system ["touch {marker}"]'


async def test_hostile_configs_are_refused_and_nothing_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLBOARD_TEST_SECRET", ENV_SECRET)
    markers = tmp_path / "markers"
    markers.mkdir()
    root = catalog(tmp_path)
    repository(root, "good", {"mkdocs.yml": "site_name: Good\n", **INDEX})
    repository(root, "pytag", {"mkdocs.yml": f"site_name: x\nextra:\n  boom: {pytag(markers / 'pytag')}\n", **INDEX})
    repository(root, "pyname", {"mkdocs.yml": (
        "site_name: x\nmarkdown_extensions:\n  - pymdownx.superfences:\n      custom_fences:\n"
        "        - name: mermaid\n          format: !!python/name:pymdownx.superfences.fence_code_format\n"), **INDEX})
    repository(root, "pytag-inherit", {"mkdocs.yml": "INHERIT: config/base.yml\nsite_name: x\n",
                                       "config/base.yml": f"theme: material\nextra:\n  boom: {pytag(markers / 'inherit')}\n",
                                       **INDEX})
    repository(root, "env", {"mkdocs.yml": "site_name: !ENV [CALLBOARD_TEST_SECRET, fallback]\n", **INDEX})
    repository(root, "hooks-inherit", {"mkdocs.yml": "INHERIT: base.yml\nsite_name: x\n",
                                       "base.yml": "hooks:\n  - hook.py\n",
                                       "hook.py": f"open({str(markers / 'hook')!r}, 'w').close()\n", **INDEX})
    repository(root, "inherit-outside", {"mkdocs.yml": "INHERIT: ../shared/base.yml\n", **INDEX})
    repository(root, "inherit-cycle", {"mkdocs.yml": "INHERIT: a.yml\nsite_name: x\n", "a.yml": "INHERIT: b.yml\n",
                                       "b.yml": "INHERIT: a.yml\n", **INDEX})
    repository(root, "docs-dir", {"mkdocs.yml": "site_name: x\ndocs_dir: ../outside-docs\n", **INDEX})
    repository(root, "site-dir", {"mkdocs.yml": "site_name: x\nsite_dir: ../../elsewhere\n", **INDEX})
    repository(root, "custom-dir", {"mkdocs.yml": "site_name: x\ntheme:\n  name: material\n  custom_dir: ../outside-theme\n",
                                    **INDEX})
    repository(root, "snippets-base", {"mkdocs.yml": (
        "site_name: x\nmarkdown_extensions:\n  - pymdownx.snippets:\n      base_path: ['.', '..']\n"),
        "docs/index.md": '# Home\n\n--8<-- "outside.env"\n'})
    repository(root, "plugin", {"mkdocs.yml": "site_name: x\nplugins:\n  - techdocs-core\n  - redirects\n", **INDEX})
    repository(root, "extension", {"mkdocs.yml": (
        "site_name: x\nmarkdown_extensions:\n  - subprocess:Popen:\n"
        f"      args: [touch, {markers / 'extension'}]\n"), **INDEX})
    repository(root, "monorepo-include", {
        "mkdocs.yml": "site_name: x\nnav:\n  - Home: index.md\n  - Sub: '!include sub/mkdocs.yml'\n",
        "sub/mkdocs.yml": f"site_name: sub\nextra:\n  boom: {pytag(markers / 'include')}\n",
        "sub/docs/index.md": "# Sub\n", **INDEX})
    repository(root, "template", {
        "mkdocs.yml": "site_name: x\ntheme:\n  name: material\n  custom_dir: overrides\n",
        "overrides/main.html": ('{% extends "base.html" %}{% block content %}'
                                f"{{{{ cycler.__init__.__globals__.os.system('touch {markers / 'template'}') }}}}"
                                "{% endblock %}"), **INDEX})
    repository(root, "relative", {"mkdocs.yml": ("site_name: x\nmarkdown_extensions:\n  - pymdownx.snippets:\n"
                                                  "      base_path: !relative $config_dir/..\n"), **INDEX})
    repository(root, "inherit-link", {"mkdocs.yml": "INHERIT: base.yml\nsite_name: x\n", **INDEX},
               links={"base.yml": "../shared/base.yml"})
    repository(root, "docs-link", {"mkdocs.yml": "site_name: x\n"}, links={"docs": "../outside-docs"})
    repository(root, "config-link", INDEX, links={"mkdocs.yml": "../shared/base.yml"})
    aliases = "".join(f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 7))
    repository(root, "aliases", {"mkdocs.yml": f"site_name: x\nextra:\n  l0: &l0 [a, b, c]\n{aliases}", **INDEX})
    app = await open_app(tmp_path)
    try:
        assert not (await app.sync((str(root),))).errors
        docs = await app.sync_docs()
        errors = dict(docs.errors)

        def error(name: str, *parts: str) -> None:
            message = errors.get(f"component:default/{name}")
            assert message is not None, (name, errors)
            for part in parts:
                assert part in message, (name, part, message)

        assert docs.built == 1 and app.docs.site_dir("component:default/good").is_dir(), errors  # one bad repo stops no other
        error("pytag", "mkdocs.yml", "line 3", "!!python/object/apply:os.system", "Python")
        error("pyname", "mkdocs.yml", "line 6", "!!python/name:pymdownx.superfences.fence_code_format")
        error("pytag-inherit", "config/base.yml", "line 3", "!!python/object/apply:os.system")
        error("env", "mkdocs.yml", "line 1", "!ENV", "docs.allow_env")
        error("hooks-inherit", "base.yml", "hooks", "docs.allow_hooks")
        error("inherit-outside", "mkdocs.yml", "line 1", "INHERIT", "../shared/base.yml", "outside the repository")
        error("inherit-cycle", "INHERIT", "a.yml", "cycle")
        error("docs-dir", "mkdocs.yml", "line 2", "docs_dir", "outside the repository")
        error("site-dir", "mkdocs.yml", "line 2", "site_dir", "outside the repository")
        error("custom-dir", "mkdocs.yml", "line 4", "theme.custom_dir", "outside the repository")
        error("snippets-base", "mkdocs.yml", "line 4", "base_path", "..", "outside the repository")
        error("plugin", "mkdocs.yml", "line 4", '"redirects"', "docs.plugins")
        error("extension", "mkdocs.yml", "line 3", "subprocess:Popen", "markdown_extensions")
        error("monorepo-include", "sub/mkdocs.yml", "line 3", "!!python/object/apply:os.system")
        error("template", "sandbox", "__init__")
        error("aliases", "mkdocs.yml", "100000 values", "aliases")
        error("relative", "mkdocs.yml", "line 4", "!relative", "outside the repository")
        error("inherit-link", "mkdocs.yml", "line 1", "INHERIT", "outside the repository")
        error("config-link", "mkdocs.yml", "outside the repository")
        error("docs-link", "mkdocs.yml", "docs_dir docs", "outside the repository")
        assert docs.failed == 20

        assert sorted(p.name for p in markers.iterdir()) == []  # nothing ran
        stored = store_bytes(app)
        assert OUTSIDE_SECRET.encode() not in stored and ENV_SECRET.encode() not in stored
        assert all(OUTSIDE_SECRET not in m and ENV_SECRET not in m for m in errors.values())

        # the refusal is what every answer about those docs shows
        reply = await app.ask("docs env")
        assert reply.status is Status.ERROR and "docs.allow_env" in render_text(reply)
    finally:
        await app.close()


async def test_outside_files_never_reach_the_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Snippet includes and symlinks that leave the repository are left out; the build itself goes on."""
    root = catalog(tmp_path)
    snippet = repository(
        root, "snippet",
        {"mkdocs.yml": "site_name: snippet\nmarkdown_extensions:\n  - pymdownx.b64\n", "inside.md": "inside-snippet-text\n",
         "docs/index.md": ('# Snippets\n\n--8<-- "inside.md"\n\n--8<-- "../outside.env"\n\n'
                           '--8<-- "linked.env"\n\n--8<-- "/etc/hostname"\n\n<img src="leak.png">\n')},
        links={"linked.env": "../outside.env", "leak.png": "../outside.png"},
    )
    repository(root, "strict", {"mkdocs.yml": ("site_name: strict\nmarkdown_extensions:\n  - pymdownx.snippets:\n"
                                                "      check_paths: true\n"),
                                "docs/index.md": '# Strict\n\n--8<-- "../outside.env"\n'})
    linked = repository(
        root, "linked",
        {"mkdocs.yml": "site_name: linked\n", "NOTES.md": "# Notes\n\nnotes-inside-content\n",
         "docs/index.md": "# Linked\n\n[secret](secret.md) and [notes](notes.md)\n"},
        links={"docs/secret.md": "../../outside.env", "docs/notes.md": "../NOTES.md",
               "docs/outside": "../../outside-docs"},
    )
    # techdocs-cli runs MkDocs in the docs folder; Callboard's workers run in an empty one
    monkeypatch.chdir(snippet)
    before = {p: tree(p) for p in (snippet, linked)}
    app = await open_app(tmp_path)
    try:
        assert not (await app.sync((str(root),))).errors
        docs = await app.sync_docs()
        errors = dict(docs.errors)
        assert docs.built == 2, errors
        assert "outside.env" in errors["component:default/strict"]
        stored = store_bytes(app)
        assert OUTSIDE_SECRET.encode() not in stored
        assert base64.b64encode(OUTSIDE_SECRET.encode()) not in stored  # an inlined image (pymdownx.b64)
        assert b"inside-snippet-text" in stored and b"notes-inside-content" in stored  # inside the repo: fine
        assert {p: tree(p) for p in (snippet, linked)} == before  # the builds wrote nothing into the repositories
        state = await app.docs.state("component:default/linked")
        assert state is not None and state.status == "ok"
    finally:
        await app.close()


async def test_inherit_inside_and_allowed_plugins_build(tmp_path: Path) -> None:
    root = catalog(tmp_path)
    folder = repository(root, "fine", {
        "mkdocs.yml": ("INHERIT: config/base.yml\nsite_name: Fine\nnav:\n  - Home: index.md\n"
                       "  - Sub: '!include sub/mkdocs.yml'\n"),
        "config/base.yml": ("plugins:\n  - techdocs-core\n  - search\n  - redirects:\n      redirect_maps:\n"
                            "        old.md: index.md\n"
                            "markdown_extensions:\n  - attr_list\n  - pymdownx.snippets:\n"
                            "      base_path: !relative $config_dir/snippets\n      check_paths: true\n"),
        "snippets/inc.md": "included-snippet-text\n",
        "docs/index.md": '# Fine\n\n--8<-- "inc.md"\n',
        "sub/mkdocs.yml": "site_name: sub\nnav:\n  - Sub: index.md\n",
        "sub/docs/index.md": "# Sub\n\nsub-page-content\n",
    })
    repository(root, "escaping-redirect", {
        "mkdocs.yml": ("site_name: x\nplugins:\n  - redirects:\n      redirect_maps:\n"
                       f"        '../../../../../../../../{tmp_path.relative_to('/')}/written.md': index.md\n"),
        **INDEX})
    before = tree(folder)
    plugins = ("techdocs-core", "search", "monorepo", "gh-admonitions", "redirects")
    app = await open_app(tmp_path, docs_plugins=plugins)
    try:
        assert not (await app.sync((str(root),))).errors
        docs = await app.sync_docs()
        assert (docs.built, docs.failed) == (1, 1), docs.errors
        assert "redirect_maps" in dict(docs.errors)["component:default/escaping-redirect"]
        assert not list(tmp_path.glob("written*"))  # an allowed plugin still writes only into the site
        site = app.docs.site_dir("component:default/fine")
        index = (site / "search" / "search_index.json").read_text(encoding="utf-8")
        assert "included-snippet-text" in index and "sub-page-content" in index
        assert (site / "old" / "index.html").is_file()  # the allowed plugin ran
        assert tree(folder) == before
    finally:
        await app.close()


async def test_allowed_env_reads_a_scrubbed_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", ENV_SECRET)
    root = catalog(tmp_path)
    repository(root, "env", {"mkdocs.yml": "site_name: !ENV [SLACK_BOT_TOKEN, scrubbed]\n", **INDEX})
    app = await open_app(tmp_path, docs_allow_env=True)
    try:
        assert not (await app.sync((str(root),))).errors
        docs = await app.sync_docs()
        assert (docs.built, docs.failed) == (1, 0), docs.errors
        site = app.docs.site_dir("component:default/env")
        assert json.loads((site / "techdocs_metadata.json").read_text(encoding="utf-8"))["site_name"] == "scrubbed"
        assert ENV_SECRET.encode() not in store_bytes(app)
    finally:
        await app.close()


async def test_workers_run_scrubbed_in_an_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hook (allowed here by the operator) reports what a build can see of the server."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", ENV_SECRET)
    monkeypatch.setenv("CALLBOARD_DATABASE_URL", f"postgresql://callboard:{ENV_SECRET}@db/callboard")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "nowhere"))
    report = tmp_path / "report.json"
    root = catalog(tmp_path)
    folder = repository(root, "probe", {
        "mkdocs.yml": "site_name: probe\nhooks:\n  - probe.py\n",
        "probe.py": ("import json, os\n\n\ndef on_config(config):\n"
                     f"    with open({str(report)!r}, 'w') as out:\n"
                     "        json.dump({'env': dict(os.environ), 'cwd': os.getcwd(), 'listing': os.listdir('.')}, out)\n"),
        **INDEX,
    })
    monkeypatch.chdir(folder)
    app = await open_app(tmp_path, docs_allow_hooks=True)
    try:
        assert not (await app.sync((str(root),))).errors
        docs = await app.sync_docs()
        assert (docs.built, docs.failed) == (1, 0), docs.errors
    finally:
        await app.close()
    seen = json.loads(report.read_text(encoding="utf-8"))
    assert ENV_SECRET not in json.dumps(seen)
    env = seen["env"]
    assert "SLACK_BOT_TOKEN" not in env and "CALLBOARD_DATABASE_URL" not in env and "PYTHONPATH" not in env
    allowed = {"PATH", "LANG", "LANGUAGE", "TZ", "HOME", "TMPDIR", "TEMP", "TMP", "SOURCE_DATE_EPOCH",
               "LD_LIBRARY_PATH", "PLANTUML_SECURITY_PROFILE", "SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "PATHEXT", "COMSPEC", "USERPROFILE"}
    assert {k for k in env if not k.startswith("LC_")} <= allowed, sorted(env)
    assert env.get("HOME") and env["HOME"] != os.environ.get("HOME")
    cwd = Path(seen["cwd"])
    assert seen["listing"] == [] and cwd != folder and folder not in cwd.parents
    assert not cwd.exists()  # the worker's folder went with the worker


async def test_fixing_an_inherited_file_rebuilds(tmp_path: Path) -> None:
    """A refused build is retried when any file of its INHERIT chain changes, not only mkdocs.yml."""
    root = catalog(tmp_path)
    folder = repository(root, "svc", {"mkdocs.yml": "INHERIT: base.yml\nsite_name: svc\n",
                                      "base.yml": "hooks:\n  - hook.py\n", "hook.py": "X = 1\n", **INDEX})
    app = await open_app(tmp_path)
    try:
        assert not (await app.sync((str(root),))).errors
        first = await app.sync_docs()
        assert first.failed == 1 and "base.yml, line 1" in dict(first.errors)["component:default/svc"]
        write(folder / "base.yml", "theme: material\n")
        second = await app.sync_docs()
        assert (second.built, second.failed) == (1, 0), second.errors
    finally:
        await app.close()


def test_worker_environment_is_an_allow_list(tmp_path: Path) -> None:
    """A secret under a name nobody thought of stays out: the environment is built, not filtered."""
    from callboard.providers.techdocs.worker import worker_env

    server = {"PATH": "/usr/bin", "LC_ALL": "C.UTF-8", "TZ": "UTC", "HOME": "/root", "ACME_DEPLOY_KEY": "k",
              "CALLBOARD_SLACK_BOT_TOKEN": "t", "PYTHONPATH": "/src", "AWS_SECRET_ACCESS_KEY": "s",
              "HTTPS_PROXY": "http://user:pass@proxy:3128"}
    env = worker_env(server, tmp_path / "home", tmp_path / "tmp")
    assert {k: v for k, v in env.items() if k not in ("USERPROFILE",)} == {
        "PATH": "/usr/bin", "LC_ALL": "C.UTF-8", "TZ": "UTC", "HOME": str(tmp_path / "home"),
        "TMPDIR": str(tmp_path / "tmp"), "TEMP": str(tmp_path / "tmp"), "TMP": str(tmp_path / "tmp"),
        "PLANTUML_SECURITY_PROFILE": "SANDBOX"}
