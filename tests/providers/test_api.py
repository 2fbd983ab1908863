"""The plugin seam: sections parsed into each provider's config (errors name the key), unknown
provider names refused at start, and a third-party provider added the way a user adds one — an
installed distribution with an entry point plus one config line — found by the real loader."""

from __future__ import annotations

from collections.abc import Iterator
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from callboard.bot.app import Callboard
from callboard.bot.config import ConfigError, Settings, load_settings
from callboard.commands.dispatch import CommandRegistry
from callboard.providers.api import ENTITY_PROVIDERS, ProviderConfigError, load_providers, parse_section


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    base_url: str
    timeout: float = 5.0
    retries: int = 2
    verify: bool = True
    labels: tuple[str, ...] = ()
    api_token: str | None = None


@pytest.mark.parametrize(("raw", "message"), [
    ({}, r"providers\.x\.base_url is required"),
    ({"base_url": "u", "timout": 1}, r"providers\.x\.timout: unknown key; known: providers\.x\.base_url, "),
    ({"base_url": 3}, r"providers\.x\.base_url must be a string, got 3"),
    ({"base_url": "u", "timeout": "fast"}, r"providers\.x\.timeout must be a number, got 'fast'"),
    ({"base_url": "u", "retries": True}, r"providers\.x\.retries must be a whole number"),
    ({"base_url": "u", "verify": "yes"}, r"providers\.x\.verify must be true or false"),
    ({"base_url": "u", "labels": "a"}, r"providers\.x\.labels must be a list"),
    ({"base_url": "u", "labels": ["a", 2]}, r"providers\.x\.labels\[1\] must be a string"),
    ({"base_url": "u", "api_token": 12345}, r"providers\.x\.api_token must be a string, got a int$"),
    (["base_url"], r"providers\.x must be a mapping"),
])
def test_bad_sections_name_the_key(raw: object, message: str) -> None:
    with pytest.raises(ProviderConfigError, match=message):
        parse_section(Sample, raw, "providers.x")


def test_a_section_becomes_the_config_value() -> None:
    got = parse_section(Sample, {"base_url": "u", "timeout": 2, "labels": ["a"], "api_token": None}, "providers.x")
    assert got == Sample(base_url="u", timeout=2.0, labels=("a",))
    assert isinstance(got.timeout, float)


def test_builtin_checks_and_unknown_names_fail_at_start(tmp_path: Path) -> None:
    with pytest.raises(ProviderConfigError, match=r"providers\.url: timeout must be a positive number"):
        load_providers(ENTITY_PROVIDERS, {"url": {"timeout": 0}}, key="providers")
    with pytest.raises(ProviderConfigError, match=r"providers\.gitlab: no provider named 'gitlab' is installed.*file, url"):
        load_providers(ENTITY_PROVIDERS, {"gitlab": {}}, key="providers")
    loaded = load_providers(ENTITY_PROVIDERS, {"file": {"workers": 2}}, key="providers")
    assert {"file", "url"} <= set(loaded) and loaded["file"].config.workers == 2


async def test_unknown_provider_in_callboard_yaml_stops_the_app(tmp_path: Path) -> None:
    cfg = tmp_path / "callboard.yaml"
    cfg.write_text("providers:\n  gitlab:\n    base_url: https://gitlab.example\n")
    settings = load_settings(config_file=str(cfg), env={"CALLBOARD_DATA_DIR": str(tmp_path)})
    with pytest.raises(ConfigError, match=r"providers\.gitlab: no provider named 'gitlab'"):
        await Callboard.open(settings, CommandRegistry.from_entry_points())
    cfg.write_text("oncall:\n  pagerdty: {}\n")  # a typo of a built-in on-call provider
    settings = load_settings(config_file=str(cfg), env={"CALLBOARD_DATA_DIR": str(tmp_path)})
    with pytest.raises(ConfigError, match=r"oncall\.pagerdty: no provider named 'pagerdty'"):
        await Callboard.open(settings, CommandRegistry.from_entry_points())
    cfg.write_text("providers:\n  url: [1]\n")
    with pytest.raises(ConfigError, match=r"providers\.url must be a mapping"):
        load_settings(config_file=str(cfg), env={})


