"""One TechDocs build, as ``techdocs-cli generate`` does it, run inside a build worker.

- No ``mkdocs.yml``: a default one is used (``site_name`` = the entity's name, ``docs_dir: docs``,
  ``plugins: [techdocs-core]``).
- No ``docs/index.md``: ``docs/README.md`` or the top-level ``README.md`` becomes the home page.
- ``techdocs-core`` is added when the config does not list it.

The source folder is never written to: when a page has to be added, the docs are staged in
a temporary folder and MkDocs is pointed at it (``docs_dir`` override). The site is built
into a fresh folder which the caller moves into the docs store.

MkDocs ``hooks`` run Python from the repository being built, so a config with ``hooks`` is
refused unless the operator allows them (``docs.allow_hooks``). Renderers that need a
program this machine lacks (PlantUML, Graphviz) are switched off for the build, and their
diagrams show as source, with a warning: one diagram never costs a team its docs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["BuildJob", "BuildResult", "build_site", "find_config", "source_files"]

CONFIG_NAMES = ("mkdocs.yml", "mkdocs.yaml")
_README_NAMES = ("README.md", "readme.md", "Readme.md")
#: markdown extension -> the program it runs
_NEEDS_PROGRAM = {"plantuml_markdown": "plantuml", "markdown_inline_graphviz": "dot"}
_MAX_MESSAGES = 20


@dataclass(frozen=True, slots=True)
class BuildJob:
    source: str  # the docs folder (holds mkdocs.yml, or docs/ or README.md)
    out: str  # where the site goes (must not exist)
    site_name: str
    allow_hooks: bool = False
    shared_assets: str | None = None  # a folder for hard-linked theme assets shared by sites


@dataclass(slots=True)
class BuildResult:
    ok: bool
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    pages: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "error": self.error, "warnings": self.warnings, "pages": self.pages}


def find_config(source: Path) -> Path | None:
    for name in CONFIG_NAMES:
        if (source / name).is_file():
            return source / name
    return None


def _readme(folder: Path) -> Path | None:
    for name in _README_NAMES:
        if (folder / name).is_file():
            return folder / name
    return None


def source_files(source: Path) -> list[Path]:
    """Every file a build of ``source`` reads: the config, the docs folder, the README fallback."""
    files: list[Path] = []
    config = find_config(source)
    if config is not None:
        files.append(config)
    docs_dir = source / _docs_dir_name(config)
    if docs_dir.is_dir():
        for root, dirs, names in os.walk(docs_dir):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            files.extend(Path(root) / n for n in sorted(names))
    readme = _readme(source)
    if readme is not None:
        files.append(readme)
    return files


class _LenientLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Reads a mkdocs.yml without running anything: MkDocs' own tags (``!ENV``,
    ``!!python/name:``) come back as plain values."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_LenientLoader.add_multi_constructor("!", _any_tag)
_LenientLoader.add_multi_constructor("tag:yaml.org,2002:python/", _any_tag)


def _peek_config(config: Path | None) -> dict[str, Any]:
    if config is None:
        return {}
    try:
        data = yaml.load(config.read_text(encoding="utf-8"), Loader=_LenientLoader)  # noqa: S506 - SafeLoader subclass
    except (yaml.YAMLError, UnicodeDecodeError):
        return {}  # MkDocs reports it properly when it loads the file
    return data if isinstance(data, dict) else {}


def _docs_dir_name(config: Path | None) -> str:
    if config is None:
        return "docs"
    try:
        if b"docs_dir" not in config.read_bytes():  # the common case, without parsing YAML
            return "docs"
    except OSError:
        return "docs"
    value = _peek_config(config).get("docs_dir", "docs")
    return value if isinstance(value, str) and value else "docs"


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.messages) < _MAX_MESSAGES:
            self.messages.append(f"{record.levelname}: {record.getMessage()}")


def _guard_plugin() -> Any:
    from mkdocs.plugins import BasePlugin, event_priority

    class CallboardGuard(BasePlugin):  # type: ignore[type-arg]
        """Runs after every other plugin's ``on_config``."""

        @event_priority(-100)
        def on_config(self, config: Any) -> Any:
            for ext, program in _NEEDS_PROGRAM.items():
                if ext in config["markdown_extensions"] and shutil.which(program) is None:
                    config["markdown_extensions"] = [e for e in config["markdown_extensions"] if e != ext]
                    config["mdx_configs"].pop(ext, None)
                    logging.getLogger("mkdocs.callboard").warning(
                        "%s is not installed here: diagrams of %s show as source", program, ext
                    )
            return config

    return CallboardGuard()


