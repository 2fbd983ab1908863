"""Settings: one frozen value built once from ``callboard.yaml`` and ``CALLBOARD_*`` variables.

``${ENV_VAR}`` in the file is replaced from the environment; every error names
the key (and file) that is wrong. Nothing else in Callboard reads ``os.environ``.
Secrets only ever come from the environment and are never logged.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from platformdirs import user_data_dir

from callboard.scaffolder.permissions import PermissionRule, rules_from_config

__all__ = ["REMEMBERED", "ConfigError", "Settings", "default_database_url", "load_settings", "mask_url", "remembered",
           "with_remembered"]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_KNOWN = {
    "database": {"url"},
    "catalog": {"locations", "max_file_bytes", "sync_interval"},
    "log": {"level"},
    "docs": {"store", "build_timeout", "workers", "allow_hooks", "allow_env", "plugins"},
    "reading": {"allow"},
    "backstage": {"base_url"},
    "server": {"public_url"},
    "teams": {"name", "short_description", "full_description", "developer", "website_url", "privacy_url",
              "terms_url", "accent_color", "domain", "app_version"},
    "oncall": {"schedule_file", "timeout", "cache_seconds", "pagerduty", "opsgenie"},
    "providers": set(),  # one section per entity provider, checked when the app starts (providers.api)
    "scaffolder": {"permissions", "publish_dir", "github_hosts", "github_timeout", "max_publish_bytes",
                   "max_skeleton_files", "max_skeleton_bytes", "default_author", "registered_dir"},
}
#: top-level keys whose sub-keys name plugins: any name, each a mapping (its section)
_PLUGIN_SECTIONS = {"providers"}
#: keys where a plugin's section may sit beside the known keys
_OPEN_SECTIONS = {"oncall"}


_SECRET_FIELDS = frozenset({"slack_bot_token", "slack_signing_secret", "slack_app_token", "github_token",
                            "pagerduty_token", "opsgenie_api_key", "teams_app_password"})
#: MICROSOFT_APP_TYPE's values, as the Bot Framework names them
TEAMS_APP_TYPES = ("MultiTenant", "SingleTenant", "UserAssignedMSI")
#: User info up to the last '@' of the URL (SQLAlchemy reads a password that far: '/', '?', '#' and all).
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/@:?#\s]*)(?P<password>:[^\s]*)?@")
#: Query parameters that hold a secret (asyncpg takes ``password`` from the query, many APIs a token).
_SECRET_QUERY = re.compile(r"(?P<key>[?&](?:password|passwd|pwd|token|access_token|secret|api_key|apikey)=)[^&#\s]*",
                           re.IGNORECASE)


def mask_url(url: str) -> str:
    """``url`` with the password of its user info replaced by ``***`` (the user name stays), a user
    info without a password (``https://<token>@host``, how GitHub and GitLab take tokens) replaced
    whole, and secret query parameters (``?password=``) masked."""
    masked = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@" if m["password"] else f"{m['scheme']}***@", url)
    return _SECRET_QUERY.sub(lambda m: f"{m['key']}***", masked)


class ConfigError(Exception):
    """The configuration is wrong; the message names the key and says what to write."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str | None = None
    catalog: tuple[str, ...] = ()
    catalog_from_option: bool = False
    max_file_bytes: int = 64 * 1024 * 1024
    sync_interval: float = 300.0
    log_level: str = "warning"
    config_file: str | None = None
    data_dir: str = field(default_factory=lambda: user_data_dir("callboard", appauthor=False))
    user_email: str | None = None
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_api_url: str = "https://slack.com/api/"
    #: Microsoft Teams (environment only): the bot's Microsoft app id, password, tenant and type
    teams_app_id: str | None = None
    teams_app_password: str | None = field(default=None, repr=False)
    teams_tenant_id: str | None = None
    teams_app_type: str = "MultiTenant"
    #: CALLBOARD_TEAMS_DEV=1: Teams on without credentials, requests not authenticated (local development only)
    teams_dev: bool = False
    #: ``teams``: what the app package says (name, descriptions, developer, URLs, colour, domain)
    teams_app: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    docs_store: str | None = None  # default: <data_dir>/docs
    docs_build_timeout: float = 120.0
    docs_workers: int | None = None  # default: one per CPU
    docs_allow_hooks: bool = False
    docs_allow_env: bool = False  # MkDocs `!ENV` tags in a repository's mkdocs.yml
    docs_plugins: tuple[str, ...] | None = None  # MkDocs plugins a repository may use; None: the default list
    reading_allow: tuple[str, ...] = ()  # hosts (globs, optional :port) and CIDR ranges data URLs may reach
    backstage_base_url: str | None = None  # links then open Backstage's TechDocs
    public_url: str | None = None  # where `callboard serve` is reachable, for links in chat
    github_api_url: str = "https://api.github.com"  # GitHub Enterprise: https://<host>/api/v3
    github_token: str | None = field(default=None, repr=False)
    oncall_schedule_file: str | None = None  # default: an oncall.yaml beside a catalog folder
    oncall_timeout: float = 5.0
    oncall_cache_seconds: float = 60.0
    pagerduty_token: str | None = field(default=None, repr=False)
    pagerduty_api_url: str = "https://api.pagerduty.com"
    opsgenie_api_key: str | None = field(default=None, repr=False)
    opsgenie_api_url: str = "https://api.opsgenie.com"
    #: ``providers.<name>``: each entity provider's section, as written (parsed by the provider's config)
    providers: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))
    #: ``oncall.<name>`` for on-call providers other than the built-in ones, as written
    oncall_providers: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))
    #: ``scaffolder.permissions``: who may run which template (scaffolder/permissions.py; none: everyone all)
    scaffolder_permissions: tuple[PermissionRule, ...] = ()
    #: the rest of ``scaffolder``: what its actions read (publish_dir, github_hosts, ...; see
    #: scaffolder/actions/publish.py), checked here for shape, given to every action as ActionDeps.config
    scaffolder_actions: Mapping[str, Any] = field(default_factory=dict)
    #: which of the ``REMEMBERED`` fields this run sets itself (config file, environment, options, or
    #: what the database remembered), as opposed to leaving them at their defaults
    explicit: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        """Every field, with passwords in URLs masked and secrets shown only as set or not."""
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRET_FIELDS:
                shown = "None" if value is None else "'***'"
            elif isinstance(value, Mapping):  # plugin sections may hold secrets (${VAR}): names only
                shown = repr(tuple(sorted(value)))
            elif isinstance(value, str):
                shown = repr(mask_url(value))
            elif isinstance(value, tuple):
                shown = repr(tuple(mask_url(v) if isinstance(v, str) else v for v in value))
            else:
                shown = repr(value)
            parts.append(f"{f.name}={shown}")
        return f"Settings({', '.join(parts)})"

    @property
    def effective_docs_store(self) -> str:
        return self.docs_store or str(Path(self.data_dir) / "docs")

    @property
    def effective_database_url(self) -> str:
        return self.database_url or default_database_url(self.data_dir)


