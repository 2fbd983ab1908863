"""Reading a repository's ``mkdocs.yml`` without running it, before MkDocs sees it.

MkDocs reads its config with PyYAML's full loader, so a repository's ``mkdocs.yml`` could run
Python (``!!python/object/apply:os.system``), read the server's environment (``!ENV``), pull in
files from anywhere (``INHERIT``, ``docs_dir``, ``theme.custom_dir``, snippet ``base_path``) and
load any installed Python class as a Markdown extension (``subprocess:Popen``). So MkDocs never
reads the repository's file as it is: :func:`check_config` parses it (and every file it
``INHERIT``s) with a loader that refuses every Python tag, merges ``INHERIT`` as MkDocs would,
checks every path against the repository after resolving symlinks, checks plugins and Markdown
extensions against allow-lists, and returns plain data with absolute paths. The build writes that
data into its temporary folder and hands MkDocs the copy.

Every refusal is a :class:`DocsError` value naming the file (relative to the repository), the line
when known, what was wrong and what to do.
"""

from __future__ import annotations

import functools
import importlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from .errors import DocsError

__all__ = [
    "DEFAULT_PLUGINS",
    "Checked",
    "IncludeMarker",
    "IncludedSite",
    "Policy",
    "Relative",
    "check_config",
    "inside",
]

#: The plugins ``mkdocs-techdocs-core`` brings (it enables search, monorepo and gh-admonitions
#: itself); ``docs.plugins`` in ``callboard.yaml`` replaces this list.
DEFAULT_PLUGINS: tuple[str, ...] = ("techdocs-core", "search", "monorepo", "gh-admonitions")
#: Callboard adds techdocs-core to every build, so naming it is always fine.
_ALWAYS_ALLOWED = frozenset({"techdocs-core"})
#: Markdown extensions are modules of these packages, or names registered as Markdown extensions
_EXTENSION_PACKAGES = ("markdown.extensions.", "pymdownx.")
_EXTENSION_MODULES = frozenset({"plantuml_markdown", "markdown_inline_graphviz", "mdx_truly_sane_lists"})
_SNIPPETS = "pymdownx.snippets"
_PLANTUML = "plantuml_markdown"
_B64 = "pymdownx.b64"
#: plantuml_markdown options that only shape the picture (not plantuml_cmd, a command line it
#: runs, nor servers, http_method, insecure: addresses it calls and how)
_PLANTUML_OPTIONS = frozenset({"classes", "alt", "format", "remove_inline_svg_size", "title", "image_maps", "priority",
                               "encoding", "theme", "puml_notheme_cmdlist"})
CONFIG_NAMES = ("mkdocs.yml", "mkdocs.yaml")
MAX_CONFIG_BYTES = 1 << 20
#: values in a config once YAML aliases are expanded: a few kB of aliases must not become billions
MAX_CONFIG_VALUES = 100_000
_INCLUDE = "!include "
_WILDCARD = "*include "


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """What the operator allows (``docs.*`` in ``callboard.yaml``), and the repository a build may read."""

    root: Path  # the repository, symlinks resolved
    allow_hooks: bool = False
    allow_env: bool = False
    plugins: tuple[str, ...] = DEFAULT_PLUGINS
    environ: Mapping[str, str] = field(default_factory=dict)  # what ``!ENV`` reads (the worker's, scrubbed)


@dataclass(frozen=True, slots=True)
class Relative:
    """MkDocs' ``!relative`` tag for MkDocs to resolve (the current page's folder, or ``$docs_dir/…``)."""

    value: str


@dataclass(frozen=True, slots=True)
class IncludeMarker:
    """Where a monorepo ``!include`` stood in ``nav``: the build writes the checked copy's path here."""

    index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class IncludedSite:
    """A ``mkdocs.yml`` the monorepo plugin includes: only what the plugin reads of it."""

    file: Path
    site_name: Any
    nav: Any
    docs_dir: Path  # resolved, inside the repository


