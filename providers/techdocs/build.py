"""One TechDocs build, as ``techdocs-cli generate`` does it, run inside a build worker.

- No ``mkdocs.yml``: a default one is used (``site_name`` = the entity's name, ``docs_dir: docs``,
  ``plugins: [techdocs-core]``).
- No ``docs/index.md``: ``docs/README.md`` or the top-level ``README.md`` becomes the home page.
- ``techdocs-core`` is added when the config does not list it.

A repository is untrusted, so MkDocs never reads it directly. Its ``mkdocs.yml`` (and every file
it ``INHERIT``s) is checked first by :mod:`.config_check`: no Python tags, no ``!ENV`` unless
``docs.allow_env``, no ``hooks`` unless ``docs.allow_hooks``, plugins from ``docs.plugins`` only,
and every path inside the repository. The checked config is written into the build's temporary
folder, beside a copy of the docs folder (and ``theme.custom_dir``, and each monorepo include)
in which symlinks are followed only while they stay in the repository; MkDocs builds from there.
Files a page names (snippets, diagram sources, inlined images) are read only from the repository
(symlinks resolved), and the theme's templates run in Jinja's sandbox. The site is built into a fresh folder which the caller moves into the docs
store; nothing is ever written into the repository.

Renderers that need a program this machine lacks (PlantUML, Graphviz) are switched off for the
build, and their diagrams show as source, with a warning: one diagram never costs a team its docs.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config_check import (
    DEFAULT_PLUGINS,
    MAX_CONFIG_BYTES,
    IncludeMarker,
    Policy,
    Relative,
    check_config,
    find_config,
    inside,
)
from .errors import DocsError

__all__ = ["BuildJob", "BuildResult", "build_site", "find_config", "source_files"]

_README_NAMES = ("README.md", "readme.md", "Readme.md")
#: markdown extension -> the program it runs
_NEEDS_PROGRAM = {"plantuml_markdown": "plantuml", "markdown_inline_graphviz": "dot"}
_MAX_MESSAGES = 20
_MAX_ERROR = 4000  # characters of a build's error, and of each warning, that reach the store
_MAX_WARNING = 1000
#: the Markdown extension that keeps what pages read (snippets, diagram sources, inlined images)
#: inside the repository (see read_guard.py)
_READ_GUARD = "callboard.providers.techdocs.read_guard"


@dataclass(frozen=True, slots=True)
class BuildJob:
    source: str  # the docs folder (holds mkdocs.yml, or docs/ or README.md)
    out: str  # where the site goes (must not exist)
    site_name: str
    allow_hooks: bool = False
    shared_assets: str | None = None  # a folder for hard-linked theme assets shared by sites
    root: str | None = None  # the repository the docs may read from (default: the docs folder)
    allow_env: bool = False  # `!ENV` in mkdocs.yml reads the worker's (scrubbed) environment
    plugins: tuple[str, ...] | None = None  # MkDocs plugins a config may name; None: the default list

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BuildJob:
        plugins = data.get("plugins")
        return cls(**{**data, "plugins": tuple(plugins) if plugins is not None else None})


@dataclass(slots=True)
class BuildResult:
    ok: bool
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    pages: int = 0

    def to_json(self) -> dict[str, Any]:
        """What the worker answers: messages cut to a readable length (they quote the repository's
        values, which aliases can make megabytes long; the answer must fit the worker's line)."""
        return {"ok": self.ok, "error": _cut(self.error, _MAX_ERROR) if self.error else self.error,
                "warnings": [_cut(w, _MAX_WARNING) for w in self.warnings], "pages": self.pages}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def _readme(folder: Path) -> Path | None:
    for name in _README_NAMES:
        if (folder / name).is_file():
            return folder / name
    return None


def _regular_inside(path: Path, root: str) -> bool:
    """A regular file whose target (symlinks resolved) lies inside ``root``: never a link out, a
    device or a FIFO, which would leak or hang whoever reads it."""
    try:
        return inside(path, root) and stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _inherited(config: Path, root: str, limit: int = 10) -> list[Path]:
    """The files a config INHERITs (inside ``root``), so that fixing one of them rebuilds the docs."""
    out: list[Path] = []
    current = config
    for _ in range(limit):
        try:
            if current.stat().st_size > MAX_CONFIG_BYTES or b"INHERIT" not in current.read_bytes():
                break
        except OSError:
            break
        parent = _peek_config(current).get("INHERIT")
        if not isinstance(parent, str):
            break
        current = current.parent / parent
        if not _regular_inside(current, root) or current in out:
            break
        out.append(current)
    return out


def source_files(source: Path) -> list[Path]:
    """Every file a build of ``source`` reads: the config, the docs folder, the README fallback
    (files that leave ``source`` are not read: the build leaves them out too)."""
    files: list[Path] = []
    root = os.path.realpath(source)
    config = find_config(source)
    if config is not None and not _regular_inside(config, root):
        config = None
    if config is not None:
        files.append(config)
        files.extend(_inherited(config, root))
    docs_dir = source / _docs_dir_name(config)
    if docs_dir.is_dir() and inside(docs_dir, root):
        for folder, dirs, names in os.walk(docs_dir):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            files.extend(p for p in (Path(folder) / n for n in sorted(names)) if _regular_inside(p, root))
    readme = _readme(source)
    if readme is not None and _regular_inside(readme, root):
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
    except (yaml.YAMLError, UnicodeDecodeError, OSError, RecursionError):
        return {}  # MkDocs reports it properly when it loads the file
    return data if isinstance(data, dict) else {}


def _docs_dir_name(config: Path | None) -> str:
    if config is None:
        return "docs"
    try:
        if config.stat().st_size > MAX_CONFIG_BYTES or b"docs_dir" not in config.read_bytes():
            return "docs"  # the common case, without parsing YAML
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


def _guard_plugin(roots: list[str]) -> Any:
    from mkdocs.plugins import BasePlugin, event_priority

    class CallboardGuard(BasePlugin):
        """Runs after every other plugin's ``on_config``."""

        def __init__(self) -> None:
            super().__init__()
            # underscored: a template may not reach them (the sandbox's own classes make unsandboxed templates)
            self._sandbox: Any = None
            self._files: Any = None
            self.rendering: str | None = None  # the extra or static template being rendered, for messages

        @event_priority(-100)
        def on_config(self, config: Any) -> Any:
            for ext, program in _NEEDS_PROGRAM.items():
                if ext in config["markdown_extensions"] and shutil.which(program) is None:
                    config["markdown_extensions"] = [e for e in config["markdown_extensions"] if e != ext]
                    config["mdx_configs"].pop(ext, None)
                    logging.getLogger("mkdocs.callboard").warning(
                        "%s is not installed here: diagrams of %s show as source", program, ext
                    )
            snippets = config["mdx_configs"].get("pymdownx.snippets")
            if isinstance(snippets, dict):
                snippets["restrict_base_path"] = True
                snippets["url_download"] = False
            # files pages name, symlinks resolved, only from the repository and this build's folders
            config["markdown_extensions"].append(_READ_GUARD)
            config["mdx_configs"][_READ_GUARD] = {"roots": [*roots, str(config["docs_dir"])]}
            return config

        @event_priority(-100)
        def on_env(self, env: Any, config: Any, files: Any) -> Any:
            self._sandbox, self._files = _sandboxed(env), files
            return self._sandbox

        @event_priority(-100)
        def on_pre_template(self, template: Any, template_name: str, config: Any) -> Any:
            """MkDocs compiles ``extra_templates`` with a bare ``jinja2.Template``, outside the
            environment ``on_env`` returned: such a template is compiled again in the sandbox."""
            self.rendering = template_name
            if self._sandbox is not None and template.environment is self._sandbox:
                return template
            file = self._files.get_file_from_path(template_name) if self._files is not None else None
            if self._sandbox is None or file is None:
                raise _security_error()(f"the template {template_name} is not one the build can render in "
                                        "its sandbox")
            return self._sandbox.from_string(file.content_string)

        def on_post_template(self, output_content: str, template_name: str, config: Any) -> str:
            self.rendering = None
            return output_content

    return CallboardGuard()


def _security_error() -> type[Exception]:
    from jinja2.exceptions import SecurityError

    return SecurityError


#: modules whose objects' methods a template may call (str, list, dict, Jinja's own helpers)
_CALLABLE_MODULES = frozenset({"builtins", "jinja2", "markupsafe", "datetime", "collections"})
#: methods a template may call on any other object (MkDocs' config, pages, plugins): reading only
_READ_METHODS = frozenset({"get", "items", "keys", "values"})


def _sandbox_class() -> type[Any]:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Sandbox(ImmutableSandboxedEnvironment):
        """Jinja's sandbox lets a template call every public method of the objects it is given:
        ``config.load_file(text)`` parses text with MkDocs' unsafe YAML loader, a plugin's
        ``on_config`` reads YAML files the same way. Here methods of MkDocs', its plugins' and
        themes' objects are callable only when they read, and no list or mapping may change."""

        def is_safe_callable(self, obj: Any) -> bool:
            if not super().is_safe_callable(obj):
                return False
            if isinstance(obj, type):  # only the classes Jinja offers (namespace, cycler, joiner, dict)
                return any(obj is value for value in self.globals.values())
            owner = getattr(obj, "__self__", None)
            if owner is None or isinstance(owner, type(os)):  # a function, or a builtin like len
                return True
            if type(owner).__module__.partition(".")[0] in _CALLABLE_MODULES:
                return True
            return getattr(obj, "__name__", "") in _READ_METHODS

        def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
            if not self.is_safe_callable(obj):  # named briefly: the object's repr may be a whole config
                name = getattr(obj, "__qualname__", None) or type(obj).__name__
                raise _security_error()(f"{name} may not be called from a template")
            return super().call(context, obj, *args, **kwargs)

    return Sandbox


def _sandboxed(env: Any) -> Any:
    """The theme's Jinja environment as a sandbox: templates from a repository (``theme.custom_dir``,
    ``extra_templates``) must not reach Python through attributes like ``__class__``, nor through
    methods of MkDocs' objects (see :func:`_sandbox_class`)."""
    sandbox = _sandbox_class()(loader=env.loader, auto_reload=False, autoescape=env.autoescape,
                               extensions=list(env.extensions))
    sandbox.filters.update(env.filters)
    sandbox.tests.update(env.tests)
    sandbox.policies.update(env.policies)
    for name, value in env.globals.items():
        if name != "range":  # the sandbox's own, bounded range
            sandbox.globals[name] = value
    for attr in ("newstyle_gettext",):
        if hasattr(env, attr):
            setattr(sandbox, attr, getattr(env, attr))
    return sandbox


def _copy_tree(src: Path, dest: Path, root: str, warnings: list[str], label: str,
               seen: frozenset[str] = frozenset()) -> None:
    """Copy a folder of the repository for MkDocs: symlinks are followed only while they stay in
    the repository (a link out, a device or a FIFO is left out, with a warning)."""
    dest.mkdir(parents=True, exist_ok=True)
    with os.scandir(src) as listing:
        entries = sorted(listing, key=lambda e: e.name)
    for entry in entries:
        shown = f"{label}/{entry.name}"
        real = os.path.realpath(entry.path)
        if not inside(real, root):
            _warn(warnings, f"{shown} links outside the repository: left out of the docs.")
            continue
        try:
            mode = os.stat(real).st_mode
        except OSError:
            _warn(warnings, f"{shown} is a broken link: left out of the docs.")
            continue
        if stat.S_ISDIR(mode):
            if real in seen:
                _warn(warnings, f"{shown} links to a folder that contains it: left out of the docs.")
                continue
            _copy_tree(Path(real), dest / entry.name, root, warnings, shown, seen | {real})
        elif stat.S_ISREG(mode):
            shutil.copyfile(real, dest / entry.name)
        else:
            _warn(warnings, f"{shown} is not a regular file: left out of the docs.")


def _read_only(folder: Path) -> None:
    """The build's copy of the docs is read-only to MkDocs and its plugins (files; folders stay
    writable so the temporary folder can always be removed)."""
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with contextlib.suppress(OSError):
                path.chmod(0o444)


def _warn(warnings: list[str], message: str) -> None:
    if len(warnings) < _MAX_MESSAGES:
        warnings.append(f"WARNING: {message}")


def _readme_inside(folder: Path, root: str) -> Path | None:
    readme = _readme(folder) if folder.is_dir() else None
    return readme if readme is not None and inside(readme, root) and Path(os.path.realpath(readme)).is_file() else None


def _stage_docs(source: Path, docs_dir: Path, staged: Path, root: str, warnings: list[str]) -> Path | None:
    """The build's copy of the docs folder, with the README as home page when there is no
    ``index.md`` (as techdocs-cli does); None when there is nothing to build."""
    if docs_dir.is_dir():
        _copy_tree(docs_dir, staged, root, warnings, docs_dir.name)
    if (staged / "index.md").is_file():
        return staged
    readme = _readme_inside(docs_dir, root) or _readme_inside(source, root)
    if readme is None:
        return staged if staged.is_dir() and any(staged.rglob("*.md")) else None
    staged.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(os.path.realpath(readme), staged / "index.md")
    return staged


def _fill(value: Any, includes: list[str]) -> Any:
    """The checked config with each monorepo include pointing at its checked copy."""
    if isinstance(value, IncludeMarker):
        return f"!include {includes[value.index]}"
    if isinstance(value, dict):
        return {k: _fill(v, includes) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, includes) for v in value]
    return value