#: The on-call sources' settings a sync records with its database (``storage/sync_settings.py``), so
#: a run that names only that database asks the same sources: the schedule file, the time limit, the
#: PagerDuty and Opsgenie API addresses. Never a credential: tokens stay in the environment.
REMEMBERED = ("oncall_schedule_file", "oncall_timeout", "pagerduty_api_url", "opsgenie_api_url")


def remembered(settings: Settings) -> dict[str, Any]:
    """What a sync records of ``settings``: the ``REMEMBERED`` fields this run set (left at their
    default, nothing is recorded). A URL holding a credential (user info, ``?token=``) is not kept."""
    out: dict[str, Any] = {}
    for name in REMEMBERED:
        value = getattr(settings, name)
        if name not in settings.explicit or value is None:
            continue
        if isinstance(value, str) and mask_url(value) != value:
            continue
        out[name] = value
    return out


def _remembered_value(name: str, value: Any) -> Any:
    """``value`` if it is what field ``name`` holds, else None (a record from another version, or edited)."""
    if name == "oncall_timeout":
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None
    if not isinstance(value, str) or not value.strip():
        return None
    if name.endswith("_api_url") and not value.startswith(("http://", "https://")):
        return None
    return value


def with_remembered(settings: Settings, values: Mapping[str, Any]) -> Settings:
    """``settings`` with what a database remembered filled in where this run set nothing itself:
    the config file, the environment and options win over the record, the record over defaults."""
    changes: dict[str, Any] = {}
    for name in REMEMBERED:
        if name in settings.explicit or name not in values:
            continue
        value = _remembered_value(name, values[name])
        if value is not None:
            changes[name] = value
    if not changes:
        return settings
    return replace(settings, explicit=settings.explicit | frozenset(changes), **changes)


