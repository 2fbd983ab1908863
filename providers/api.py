"""The plugin seam of ``providers``: what an entity or on-call provider is, what it is given,
and how the installed ones are found.

A provider is a value its package names under an entry point group::

    [project.entry-points."callboard.entity_providers"]
    memo = "memo_callboard:PROVIDER"         # PROVIDER = Provider(config=MemoConfig, create=...)

``config`` is a frozen dataclass: its fields are the keys of the provider's section of
``callboard.yaml`` (``providers.memo`` for entity providers, ``oncall.<name>`` for on-call ones);
``create(config, ctx)`` builds the source from it and a :class:`ProviderContext` (the app's one
HTTP client, a clock, the catalog's limits), or returns None when it is not set up here (an
on-call service without its credential). An entity provider's name is the location type it
reads (``file``, ``url``, ``memo:...``). Built-in providers are found the same way, through
their entry points in Callboard's own ``pyproject.toml``.

Errors (:class:`ProviderConfigError`) name the key to fix: an unknown provider name, an unknown
or mistyped key of a section, a provider that cannot be imported.
"""

from __future__ import annotations

import asyncio
import dataclasses
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar, Union, get_args, get_origin, get_type_hints

from callboard.catalog.sync import LocationReader

if TYPE_CHECKING:
    from .http import Fetcher

__all__ = [
    "ENTITY_PROVIDERS",
    "ONCALL_PROVIDERS",
    "Clock",
    "EntitySource",
    "LoadedProvider",
    "Provider",
    "ProviderConfigError",
    "ProviderContext",
    "SystemClock",
    "load_providers",
    "parse_section",
]

ENTITY_PROVIDERS = "callboard.entity_providers"
ONCALL_PROVIDERS = "callboard.oncall_providers"

C = TypeVar("C")
S = TypeVar("S")

_SECRET_WORDS = ("token", "secret", "password", "key")


class ProviderConfigError(Exception):
    """A provider section (or name) in ``callboard.yaml`` is wrong; the message names the key."""


class Clock(Protocol):
    """What time it is, and a pause (tests pass a clock that does not really wait)."""

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


@dataclass(frozen=True, slots=True)
class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class EntitySource(LocationReader, Protocol):
    """Reads the locations of one type (``type``, the provider's name) for the sync engine."""

    type: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderContext:
    """What every provider is given besides its own section."""

    http: Fetcher  # the app's one HTTP client (trusted=True only for URLs the operator configured)
    clock: Clock
    max_file_bytes: int  # catalog.max_file_bytes: no catalog file is read past it
    catalog_roots: tuple[str, ...] = ()  # the folders the catalog is read from in this sync
    location_types: tuple[str, ...] = ()  # every location type an installed provider reads


@dataclass(frozen=True, slots=True, kw_only=True)
class Provider(Generic[C, S]):
    """What an entry point of ``callboard.entity_providers`` / ``callboard.oncall_providers`` names."""

    config: type[C]
    create: Callable[[C, ProviderContext], S | None]
    summary: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedProvider(Generic[C, S]):
    """An installed provider with its section parsed: ``build(ctx)`` makes the source."""

    name: str
    key: str  # where its section is (``providers.url``)
    provider: Provider[C, S]
    config: C

    def build(self, ctx: ProviderContext) -> S | None:
        return self.provider.create(self.config, ctx)


def load_providers(
    group: str,
    sections: Mapping[str, Any],
    *,
    key: str,
    found: Iterable[EntryPoint] | None = None,
) -> dict[str, LoadedProvider[Any, Any]]:
    """Every provider installed under ``group``, its section (``sections[name]``, under ``key`` in
    callboard.yaml) parsed. A section naming no installed provider is an error; a provider without
    a section gets its defaults, and is left out when its config has keys without one (it needs
    its section to work)."""
    installed = {ep.name: ep for ep in (entry_points(group=group) if found is None else found)}
    for name in sections:
        if name not in installed:
            known = ", ".join(sorted(installed)) or "none"
            raise ProviderConfigError(f"{key}.{name}: no provider named {name!r} is installed "
                                      f"(entry point group {group}; installed: {known})")
    out: dict[str, LoadedProvider[Any, Any]] = {}
    for name in sorted(installed):
        ep = installed[name]
        where = f"{key}.{name}"
        try:
            provider = ep.load()
        except Exception as exc:  # a broken plugin: name it, whatever it raised
            raise ProviderConfigError(f"{where}: the provider {ep.value} ({group}) cannot be loaded: "
                                      f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(provider, Provider):
            raise ProviderConfigError(f"{where}: the entry point {ep.value} ({group}) is not a "
                                      f"callboard.providers.api.Provider (it is {type(provider).__name__})")
        if name not in sections and _required(provider.config):
            continue
        config = parse_section(provider.config, sections.get(name), where)
        out[name] = LoadedProvider(name=name, key=where, provider=provider, config=config)
    return out


def _required(config: type[Any]) -> list[str]:
    return [f.name for f in dataclasses.fields(config)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]


def parse_section(config: type[C], raw: Any, key: str) -> C:
    """``raw`` (a mapping from callboard.yaml, or None) as the frozen dataclass ``config``."""
    if not (isinstance(config, type) and dataclasses.is_dataclass(config)):
        raise ProviderConfigError(f"{key}: the provider's config is not a dataclass ({config!r})")
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ProviderConfigError(f"{key} must be a mapping of settings, got {_shown(key, raw)}")
    fields = {f.name: f for f in dataclasses.fields(config) if f.init}
    unknown = [str(k) for k in raw if k not in fields]
    if unknown:
        known = ", ".join(f"{key}.{name}" for name in fields) or "none"
        raise ProviderConfigError(f"{key}.{sorted(unknown)[0]}: unknown key; known: {known}")
    missing = [name for name in _required(config) if name not in raw]
    if missing:
        raise ProviderConfigError(f"{key}.{missing[0]} is required")
    try:
        hints = get_type_hints(config)
    except Exception as exc:
        raise ProviderConfigError(f"{key}: the provider's config types cannot be read ({exc})") from exc
    values = {name: _coerce(value, hints.get(name, Any), f"{key}.{name}") for name, value in raw.items()}
    try:
        return config(**values)
    except (TypeError, ValueError) as exc:  # the config's own checks (__post_init__)
        raise ProviderConfigError(f"{key}: {exc}") from None


def _shown(key: str, value: Any) -> str:
    """A value in an error message; only its type when the key may hold a secret."""
    if any(word in key.rsplit(".", 1)[-1].lower() for word in _SECRET_WORDS):
        return f"a {type(value).__name__}"
    return repr(value)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _coerce(value, options[0], key)
        raise ProviderConfigError(f"{key}: the provider declares a type Callboard cannot read ({hint})")
    if origin is Literal:
        if value not in args:
            raise ProviderConfigError(f"{key} must be one of {', '.join(map(repr, args))}, got {_shown(key, value)}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ProviderConfigError(f"{key} must be true or false, got {_shown(key, value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProviderConfigError(f"{key} must be a whole number, got {_shown(key, value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ProviderConfigError(f"{key} must be a number, got {_shown(key, value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ProviderConfigError(f"{key} must be a string, got {_shown(key, value)}")
        return value
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if not isinstance(value, list | tuple):
            raise ProviderConfigError(f"{key} must be a list, got {_shown(key, value)}")
        return tuple(_coerce(item, args[0], f"{key}[{i}]") for i, item in enumerate(value))
    raise ProviderConfigError(f"{key}: the provider declares a type Callboard cannot read ({hint})")