class _Dumper(yaml.SafeDumper):
    """Plain YAML, plus MkDocs' ``!relative`` for the values MkDocs resolves itself."""


_Dumper.add_representer(Relative, lambda dumper, rel: dumper.represent_scalar("!relative", rel.value))
_Dumper.add_representer(tuple, lambda dumper, items: dumper.represent_list(list(items)))


def _write_config(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _prepare(job: BuildJob, source: Path, root: str, stage: Path, warnings: list[str]) -> Path | DocsError:
    """The checked config written into ``stage`` with the build's copies of every folder it
    names; why not when the repository's config is refused or there is nothing to build."""
    policy = Policy(root=Path(root), allow_hooks=job.allow_hooks, allow_env=job.allow_env,
                    plugins=tuple(job.plugins) if job.plugins is not None else DEFAULT_PLUGINS,
                    environ=dict(os.environ))
    checked = check_config(source, policy, default_site_name=job.site_name)
    if isinstance(checked, DocsError):
        return checked
    warnings.extend(f"WARNING: {w}" for w in checked.warnings)
    docs = _stage_docs(source, checked.docs_dir, stage / "docs", root, warnings)
    if docs is None:
        return DocsError(message=f"Nothing to build in {source}: no {checked.docs_dir.name}/index.md and no README.md.")
    data = dict(checked.data)
    data["docs_dir"] = str(docs)
    if checked.custom_dir is not None:
        theme = dict(data["theme"])
        theme["custom_dir"] = str(stage / "theme")
        _copy_tree(checked.custom_dir, stage / "theme", root, warnings, "theme.custom_dir")
        data["theme"] = theme
    included: list[str] = []
    for i, site in enumerate(checked.includes):
        folder = stage / f"include-{i}"
        if site.docs_dir.is_dir():
            _copy_tree(site.docs_dir, folder / "docs", root, warnings, site.docs_dir.name)
        else:
            (folder / "docs").mkdir(parents=True)
        sub: dict[str, Any] = {"site_name": site.site_name, "docs_dir": str(folder / "docs")}
        if site.nav is not None:
            sub["nav"] = site.nav
        _write_config(folder / "mkdocs.yml", sub)
        included.append(str(folder / "mkdocs.yml"))
    _read_only(stage)
    config = stage / "mkdocs.yml"
    _write_config(config, _fill(data, included))
    return config


def build_site(job: BuildJob) -> BuildResult:
    """Build one site; every expected failure comes back as a result, with MkDocs' own words."""
    from mkdocs import exceptions as mkdocs_exceptions
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    source = Path(job.source)
    if not source.is_dir():
        return BuildResult(False, f"The docs folder {source} does not exist.")
    root = os.path.realpath(job.root or job.source)
    if not inside(source, root):
        return BuildResult(False, f"The docs folder {source} is outside its repository {root}.")
    collector = _Collect()
    mkdocs_log = logging.getLogger("mkdocs")
    mkdocs_log.addHandler(collector)
    previous_level = mkdocs_log.level
    mkdocs_log.setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="callboard-docs-") as tmp:
        stage = Path(tmp)
        guard: Any = None
        try:
            prepared = _prepare(job, source, root, stage, collector.messages)
            if isinstance(prepared, DocsError):
                return BuildResult(False, str(prepared), warnings=collector.messages)
            config = load_config(str(prepared), site_dir=job.out)
            if "techdocs-core" not in config.plugins:
                from techdocs_core.core import TechDocsCore

                core = TechDocsCore()
                core.load_config({})
                config.plugins["techdocs-core"] = core
            guard = config.plugins["callboard-guard"] = _guard_plugin([root, str(stage)])
            build(config)
        except mkdocs_exceptions.MkDocsException as exc:
            return BuildResult(False, _message(exc, collector), warnings=collector.messages)
        except UnicodeDecodeError as exc:
            said = "; ".join(m.split(": ", 1)[-1] for m in collector.messages if m.startswith("ERROR"))
            return BuildResult(False, f"A page is not valid UTF-8 ({said or exc.reason}): {exc}",
                               warnings=collector.messages)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            return BuildResult(False, f"{type(exc).__name__}: {exc}", warnings=collector.messages)
        except _security_error() as exc:
            which = f"The template {guard.rendering}" if guard is not None and guard.rendering else "A template"
            return BuildResult(False, f"{which} (theme.custom_dir or extra_templates) reached for Python, "
                                      f"which the template sandbox refuses: {exc}", warnings=collector.messages)
        except SystemExit:  # the monorepo plugin exits on a bad include; it said why in the log
            said = "; ".join(m for m in collector.messages if m.startswith(("ERROR", "CRITICAL")))
            return BuildResult(False, f"MkDocs stopped: {said or 'a plugin exited'}", warnings=collector.messages)
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