PLUGIN = '''
"""A third-party entity provider: locations of type memo are entities written in its config."""
from __future__ import annotations

from dataclasses import dataclass

from callboard.catalog.process import process_documents, split_documents
from callboard.catalog.sync import LocationSpec, ReadOutcome, digest, fingerprint
from callboard.providers.api import Provider, ProviderContext


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoConfig:
    owner: str
    greeting: str = "hello"


class MemoSource:
    type = "memo"

    def __init__(self, config, ctx):
        self.config = config
        self.ctx = ctx

    def _text(self, name):
        return (f"apiVersion: backstage.io/v1alpha1\\nkind: Component\\nmetadata:\\n  name: {name}\\n"
                f"  description: {self.config.greeting}\\nspec:\\n  type: service\\n  lifecycle: production\\n"
                f"  owner: {self.config.owner}\\n")

    async def read(self, spec, deps):
        content = self._text(spec.target).encode()
        return ReadOutcome(content=content, digest=digest(content), fingerprint=fingerprint(digest(content)))

    async def process(self, spec, content, known):
        docs = split_documents(content.decode(), origin=spec.key)
        yield list(process_documents(docs, file=spec.key, location=spec.key, origin=spec.origin, reader=None,
                                     known=known))

    def deps_read(self, spec):
        return ()

    async def dep_contents(self, deps):
        return []

    def resolve(self, parent, target):
        return LocationSpec(type=target.type or "memo", target=target.target)


PROVIDER = Provider(config=MemoConfig, create=MemoSource, summary="entities from memory")
'''


@pytest.fixture
def memo_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``pip install callboard-memo``, as far as importlib.metadata can tell: a module and a
    dist-info folder with an entry point, on sys.path."""
    site = tmp_path / "site"
    (site / "callboard_memo-1.0.dist-info").mkdir(parents=True)
    (site / "callboard_memo.py").write_text(PLUGIN)
    (site / "callboard_memo-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: callboard-memo\nVersion: 1.0\n")
    (site / "callboard_memo-1.0.dist-info" / "entry_points.txt").write_text(
        "[callboard.entity_providers]\nmemo = callboard_memo:PROVIDER\n")
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("callboard_memo", None)


async def test_a_third_party_provider_is_a_pip_install_and_a_config_line(
        tmp_path: Path, memo_distribution: Path) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "catalog-info.yaml").write_text(textwrap.dedent("""\
        apiVersion: backstage.io/v1alpha1
        kind: Location
        metadata:
          name: more
        spec:
          type: memo
          target: from-a-location
        """))
    cfg = tmp_path / "callboard.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        database:
          url: sqlite:///{tmp_path / 'cb.db'}
        catalog:
          locations:
            - ./catalog
            - {{type: memo, target: from-config}}
        providers:
          memo:
            owner: team-a
            greeting: hi from a plugin
        """))
    settings = load_settings(config_file=str(cfg), env={"CALLBOARD_DATA_DIR": str(tmp_path / "data")})
    app = await Callboard.open(settings, CommandRegistry.from_entry_points())
    try:
        assert app.entity_providers["memo"].config.owner == "team-a"
        summary = await app.sync(settings.catalog)
        assert not summary.errors, summary.errors
        for name in ("from-config", "from-a-location"):
            entity = await app.catalog.get(f"component:default/{name}")
            assert entity is not None and entity.data["metadata"]["description"] == "hi from a plugin"
    finally:
        await app.close()
    cfg.write_text(cfg.read_text().replace("    owner: team-a\n", ""))
    settings = load_settings(config_file=str(cfg), env={"CALLBOARD_DATA_DIR": str(tmp_path / "data")})
    with pytest.raises(ConfigError, match=r"providers\.memo\.owner is required"):
        await Callboard.open(settings, CommandRegistry.from_entry_points())