def default_database_url(data_dir: str) -> str:
    return f"sqlite:///{Path(data_dir) / 'callboard.db'}"


def _substitute(value: Any, env: Mapping[str, str], where: str) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, env, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def repl(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"{where}: environment variable {name} is not set (write ${{{name}:-default}} for a default)")

    return _VAR.sub(repl, value)


def _read_file(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Config file {path} cannot be read: {exc}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    for key, value in data.items():
        if key not in _KNOWN:
            raise ConfigError(f"{path}: unknown key {key!r}; known keys: {', '.join(sorted(_KNOWN))}")
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {key} must be a mapping")
        for sub, section in value.items():
            if key in _PLUGIN_SECTIONS or (key in _OPEN_SECTIONS and sub not in _KNOWN[key]
                                           and isinstance(section, dict)):
                if section is not None and not isinstance(section, dict):
                    raise ConfigError(f"{path}: {key}.{sub} must be a mapping of that provider's settings")
                continue
            if sub not in _KNOWN[key]:
                raise ConfigError(
                    f"{path}: unknown key {key}.{sub}; known: {', '.join(f'{key}.{s}' for s in sorted(_KNOWN[key]))}"
                )
    return _substitute(data, env, "")


def _positive(value: Any, key: str, cast: type) -> Any:
    try:
        out = cast(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected a positive number, got {value!r}") from None
    if out <= 0:
        raise ConfigError(f"{key}: expected a positive number, got {value!r}")
    return out


def _reading_allow(allow: Any, path: str | None) -> tuple[str, ...]:
    """``reading.allow``: hosts (``git.corp.example``, ``*.corp.example``, ``host:8080``) and CIDR
    ranges (``10.20.0.0/16``) that URLs from catalog data may reach although they are private."""
    if not isinstance(allow, list):
        raise ConfigError(f"{path}: reading.allow must be a list of hosts or CIDR ranges, e.g. [git.corp.example, 10.0.0.0/8]")
    out: list[str] = []
    for i, item in enumerate(allow):
        if isinstance(item, dict):
            unknown = set(item) - {"host", "cidr"}
            if unknown or len(item) != 1:
                raise ConfigError(f"{path}: reading.allow[{i}] must be a host, a CIDR range, or a mapping with "
                                  "one key, host or cidr")
            item = next(iter(item.values()))
        if not isinstance(item, str) or not item.strip() or any(c in item for c in " /\\@?#") and not _is_cidr(item):
            raise ConfigError(f"{path}: reading.allow[{i}]: {item!r} is neither a host name nor a CIDR range")
        out.append(item.strip().lower())
    return tuple(out)


def _is_cidr(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def load_settings(
    *,
    config_file: str | None = None,
    database_url: str | None = None,
    catalog: tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from (lowest to highest): defaults, the config file, the environment, options."""
    env = dict(os.environ if env is None else env)
    path = config_file or env.get("CALLBOARD_CONFIG")
    data: dict[str, Any] = {}
    base = Path.cwd()
    if path:
        p = Path(path).expanduser()
        data = _read_file(p, env)
        base = p.resolve().parent
    db = (data.get("database") or {}).get("url")
    cat = data.get("catalog") or {}
    locations = cat.get("locations") or []
    if not isinstance(locations, list):
        raise ConfigError(f"{path}: catalog.locations must be a list of paths or URLs")
    paths: list[str] = []
    for i, loc in enumerate(locations):
        kind = None
        if isinstance(loc, dict):
            kind = loc.get("type")
            loc = loc.get("path") or loc.get("url") or loc.get("target")
        if kind is not None and kind not in ("file", "url"):  # a location another provider reads
            if not isinstance(kind, str) or not re.fullmatch(r"[a-z][a-z0-9_-]*", kind):
                raise ConfigError(f"{path}: catalog.locations[{i}].type must be a provider name such as github, "
                                  f"got {kind!r}")
            if not isinstance(loc, str) or not loc:
                raise ConfigError(f"{path}: catalog.locations[{i}].target is required with type {kind}")
            paths.append(f"{kind}:{loc}")
            continue
        if not isinstance(loc, str) or not loc:
            raise ConfigError(f"{path}: catalog.locations[{i}] must be a path or URL")
        if "://" not in loc:
            loc = str((base / loc).resolve())
        paths.append(loc)
    settings_kwargs: dict[str, Any] = {}
    explicit: set[str] = set()
    if "max_file_bytes" in cat:
        settings_kwargs["max_file_bytes"] = _positive(cat["max_file_bytes"], "catalog.max_file_bytes", int)
    if "sync_interval" in cat:
        settings_kwargs["sync_interval"] = _positive(cat["sync_interval"], "catalog.sync_interval", float)
    docs = data.get("docs") or {}
    if "store" in docs:
        if not isinstance(docs["store"], str) or not docs["store"].strip():
            raise ConfigError(f"{path}: docs.store must be a folder path")
        settings_kwargs["docs_store"] = str((base / Path(docs["store"]).expanduser()).resolve())
    if "build_timeout" in docs:
        settings_kwargs["docs_build_timeout"] = _positive(docs["build_timeout"], "docs.build_timeout", float)
    if "workers" in docs:
        settings_kwargs["docs_workers"] = _positive(docs["workers"], "docs.workers", int)
    if "allow_hooks" in docs:
        if not isinstance(docs["allow_hooks"], bool):
            raise ConfigError(f"{path}: docs.allow_hooks must be true or false, got {docs['allow_hooks']!r}")
        settings_kwargs["docs_allow_hooks"] = docs["allow_hooks"]
    if "allow_env" in docs:
        if not isinstance(docs["allow_env"], bool):
            raise ConfigError(f"{path}: docs.allow_env must be true or false, got {docs['allow_env']!r}")
        settings_kwargs["docs_allow_env"] = docs["allow_env"]
    if "plugins" in docs:
        plugins = docs["plugins"]
        if not isinstance(plugins, list) or not all(isinstance(p, str) and p.strip() for p in plugins):
            raise ConfigError(f"{path}: docs.plugins must be a list of MkDocs plugin names, e.g. [techdocs-core, search]")
        settings_kwargs["docs_plugins"] = tuple(p.strip() for p in plugins)
    allow = (data.get("reading") or {}).get("allow")
    if allow is not None:
        settings_kwargs["reading_allow"] = _reading_allow(allow, path)
    settings_kwargs["providers"] = MappingProxyType({
        name: MappingProxyType(dict(section or {})) for name, section in (data.get("providers") or {}).items()})
    oncall = data.get("oncall") or {}
    settings_kwargs["oncall_providers"] = MappingProxyType({
        name: MappingProxyType(dict(section)) for name, section in oncall.items() if name not in _KNOWN["oncall"]})
    if "schedule_file" in oncall:
        if not isinstance(oncall["schedule_file"], str) or not oncall["schedule_file"].strip():
            raise ConfigError(f"{path}: oncall.schedule_file must be a file path")
        settings_kwargs["oncall_schedule_file"] = str((base / Path(oncall["schedule_file"]).expanduser()).resolve())
        explicit.add("oncall_schedule_file")
    if "timeout" in oncall:
        settings_kwargs["oncall_timeout"] = _positive(oncall["timeout"], "oncall.timeout", float)
        explicit.add("oncall_timeout")
    if "cache_seconds" in oncall:
        settings_kwargs["oncall_cache_seconds"] = _positive(oncall["cache_seconds"], "oncall.cache_seconds", float)
    for name, secret_var, url_var, default_url in (
        ("pagerduty", "PAGERDUTY_TOKEN", "PAGERDUTY_API_URL", "https://api.pagerduty.com"),
        ("opsgenie", "OPSGENIE_API_KEY", "OPSGENIE_API_URL", "https://api.opsgenie.com"),
    ):
        section = oncall.get(name)
        configured = name in oncall
        if configured and section is not None and not isinstance(section, dict):
            raise ConfigError(f"{path}: oncall.{name} must be a mapping (e.g. api_url: ...)")
        section = section or {}
        unknown = set(section) - {"api_url"}
        if unknown:
            raise ConfigError(f"{path}: unknown key oncall.{name}.{sorted(unknown)[0]}; known: oncall.{name}.api_url "
                              f"(the credential comes from {secret_var})")
        url = env.get(url_var) or section.get("api_url") or default_url
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(f"{path if not env.get(url_var) else url_var}: oncall.{name}.api_url must be an "
                              f"http(s) URL, got {mask_url(url) if isinstance(url, str) else url!r}")
        secret = env.get(secret_var)
        if configured and not secret:
            raise ConfigError(f"{path}: oncall.{name} is configured but {secret_var} is not set "
                              f"(Callboard reads the {name} credential only from the environment)")
        settings_kwargs[f"{name}_api_url"] = url.rstrip("/")
        if env.get(url_var) or section.get("api_url"):
            explicit.add(f"{name}_api_url")
        if secret:
            settings_kwargs["pagerduty_token" if name == "pagerduty" else "opsgenie_api_key"] = secret
    for section, key, field_name, env_var in (
        ("backstage", "base_url", "backstage_base_url", "BACKSTAGE_BASE_URL"),
        ("server", "public_url", "public_url", "CALLBOARD_PUBLIC_URL"),
    ):
        value = env.get(env_var) or (data.get(section) or {}).get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            raise ConfigError(f"{path}: {section}.{key} must be an http(s) URL, got "
                              f"{mask_url(value) if isinstance(value, str) else value!r}")
        settings_kwargs[field_name] = value.rstrip("/")
    try:
        settings_kwargs["scaffolder_permissions"] = rules_from_config((data.get("scaffolder") or {}).get("permissions"))
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    settings_kwargs["scaffolder_actions"] = _scaffolder_actions(data.get("scaffolder") or {}, path or "settings", base)
    level = (data.get("log") or {}).get("level")
    if level is not None:
        if str(level).lower() not in ("debug", "info", "warning", "error"):
            raise ConfigError(f"{path}: log.level must be debug, info, warning or error, got {level!r}")
        settings_kwargs["log_level"] = str(level).lower()
    for var, key in (
        ("SLACK_BOT_TOKEN", "slack_bot_token"),
        ("SLACK_SIGNING_SECRET", "slack_signing_secret"),
        ("SLACK_APP_TOKEN", "slack_app_token"),
        ("CALLBOARD_USER_EMAIL", "user_email"),
        ("GITHUB_TOKEN", "github_token"),
    ):
        if env.get(var):
            settings_kwargs[key] = env[var]
    settings_kwargs.update(_teams_env(env))
    settings_kwargs["teams_app"] = _teams_section(data.get("teams") or {}, path or "settings")
    if env.get("SLACK_API_URL"):
        url = env["SLACK_API_URL"]
        settings_kwargs["slack_api_url"] = url if url.endswith("/") else url + "/"
    if env.get("GITHUB_API_URL"):
        if not env["GITHUB_API_URL"].startswith(("http://", "https://")):
            raise ConfigError(f"GITHUB_API_URL must be an http(s) URL, got {mask_url(env['GITHUB_API_URL'])!r}")
        settings_kwargs["github_api_url"] = env["GITHUB_API_URL"].rstrip("/")
    if "CALLBOARD_DATA_DIR" in env:
        settings_kwargs["data_dir"] = env["CALLBOARD_DATA_DIR"]
    db = database_url or env.get("CALLBOARD_DATABASE_URL") or db
    if db is not None and (not isinstance(db, str) or not db.strip()):
        raise ConfigError(f"{path}: database.url must be a database URL such as sqlite:///callboard.db")
    return Settings(
        database_url=db,
        catalog=tuple(catalog) or tuple(paths),
        catalog_from_option=bool(catalog),
        config_file=str(path) if path else None,
        explicit=frozenset(explicit),
        **settings_kwargs,
    )


def _teams_env(env: Mapping[str, str]) -> dict[str, Any]:
    """Teams' credentials, from the environment only (``MICROSOFT_APP_*``, as the Bot Framework
    names them), and ``CALLBOARD_TEAMS_DEV``."""
    out: dict[str, Any] = {}
    app_id = env.get("MICROSOFT_APP_ID", "").strip()
    if app_id:
        out["teams_app_id"] = app_id
    if env.get("MICROSOFT_APP_PASSWORD"):
        out["teams_app_password"] = env["MICROSOFT_APP_PASSWORD"]
    if env.get("MICROSOFT_APP_TENANT_ID", "").strip():
        out["teams_tenant_id"] = env["MICROSOFT_APP_TENANT_ID"].strip()
    app_type = env.get("MICROSOFT_APP_TYPE", "").strip()
    if app_type:
        canonical = {t.lower(): t for t in TEAMS_APP_TYPES}.get(app_type.lower())
        if canonical is None:
            raise ConfigError(f"MICROSOFT_APP_TYPE must be one of {', '.join(TEAMS_APP_TYPES)}, got {app_type!r}")
        out["teams_app_type"] = canonical
    dev = env.get("CALLBOARD_TEAMS_DEV", "").strip().lower()
    if dev not in ("", "0", "1", "true", "false", "yes", "no"):
        raise ConfigError(f"CALLBOARD_TEAMS_DEV must be 1 or 0, got {dev!r}")
    out["teams_dev"] = dev in ("1", "true", "yes")
    return out


def _teams_section(section: Any, path: str) -> Mapping[str, Any]:
    """``teams``: what the Teams app package says about the app; strings, checked for shape."""
    if not isinstance(section, Mapping):
        raise ConfigError(f"{path}: teams must be a mapping (name, short_description, developer, ...)")
    out: dict[str, Any] = {}
    for key, value in section.items():
        if key == "developer":
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{path}: teams.developer must be your organisation's name, got {value!r}")
        elif key.endswith("_url"):
            if not isinstance(value, str) or not value.startswith("https://"):
                raise ConfigError(f"{path}: teams.{key} must be an https URL (Teams requires https), got {value!r}")
        elif not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{path}: teams.{key} must be text, got {value!r}")
        out[key] = value.strip()
    return MappingProxyType(out)


def _scaffolder_actions(section: Mapping[str, Any], path: str, base: Path) -> dict[str, Any]:
    """``scaffolder``'s settings for its actions, checked: folders made absolute (relative to the
    config file), ``github_hosts`` a mapping of host to an http(s) API URL, numbers positive."""
    out: dict[str, Any] = {}
    for key in ("publish_dir", "registered_dir"):
        value = section.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{path}: scaffolder.{key} must be a folder path, got {value!r}")
        out[key] = str((base / Path(value).expanduser()).resolve())
    hosts = section.get("github_hosts")
    if hosts is not None:
        if not isinstance(hosts, Mapping) or not all(
                isinstance(h, str) and isinstance(u, str) and u.startswith(("http://", "https://")) for h, u in hosts.items()):
            raise ConfigError(f"{path}: scaffolder.github_hosts must map a host to its API URL, "
                              "e.g. {ghe.example.com: https://ghe.example.com/api/v3}")
        out["github_hosts"] = {h: u.rstrip("/") for h, u in hosts.items()}
    for key in ("github_timeout", "max_publish_bytes", "max_skeleton_files", "max_skeleton_bytes"):
        value = section.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"{path}: scaffolder.{key} must be a positive number, got {value!r}")
        out[key] = value
    author = section.get("default_author")
    if author is not None:
        if not isinstance(author, Mapping) or not all(isinstance(author.get(k), str) for k in ("name", "email")):
            raise ConfigError(f"{path}: scaffolder.default_author must be {{name: ..., email: ...}}")
        out["default_author"] = {"name": author["name"], "email": author["email"]}
    return out