@dataclass(frozen=True, slots=True, kw_only=True)
class Checked:
    data: dict[str, Any]  # the merged config: tags resolved, paths absolute, INHERIT gone
    config_dir: Path
    docs_dir: Path  # resolved, inside the repository (it may not exist)
    custom_dir: Path | None  # resolved, inside the repository
    includes: tuple[IncludedSite, ...]
    files: tuple[Path, ...]  # every config file read
    warnings: tuple[str, ...]


class _Refused(Exception):
    def __init__(self, refusal: DocsError) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal


# --- messages -----------------------------------------------------------------------------------

def _python_tag(tag: str) -> str:
    return (f"the YAML tag {tag} would run Python while the config is read; Callboard reads mkdocs.yml with "
            "a loader that refuses Python tags. Write a plain value instead (custom fences and emoji "
            "generators that need a Python name are not available for docs built by Callboard).")


def _env_tag() -> str:
    return ("!ENV reads the server's environment; Callboard refuses it unless docs.allow_env is true in "
            "callboard.yaml. Write the value itself instead.")


def _outside(key: str, value: object) -> str:
    return (f"{key} {value!s} resolves outside the repository (or into its .git folder); docs may only use "
            "files of their own repository. Point it at a path inside the repository.")


def _hooks() -> str:
    return ("hooks run Python from the repository; Callboard does not run them unless "
            "docs.allow_hooks is true in callboard.yaml. Remove hooks, or ask the operator to allow them.")


def _plugin(name: str, allowed: tuple[str, ...], installed: bool) -> str:
    listed = ", ".join(allowed) or "none"
    if not installed:
        return (f'The "{name}" plugin is not installed, and it is not one of the plugins Callboard runs '
                f"(docs.plugins: {listed}). Remove it from plugins.")
    return (f'plugins: the "{name}" plugin is not one of the plugins Callboard runs (docs.plugins: {listed}). '
            "Remove it, or ask the operator to add it to docs.plugins in callboard.yaml.")


def _extension(name: str) -> str:
    return (f'markdown_extensions: "{name}" is not a Markdown extension Callboard loads (the built-in '
            "Markdown extensions, pymdownx.*, plantuml_markdown, markdown_inline_graphviz, "
            "mdx_truly_sane_lists). Remove it.")


# --- paths --------------------------------------------------------------------------------------