def _stage_docs(source: Path, docs_dir: Path, stage: Path) -> Path | None:
    """A docs folder with an ``index.md``: the original when it has one, else a staged copy
    with the README as home page; None when there is nothing to build."""
    if (docs_dir / "index.md").is_file():
        return docs_dir
    readme = _readme(docs_dir) if docs_dir.is_dir() else None
    readme = readme or _readme(source)
    if readme is None:
        return docs_dir if docs_dir.is_dir() and any(docs_dir.rglob("*.md")) else None
    staged = stage / "docs"
    if docs_dir.is_dir():
        shutil.copytree(docs_dir, staged, symlinks=False)
    else:
        staged.mkdir(parents=True)
    shutil.copyfile(readme, staged / "index.md")
    return staged


def build_site(job: BuildJob) -> BuildResult:
    """Build one site; every expected failure comes back as a result, with MkDocs' own words."""
    from mkdocs import exceptions as mkdocs_exceptions
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    source = Path(job.source)
    if not source.is_dir():
        return BuildResult(False, f"The docs folder {source} does not exist.")
    config_path = find_config(source)
    peek = _peek_config(config_path)
    if peek.get("hooks") and not job.allow_hooks:
        return BuildResult(
            False,
            f"{config_path.name if config_path else 'mkdocs.yml'} declares hooks, which run Python from the "
            "repository; Callboard does not run them unless docs.allow_hooks is true in callboard.yaml.",
        )
    collector = _Collect()
    mkdocs_log = logging.getLogger("mkdocs")
    mkdocs_log.addHandler(collector)
    previous_level = mkdocs_log.level
    mkdocs_log.setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="callboard-docs-") as tmp:
        stage = Path(tmp)
        try:
            docs_dir = source / _docs_dir_name(config_path)
            staged = _stage_docs(source, docs_dir, stage)
            if staged is None:
                return BuildResult(
                    False, f"Nothing to build in {source}: no {docs_dir.name}/index.md and no README.md."
                )
            overrides: dict[str, Any] = {"site_dir": job.out, "docs_dir": str(staged)}
            if config_path is None:
                config_path = stage / "mkdocs.yml"
                config_path.write_text(
                    yaml.safe_dump({"site_name": job.site_name, "plugins": ["techdocs-core"]}), encoding="utf-8"
                )
            config = load_config(str(config_path), **overrides)
            if "techdocs-core" not in config.plugins:
                from techdocs_core.core import TechDocsCore

                core = TechDocsCore()
                core.load_config({})
                config.plugins["techdocs-core"] = core
            config.plugins["callboard-guard"] = _guard_plugin()
            build(config)
        except mkdocs_exceptions.MkDocsException as exc:
            return BuildResult(False, _message(exc, collector), warnings=collector.messages)
        except UnicodeDecodeError as exc:
            said = "; ".join(m.split(": ", 1)[-1] for m in collector.messages if m.startswith("ERROR"))
            return BuildResult(False, f"A page is not valid UTF-8 ({said or exc.reason}): {exc}",
                               warnings=collector.messages)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            return BuildResult(False, f"{type(exc).__name__}: {exc}", warnings=collector.messages)
        except Exception as exc:  # noqa: BLE001 - a plugin's bug is the docs' failure, not the worker's
            return BuildResult(False, f"MkDocs failed: {type(exc).__name__}: {exc}", warnings=collector.messages)
        finally:
            mkdocs_log.removeHandler(collector)
            mkdocs_log.setLevel(previous_level)
    pages = sum(1 for _ in Path(job.out).rglob("index.html"))
    if job.shared_assets:
        _share_assets(Path(job.out), Path(job.shared_assets))
    return BuildResult(True, warnings=collector.messages, pages=pages)


def _message(exc: Exception, collector: _Collect) -> str:
    text = str(exc).strip() or type(exc).__name__
    errors = [m for m in collector.messages if m.startswith("ERROR")]
    if errors and ("Aborted" in text or not text):
        text = "; ".join(errors)
    return text


def _share_assets(site: Path, shared: Path) -> None:
    """Replace the theme's asset files with hard links into one content-addressed folder:
    thousands of sites then cost one copy of Material's assets."""
    assets = site / "assets"
    if not assets.is_dir():
        return
    shared.mkdir(parents=True, exist_ok=True)
    for path in assets.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        target = shared / digest[:2] / digest
        try:
            if not target.exists():
                target.parent.mkdir(exist_ok=True)
                os.link(path, target)
            else:
                tmp = path.with_name(path.name + ".link")
                os.link(target, tmp)
                os.replace(tmp, path)
        except OSError:
            continue  # another file system, or no hard links: keep the copy