def inside(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> bool:
    """True when ``path`` (symlinks resolved) is ``root`` or lies under it, outside every ``.git``
    folder in it; ``root`` must be resolved. A repository's ``.git`` is written by whoever cloned
    it, not by its authors, and often holds the clone's credentials (remote URL, extraheader)."""
    real = os.path.realpath(path)
    root = os.fspath(root)
    prefix = root.rstrip(os.sep) + os.sep
    return real == root or (real.startswith(prefix) and ".git" not in real[len(prefix):].split(os.sep))


class _Reader:
    """One check: the policy, and where each file of the INHERIT chains was read."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.root = policy.root
        self.files: list[Path] = []
        self.warnings: list[str] = []

    def rel(self, path: Path) -> str:
        try:
            return str((Path(os.path.realpath(path.parent)) / path.name).relative_to(self.root))
        except ValueError:
            return str(path)

    def refuse(self, file: Path, line: int | None, message: str) -> _Refused:
        return _Refused(DocsError(file=self.rel(file), line=line, message=message))

    def resolve(self, base: Path, value: object, key: str, file: Path, line: int | None) -> Path:
        """``value`` (a path relative to ``base``) resolved; refused when it leaves the repository."""
        if not isinstance(value, str) or not value.strip():
            raise self.refuse(file, line, f"{key} must be a path, got {value!r}.")
        path = Path(os.path.normpath(value if os.path.isabs(value) else os.path.join(base, value)))
        if not inside(path, self.root):
            raise self.refuse(file, line, _outside(key, value))
        return Path(os.path.realpath(path))

    # --- one YAML file ----------------------------------------------------------------------

    def load(self, path: Path) -> tuple[dict[str, Any], yaml.Node | None]:
        real = os.path.realpath(path)
        if not inside(real, self.root):
            raise self.refuse(path, None, _outside("the config file", self.rel(path)))
        try:
            st = os.stat(real)
            if not stat.S_ISREG(st.st_mode):
                raise self.refuse(path, None, "is not a regular file; a config must be a plain file.")
            with open(real, "rb") as fh:
                raw = fh.read(MAX_CONFIG_BYTES + 1)
        except OSError as exc:
            raise self.refuse(path, None, f"cannot be read: {exc.strerror or exc}.") from None
        if len(raw) > MAX_CONFIG_BYTES:
            raise self.refuse(path, None, f"is larger than {MAX_CONFIG_BYTES} bytes; a config is never that big.")
        self.files.append(path)
        loader = _Loader(raw)
        loader.reader = self
        loader.file = path
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        except _Refused:
            raise
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            raise self.refuse(path, line, f"is not valid YAML: {exc.problem or exc.context}.") from None
        except yaml.YAMLError as exc:
            raise self.refuse(path, None, f"is not valid YAML: {exc}.") from None
        except RecursionError:
            raise self.refuse(path, None, "is nested too deeply to be a config.") from None
        finally:
            loader.dispose()
        if data is None:
            return {}, node
        if not isinstance(data, dict):
            raise self.refuse(path, 1, "must be a mapping of settings (site_name: …, nav: …).")
        return data, node

    def chain(self, path: Path) -> list[tuple[Path, dict[str, Any], yaml.Node | None]]:
        """The file and every file it INHERITs, most derived first; cycles refused."""
        layers: list[tuple[Path, dict[str, Any], yaml.Node | None]] = []
        seen: list[str] = []
        current = path
        while True:
            real = os.path.realpath(current)
            if real in seen:
                names = " -> ".join(self.rel(Path(s)) for s in [*seen, real])
                raise self.refuse(layers[-1][0], _line(layers[-1][2], ("INHERIT",)),
                                  f"INHERIT makes a cycle ({names}); a config cannot inherit from itself.")
            seen.append(real)
            data, node = self.load(current)
            layers.append((current, data, node))
            parent = data.pop("INHERIT", None)
            if parent is None:
                return layers
            line = _line(node, ("INHERIT",))
            if not isinstance(parent, str) or not parent.strip():
                raise self.refuse(current, line, f"INHERIT must name a file, got {parent!r}.")
            target = Path(os.path.normpath(current.parent / parent))
            if not inside(target, self.root):
                raise self.refuse(current, line, _outside("INHERIT", parent))
            if not target.is_file():
                raise self.refuse(current, line, f"INHERIT: {parent} does not exist in the repository.")
            current = target


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML's safe loader plus MkDocs' own tags, resolved without running anything."""

    reader: _Reader
    file: Path


def _refuse_node(loader: _Loader, node: yaml.Node, message: str) -> _Refused:
    return loader.reader.refuse(loader.file, node.start_mark.line + 1, message)


def _python(loader: _Loader, suffix: str, node: yaml.Node) -> Any:
    raise _refuse_node(loader, node, _python_tag(f"!!python/{suffix}"))


def _unknown(loader: _Loader, suffix: str, node: yaml.Node) -> Any:
    raise _refuse_node(loader, node, f"the YAML tag !{suffix} is not one Callboard reads in a config (only "
                                     "!relative, and !ENV when docs.allow_env is true). Write a plain value.")


def _env(loader: _Loader, node: yaml.Node) -> Any:
    """``!ENV NAME`` or ``!ENV [NAME, OTHER, default]``, as pyyaml-env-tag reads it, from the
    worker's (scrubbed) environment."""
    policy = loader.reader.policy
    if not policy.allow_env:
        raise _refuse_node(loader, node, _env_tag())
    if isinstance(node, yaml.ScalarNode):
        names, default = [loader.construct_scalar(node)], None
    elif isinstance(node, yaml.SequenceNode):
        items = node.value
        if not items or not all(isinstance(i, yaml.ScalarNode) for i in items):
            raise _refuse_node(loader, node, "!ENV takes a name or a list of names and a default.")
        names = [loader.construct_scalar(i) for i in (items[:-1] if len(items) > 1 else items)]
        default = loader.construct_object(items[-1]) if len(items) > 1 else None
    else:
        raise _refuse_node(loader, node, "!ENV takes a name or a list of names and a default.")
    for name in names:
        if isinstance(name, str) and name in policy.environ:
            value = policy.environ[name]
            tag = loader.resolve(yaml.ScalarNode, value, (True, False))
            return loader.construct_object(yaml.ScalarNode(tag, value))
    return default


def _relative(loader: _Loader, node: yaml.Node) -> Any:
    """MkDocs' ``!relative``: ``$config_dir/…`` becomes a checked absolute path here; the
    current page's folder and ``$docs_dir/…`` stay for MkDocs (both lie in the build's copy)."""
    if not isinstance(node, yaml.ScalarNode):
        raise _refuse_node(loader, node, "!relative takes $config_dir/…, $docs_dir/… or nothing.")
    value = str(loader.construct_scalar(node) or "")
    prefix, _, suffix = value.partition("/")
    if not value:
        return Relative("")
    if prefix == "$docs_dir":
        if ".." in Path(suffix).parts or os.path.isabs(suffix):
            raise _refuse_node(loader, node, _outside("!relative", value))
        return Relative(value)
    if prefix == "$config_dir":
        reader = loader.reader
        main = reader.files[0] if reader.files else loader.file
        return str(reader.resolve(main.parent, suffix or ".", "!relative", loader.file, node.start_mark.line + 1))
    raise _refuse_node(loader, node, f"!relative {value}: MkDocs knows $config_dir/… and $docs_dir/…, or no value.")


_Loader.add_multi_constructor("tag:yaml.org,2002:python/", _python)
_Loader.add_constructor("!ENV", _env)
_Loader.add_constructor("!relative", _relative)
_Loader.add_multi_constructor("!", _unknown)


def _line(node: yaml.Node | None, path: tuple[str | int, ...]) -> int | None:
    """The line (1-based) of the key or item at ``path`` in a composed YAML document."""
    line = None
    for step in path:
        if isinstance(node, yaml.MappingNode) and isinstance(step, str):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == step:
                    line, node = key.start_mark.line + 1, value
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _expanded_size(data: Any, limit: int) -> int:
    """How many values ``data`` holds with every alias expanded, counting stops past ``limit``."""
    count, stack = 0, [data]
    while stack and count <= limit:
        value = stack.pop()
        count += 1
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return count


def _merge(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """INHERIT's deep merge (mergedeep's replace strategy, as MkDocs uses it): mappings merge, the child wins."""
    out = dict(parent)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@functools.lru_cache(maxsize=1)
def _installed(group: str) -> frozenset[str]:
    return frozenset(ep.name for ep in metadata.entry_points(group=group))


def _extension_allowed(name: str) -> bool:
    if name in _installed("markdown.extensions"):
        return True
    module, _, class_name = name.partition(":")
    if module not in _EXTENSION_MODULES and not module.startswith(_EXTENSION_PACKAGES):
        return False
    if not class_name:
        return True
    try:
        from markdown.extensions import Extension

        found = getattr(importlib.import_module(module), class_name, None)
    except Exception:  # noqa: BLE001 - a module that fails to import is not an extension
        return False
    return isinstance(found, type) and issubclass(found, Extension)


def _entries(value: Any) -> list[tuple[str, Any]] | None:
    """A plugins or markdown_extensions value as (name, config) pairs; None when malformed."""
    if isinstance(value, dict):
        return [(str(k), v) for k, v in value.items()]
    if not isinstance(value, list):
        return None
    out: list[tuple[str, Any]] = []
    for item in value:
        if isinstance(item, str):
            out.append((item, None))
        elif isinstance(item, dict) and len(item) == 1:
            (name, conf), = item.items()
            out.append((str(name), conf))
        else:
            return None
    return out


class _Check:
    """The checks on one merged config."""

    def __init__(self, reader: _Reader, layers: list[tuple[Path, dict[str, Any], yaml.Node | None]],
                 config_dir: Path) -> None:
        self.reader = reader
        self.layers = layers
        self.config_dir = config_dir
        merged: dict[str, Any] = {}
        for _, data, _ in reversed(layers):
            merged = _merge(merged, data)
        self.data = merged
        if _expanded_size(merged, MAX_CONFIG_VALUES) > MAX_CONFIG_VALUES:
            raise reader.refuse(layers[0][0], None, f"holds more than {MAX_CONFIG_VALUES} values once its YAML "
                                "aliases are expanded; a config is never that big. Write it without aliases.")

    def place(self, *path: str | int) -> tuple[Path, int | None]:
        """The most derived file that sets ``path``, and the line."""
        for file, _, node in self.layers:
            line = _line(node, path)
            if line is not None:
                return file, line
        return self.layers[0][0], None

    def refuse(self, message: str, *path: str | int) -> _Refused:
        file, line = self.place(*path)
        return self.reader.refuse(file, line, message)

    def path(self, value: object, key: str, *place: str | int) -> Path:
        file, line = self.place(*place)
        return self.reader.resolve(self.config_dir, value, key, file, line)

    def run(self) -> Checked:
        data = self.data
        data.pop("config_file_path", None)
        data.pop("watch", None)  # `mkdocs serve` only
        hooks = data.get("hooks")
        if hooks:
            if not self.reader.policy.allow_hooks:
                file, line = self.place("hooks")
                raise self.reader.refuse(file, line, _hooks())
            if not isinstance(hooks, list):
                raise self.refuse("hooks must be a list of files.", "hooks")
            data["hooks"] = [str(self.path(h, "hooks", "hooks", i)) for i, h in enumerate(hooks)]
        docs_dir = self.path(data.get("docs_dir", "docs"), "docs_dir", "docs_dir")
        if docs_dir == Path(os.path.realpath(self.config_dir)) or docs_dir in Path(os.path.realpath(self.config_dir)).parents:
            raise self.refuse("docs_dir must be a folder below the one holding mkdocs.yml (MkDocs' rule).",
                              "docs_dir")
        if "site_dir" in data:
            self.path(data.pop("site_dir"), "site_dir", "site_dir")  # checked, then replaced by the build's
        custom_dir = None
        theme = data.get("theme")
        if isinstance(theme, dict) and theme.get("custom_dir") is not None:
            custom_dir = self.path(theme["custom_dir"], "theme.custom_dir", "theme", "custom_dir")
            if not custom_dir.is_dir():
                raise self.refuse(f"theme.custom_dir {theme['custom_dir']} is not a folder of the repository.",
                                  "theme", "custom_dir")
        self.plugins()
        self.extensions()
        includes: list[IncludedSite] = []
        if isinstance(data.get("nav"), list):
            data["nav"] = self.nav(data["nav"], includes)
        return Checked(data=data, config_dir=self.config_dir, docs_dir=docs_dir, custom_dir=custom_dir,
                       includes=tuple(includes), files=tuple(self.reader.files), warnings=tuple(self.reader.warnings))

    def plugins(self) -> None:
        value = self.data.get("plugins")
        if value is None:
            return
        entries = _entries(value)
        if entries is None:
            return  # MkDocs says what is wrong with the shape
        policy = self.reader.policy
        allowed = frozenset(policy.plugins) | _ALWAYS_ALLOWED
        for i, (name, conf) in enumerate(entries):
            where = ("plugins", name) if isinstance(value, dict) else ("plugins", i)
            if name not in allowed:
                raise self.refuse(_plugin(name, policy.plugins, name in _installed("mkdocs.plugins")), *where)
            if name == "redirects" and isinstance(conf, dict) and isinstance(conf.get("redirect_maps"), dict):
                # the plugin writes a page at each old path: one with .. would be written outside the site
                for old in conf["redirect_maps"]:
                    if not isinstance(old, str) or os.path.isabs(old) or "\\" in old or ".." in Path(old).parts:
                        raise self.refuse(f"plugins: redirects: redirect_maps {old!r} leaves the site; old pages "
                                          "must be paths inside the docs.", *where, name)

    def extensions(self) -> None:
        value = self.data.get("markdown_extensions")
        entries = _entries(value) if value is not None else []
        if entries is None:
            return  # MkDocs says what is wrong with the shape
        out: list[Any] = []
        snippets = False
        for i, (name, conf) in enumerate(entries):
            where = ("markdown_extensions", name) if isinstance(value, dict) else ("markdown_extensions", i)
            if not _extension_allowed(name):
                raise self.refuse(_extension(name), *where)
            where = where if isinstance(value, dict) or conf is None else (*where, name)
            module = name.partition(":")[0]
            if module == _SNIPPETS:
                conf = self.snippets(conf, where)
                snippets = True
            elif module == _PLANTUML and isinstance(conf, dict):
                conf = self.plantuml(conf, where)
            elif module == _B64:
                conf = self.b64(conf, where)
            out.append(name if conf is None else {name: conf})
        if not snippets:  # techdocs-core turns snippets on: give them the repository, not the worker's folder
            out.append({_SNIPPETS: self.snippets(None, ("markdown_extensions",))})
        self.data["markdown_extensions"] = out

    def snippets(self, conf: Any, where: tuple[str | int, ...]) -> dict[str, Any]:
        conf = dict(conf) if isinstance(conf, dict) else {}
        bases = conf.get("base_path", ["."])
        bases = bases if isinstance(bases, list) else [bases]
        checked: list[Any] = []
        for base in bases:
            if isinstance(base, Relative):
                checked.append(base)
                continue
            # techdocs-cli runs MkDocs in the folder of mkdocs.yml: "." means that folder
            checked.append(str(self.path(base, f"{_SNIPPETS} base_path", *where, "base_path")))
        conf["base_path"] = checked
        if conf.get("restrict_base_path") is False:
            self.reader.warnings.append(f"{_SNIPPETS}: restrict_base_path is always on for docs built by Callboard.")
        conf["restrict_base_path"] = True
        if conf.get("url_download"):
            self.reader.warnings.append(f"{_SNIPPETS}: url_download is off for docs built by Callboard; "
                                        "snippets are read from the repository only.")
        conf["url_download"] = False
        return conf

    def b64(self, conf: Any, where: tuple[str | int, ...]) -> dict[str, Any]:
        """Images a page names are inlined from base_path (default: the folder of mkdocs.yml, where
        techdocs-cli runs), never from outside the repository."""
        conf = dict(conf) if isinstance(conf, dict) else {}
        conf["base_path"] = str(self.path(conf.get("base_path", "."), f"{_B64} base_path", *where, "base_path"))
        if conf.get("root_path"):
            conf["root_path"] = str(self.path(conf["root_path"], f"{_B64} root_path", *where, "root_path"))
        conf["restrict_path"] = True
        return conf

    def plantuml(self, conf: dict[str, Any], where: tuple[str | int, ...]) -> dict[str, Any]:
        conf = dict(conf)
        for key in sorted(set(conf) - _PLANTUML_OPTIONS - {"base_dir", "config", "cachedir", "server", "kroki_server"}):
            # plantuml_cmd is a command line the extension runs; servers are addresses it calls
            del conf[key]
            self.reader.warnings.append(f"{_PLANTUML}: {key} is not used for docs built by Callboard; diagrams "
                                        "are drawn by the plantuml program here, or shown as source.")
        if "base_dir" in conf:
            bases = conf["base_dir"] if isinstance(conf["base_dir"], list) else [conf["base_dir"]]
            conf["base_dir"] = [str(self.path(b, f"{_PLANTUML} base_dir", *where, "base_dir")) for b in bases]
        if "config" in conf and conf["config"]:
            conf["config"] = str(self.path(conf["config"], f"{_PLANTUML} config", *where, "config"))
        if conf.pop("cachedir", None):
            self.reader.warnings.append(f"{_PLANTUML}: cachedir is not used for docs built by Callboard.")
        for key in ("server", "kroki_server"):
            if conf.pop(key, None):  # a build never calls an address a repository names
                self.reader.warnings.append(f"{_PLANTUML}: {key} is not used for docs built by Callboard; "
                                            "diagrams are drawn by the plantuml program here, or shown as source.")
        return conf

    def nav(self, nav: list[Any], includes: list[IncludedSite]) -> list[Any]:
        """Monorepo ``!include`` and ``*include`` entries: each included config checked like this
        one, and its place marked for the build's checked copy."""
        out: list[Any] = []
        for item in nav:
            if not (isinstance(item, dict) and len(item) == 1):
                out.append(item)
                continue
            (title, value), = item.items()
            if isinstance(value, list):
                out.append({title: self.nav(value, includes)})
            elif isinstance(value, str) and value.startswith(_INCLUDE):
                out.append({title: self.include(value[len(_INCLUDE):].strip(), includes)})
            elif isinstance(value, str) and value.startswith(_WILDCARD):
                pattern = value[len(_WILDCARD):].strip()
                if not pattern.endswith((".yml", ".yaml")):
                    raise self.refuse(f"nav: {value} must name .yml files.", "nav")
                if ".." in Path(pattern).parts or os.path.isabs(pattern):
                    raise self.refuse(_outside("nav *include", pattern), "nav")
                found = []
                for match in sorted(self.config_dir.glob(pattern)):
                    marker = self.include(str(match.relative_to(self.config_dir)), includes)
                    found.append({includes[marker.index].site_name: marker})
                if found:
                    out.append({title: found})
                else:
                    self.reader.warnings.append(f"nav: {value} matches no file; left out.")
            else:
                out.append(item)
        return out

    def include(self, target: str, includes: list[IncludedSite]) -> IncludeMarker:
        path = Path(os.path.normpath(self.config_dir / target))
        if not inside(path, self.reader.root):
            raise self.refuse(_outside("nav !include", target), "nav")
        if not path.is_file():
            raise self.refuse(f"nav: !include {target} does not exist in the repository.", "nav")
        layers = self.reader.chain(path)
        merged: dict[str, Any] = {}
        for _, data, _ in reversed(layers):
            merged = _merge(merged, data)
        if _expanded_size(merged, MAX_CONFIG_VALUES) > MAX_CONFIG_VALUES:
            raise self.reader.refuse(path, None, f"holds more than {MAX_CONFIG_VALUES} values once its YAML "
                                     "aliases are expanded; a config is never that big.")
        if "site_name" not in merged:
            raise self.reader.refuse(path, None, "has no site_name, which the monorepo plugin needs.")
        docs_dir = self.reader.resolve(path.parent, merged.get("docs_dir", "docs"), "docs_dir", path,
                                       _line(layers[0][2], ("docs_dir",)))
        includes.append(IncludedSite(file=path, site_name=merged["site_name"], nav=merged.get("nav"),
                                     docs_dir=docs_dir))
        return IncludeMarker(len(includes) - 1)


def find_config(source: Path) -> Path | None:
    for name in CONFIG_NAMES:
        if (source / name).is_file():
            return source / name
    return None


def check_config(source: Path, policy: Policy, *, default_site_name: str = "docs") -> Checked | DocsError:
    """The config of the docs folder ``source`` (its ``mkdocs.yml``, or the default techdocs-cli
    uses when there is none), checked against ``policy``."""
    reader = _Reader(policy)
    config = find_config(source)
    try:
        if config is None:
            layers: list[tuple[Path, dict[str, Any], yaml.Node | None]] = [
                (source / "mkdocs.yml", {"site_name": default_site_name, "plugins": ["techdocs-core"]}, None)
            ]
        else:
            layers = reader.chain(config)
        return _Check(reader, layers, source).run()
    except _Refused as refused:
        return refused.refusal
    except RecursionError:
        return DocsError(file=reader.rel(config or source), line=None, message="is nested too deeply to be a config.")
