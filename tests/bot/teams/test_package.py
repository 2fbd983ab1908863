"""``callboard teams-package``: a zip Teams accepts (the manifest checked against Microsoft's schema),
its icons, and one line naming the key to set for everything Teams would refuse."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from callboard.bot.cli import cli
from callboard.bot.config import Settings
from callboard.bot.teams.protocol import SEARCH_COMMAND_ID
from callboard.bot.teams.package import (
    MANIFEST_VERSION, SCHEMA_URL, AppPackage, PackageError, build_package, encode_png,
)
from callboard.commands.api import CommandSpec, Reply
from callboard.commands.dispatch import CommandRegistry
from tests.conftest import REFERENCE

PLATFORMS = REFERENCE.parent / "platforms"
APP_ID = "5b0c3a1e-9f2d-4c7a-8e61-0d4f2b7a9c13"
TYPICAL = """\
teams:
  developer: Acme Platform Team
  website_url: https://platform.acme.example.com
  privacy_url: https://platform.acme.example.com/privacy
  terms_url: https://platform.acme.example.com/terms
server:
  public_url: https://callboard.acme.io/portal
"""
DEVELOPER = {"developer": "Acme", "website_url": "https://acme.io", "privacy_url": "https://acme.io/privacy",
             "terms_url": "https://acme.io/terms"}
#: variables the tests set themselves: whatever the shell running them has is removed
_OURS = ("MICROSOFT_APP_ID", "CALLBOARD_PUBLIC_URL", "CALLBOARD_CONFIG")


# -- helpers ---------------------------------------------------------------------------------------

def _invoke(tmp_path: Path, config: str | None, *args: str, app_id: str | None = APP_ID,
            **env: str) -> Any:
    """Run ``callboard teams-package`` in-process from ``tmp_path`` with only the variables given."""
    options = list(args)
    if config is not None:
        (tmp_path / "callboard.yaml").write_text(config)
        options += ["--config", str(tmp_path / "callboard.yaml")]
    environ: dict[str, str | None] = {name: None for name in _OURS}
    environ.update({"MICROSOFT_APP_ID": app_id, **env})
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        return CliRunner().invoke(cli, ["teams-package", *options], env=environ)
    finally:
        os.chdir(cwd)


def _zip(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _png(data: bytes) -> tuple[int, int, list[tuple[int, int, int, int]]]:
    """Width, height and RGBA pixels of an 8-bit RGBA PNG, every chunk's CRC checked."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        chunks.append((kind, body))
        pos += 12 + length
    assert [k for k, _ in chunks][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, color_type, interlace) == (8, 6, 0)  # 8-bit RGBA, not interlaced
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = width * 4 + 1
    assert len(raw) == stride * height
    pixels = []
    for y in range(height):
        row = raw[y * stride:(y + 1) * stride]
        assert row[0] == 0  # the encoder writes every row unfiltered
        pixels += [tuple(row[1 + x * 4:5 + x * 4]) for x in range(width)]
    return width, height, pixels  # type: ignore[return-value]


async def _noop(inv: Any, deps: Any) -> Reply:
    raise AssertionError("never run")


def _spec(name: str, summary: str = "Does a thing") -> CommandSpec:
    return CommandSpec(name=name, summary=summary, usage=name, examples=(name,), run=_noop)


def _settings(**teams: str) -> Settings:
    return Settings(teams_app_id=APP_ID, public_url="https://callboard.acme.io", teams_app={**DEVELOPER, **teams})


# -- the package -----------------------------------------------------------------------------------

@pytest.mark.reference
def test_package_from_a_typical_config_validates_against_the_declared_schema(tmp_path: Path) -> None:
    done = _invoke(tmp_path, TYPICAL)
    assert done.exit_code == 0, done.output
    out = tmp_path / "callboard-teams.zip"
    assert f"Wrote {out}" in done.stdout
    assert "Upload it in Teams: Apps → Manage your apps → Upload an app (or in the Teams admin center" in done.stdout
    files = _zip(out)
    assert sorted(files) == ["color.png", "manifest.json", "outline.png"]  # at the zip's root, nothing else
    manifest = json.loads(files["manifest.json"])
    schema = json.loads((PLATFORMS / f"teams-manifest-{MANIFEST_VERSION}.schema.json").read_text())
    assert schema["properties"]["manifestVersion"]["const"] == manifest["manifestVersion"] == MANIFEST_VERSION
    assert manifest["$schema"] == SCHEMA_URL and f"/v{MANIFEST_VERSION}/" in SCHEMA_URL
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).validate(manifest)

    assert manifest["id"] == APP_ID and manifest["version"] == "1.0.0"
    assert manifest["developer"] == {"name": "Acme Platform Team", "websiteUrl": "https://platform.acme.example.com",
                                     "privacyUrl": "https://platform.acme.example.com/privacy",
                                     "termsOfUseUrl": "https://platform.acme.example.com/terms"}
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}
    (bot,) = manifest["bots"]
    assert bot["botId"] == APP_ID
    assert bot["scopes"] == ["personal", "team", "groupChat"]
    assert bot["supportsFiles"] is False and bot["isNotificationOnly"] is False
    assert [cl["scopes"] for cl in bot["commandLists"]] == [["personal"], ["team"], ["groupChat"]]
    installed = {s.name: s.summary for s in CommandRegistry.from_entry_points().specs}
    for command_list in bot["commandLists"]:
        assert len(command_list["commands"]) == min(10, len(installed))
        for command in command_list["commands"]:
            assert installed[command["title"]] == command["description"]
        assert {"owner", "oncall", "docs", "runbook", "find", "create", "help"} <= {
            c["title"] for c in command_list["commands"]}
    (extension,) = manifest["composeExtensions"]
    assert extension["botId"] == APP_ID
    (search,) = extension["commands"]
    assert search["id"] == SEARCH_COMMAND_ID and search["type"] == "query" and search["initialRun"] is False
    assert [p["name"] for p in search["parameters"]] == ["query"]
    assert extension["messageHandlers"] == [{"type": "link", "value": {"domains": ["callboard.acme.io"]}}]
    assert manifest["validDomains"] == ["callboard.acme.io"]
    assert manifest["permissions"] == ["identity", "messageTeamMembers"]


@pytest.mark.reference
def test_the_manifest_keeps_to_the_limits_of_1_19_too() -> None:
    """Only fields and lengths 1.19 also allows: an admin whose Teams lags can change the version."""
    package = build_package(_settings(), CommandRegistry.from_entry_points().specs)
    manifest = dict(package.manifest)
    manifest.update({"manifestVersion": "1.19",
                     "$schema": "https://developer.microsoft.com/json-schemas/teams/v1.19/MicrosoftTeams.schema.json"})
    schema = json.loads((PLATFORMS / "teams-manifest-1.19.schema.json").read_text())
    jsonschema.Draft4Validator(schema).validate(manifest)


def test_the_package_is_the_same_bytes_each_time_and_overwrites_a_file(tmp_path: Path) -> None:
    (tmp_path / "teams.zip").write_bytes(b"old")
    first = _invoke(tmp_path, TYPICAL, "--out", "teams.zip")
    assert first.exit_code == 0, first.output
    once = (tmp_path / "teams.zip").read_bytes()
    again = _invoke(tmp_path, TYPICAL, "--out", "teams.zip")
    assert again.exit_code == 0 and (tmp_path / "teams.zip").read_bytes() == once
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".callboard-teams-")] == []


def test_config_values_reach_the_manifest(tmp_path: Path) -> None:
    config = TYPICAL.replace("teams:\n", """teams:
  name: DevPortal
  short_description: Ask the portal
  full_description: "First paragraph.\\n\\n\\n\\nSecond  paragraph."
  accent_color: "#ff8800"
  domain: Portal.Acme.IO
  app_version: 2.10.0
""", 1)
    done = _invoke(tmp_path, config)
    assert done.exit_code == 0, done.output
    manifest = json.loads(_zip(tmp_path / "callboard-teams.zip")["manifest.json"])
    assert manifest["name"] == {"short": "DevPortal", "full": "DevPortal"}
    assert manifest["description"] == {"short": "Ask the portal", "full": "First paragraph.\n\nSecond paragraph."}
    assert manifest["accentColor"] == "#FF8800"
    assert manifest["version"] == "2.10.0"
    # teams.domain wins over server.public_url's host
    assert manifest["validDomains"] == ["portal.acme.io"]
    assert manifest["composeExtensions"][0]["messageHandlers"][0]["value"]["domains"] == ["portal.acme.io"]


def test_the_domain_comes_from_the_public_url_set_in_the_environment(tmp_path: Path) -> None:
    config = TYPICAL.replace("server:\n  public_url: https://callboard.acme.io/portal\n", "")
    done = _invoke(tmp_path, config, CALLBOARD_PUBLIC_URL="https://bot.example.org:8443/x")
    assert done.exit_code == 0, done.output
    assert json.loads(_zip(tmp_path / "callboard-teams.zip")["manifest.json"])["validDomains"] == ["bot.example.org"]


# -- icons -----------------------------------------------------------------------------------------

def test_icons_are_pngs_of_the_sizes_teams_asks_for() -> None:
    files = build_package(_settings(), []).files
    width, height, color = _png(files["color.png"])
    assert (width, height) == (192, 192)
    assert {p[3] for p in color} == {255}  # full colour: nothing see-through
    assert color[0] == (0x1D, 0x35, 0x57, 255)  # the accent colour behind the mark
    assert color[96 * 192 + 96] == (255, 255, 255, 255)  # the mark's dot, white on a dark colour
    width, height, outline = _png(files["outline.png"])
    assert (width, height) == (32, 32)
    # Teams' rule for the outline: white, and transparent; edges smoothed only with alpha
    assert {p[:3] for p in outline} == {(255, 255, 255)}
    alphas = [p[3] for p in outline]
    assert alphas[0] == alphas[-1] == 0 and alphas[16 * 32 + 16] == 255
    assert 0.15 < sum(a == 255 for a in alphas) / len(alphas) < 0.6  # a mark, not a blank or a filled square


def test_the_mark_is_dark_on_a_light_accent_colour() -> None:
    _, _, color = _png(build_package(_settings(accent_color="#F4F1DE"), []).files["color.png"])
    assert color[0] == (0xF4, 0xF1, 0xDE, 255)
    assert color[96 * 192 + 96] == (31, 31, 31, 255)


def test_the_png_encoder_checks_its_input() -> None:
    assert _png(encode_png(2, 1, bytes([1, 2, 3, 4, 5, 6, 7, 8]))) == (2, 1, [(1, 2, 3, 4), (5, 6, 7, 8)])
    with pytest.raises(ValueError, match="2x2 RGBA needs 16 bytes"):
        encode_png(2, 2, b"\x00" * 8)


# -- commands --------------------------------------------------------------------------------------

def test_at_most_ten_commands_the_most_useful_first() -> None:
    builtins = ["help", "owner", "find", "info", "deps", "team", "mine", "create", "docs", "oncall", "runbook"]
    specs = [_spec(n) for n in builtins] + [_spec("zz-plugin"), _spec("x" * 33), _spec("aa", "word " * 40)]
    package = build_package(_settings(), specs)
    listed = package.manifest["bots"][0]["commandLists"][0]["commands"]
    assert [c["title"] for c in listed] == ["owner", "oncall", "docs", "runbook", "find", "create", "info", "team",
                                            "mine", "help"]
    assert set(package.left_out) == {"deps", "zz-plugin", "aa", "x" * 33}

    few = build_package(_settings(), [_spec("owner"), _spec("aa", "word " * 40), _spec("x" * 33)])
    listed = few.manifest["bots"][0]["commandLists"][0]["commands"]
    assert [c["title"] for c in listed] == ["owner", "aa"]  # a name Teams cannot show is left out
    assert len(listed[1]["description"]) == 128 and listed[1]["description"].endswith("…")
    assert few.left_out == ("x" * 33,)


def test_left_out_commands_are_named_in_the_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    many = [_spec(f"cmd{i:02}") for i in range(12)]
    monkeypatch.setattr(CommandRegistry, "from_entry_points", classmethod(lambda cls, *a, **k: CommandRegistry(many)))
    done = _invoke(tmp_path, TYPICAL)
    assert done.exit_code == 0, done.output
    assert "not listed (they still work when typed): cmd10, cmd11." in done.stdout


def test_control_characters_in_a_summary_do_not_reach_the_manifest() -> None:
    package = build_package(_settings(), [_spec("owner", "Who\x1b[31m owns\u202e it\n  now")])
    assert package.manifest["bots"][0]["commandLists"][0]["commands"][0]["description"] == "Who[31m owns it now"


# -- errors: exit 2, one line naming the key --------------------------------------------------------

_DEV_LINES = "".join(f"  {k}: {v}\n" for k, v in DEVELOPER.items())
_WITH_URL = "server:\n  public_url: https://callboard.acme.io\n"


@pytest.mark.parametrize(("config", "app_id", "expected"), [
    pytest.param(TYPICAL, None, ["MICROSOFT_APP_ID is not set"], id="app-id-unset"),
    pytest.param(TYPICAL, "my-bot", ["MICROSOFT_APP_ID must be", "GUID", "'my-bot'"], id="app-id-not-a-guid"),
    pytest.param(f"teams:\n{_DEV_LINES}", APP_ID, ["set teams.domain", "server.public_url"], id="no-domain"),
    pytest.param(f"teams:\n{_DEV_LINES}server:\n  public_url: http://localhost:3000\n", APP_ID,
                 ["server.public_url", "'localhost'", "not a public domain"], id="localhost-public-url"),
    pytest.param(f"teams:\n{_DEV_LINES}  domain: 10.1.2.3\n", APP_ID, ["teams.domain", "IP address"], id="ip-domain"),
    pytest.param(f"teams:\n{_DEV_LINES}server:\n  public_url: https://[::1]:3000\n", APP_ID,
                 ["server.public_url", "IP address"], id="ipv6-public-url"),
    pytest.param(f"teams:\n{_DEV_LINES}  domain: callboard\n", APP_ID, ["teams.domain", "not a public domain"],
                 id="single-label-domain"),
    pytest.param(f"teams:\n{_DEV_LINES}  domain: bot.corp.internal\n", APP_ID, ["teams.domain", "not a public"],
                 id="internal-domain"),
    pytest.param(f"teams:\n{_DEV_LINES}  domain: https://callboard.acme.io\n", APP_ID,
                 ["teams.domain must be a host name", "no scheme"], id="domain-with-scheme"),
    pytest.param(f"teams:\n{_DEV_LINES}  domain: bad_name.acme.io\n", APP_ID, ["teams.domain", "not a host name"],
                 id="domain-not-a-host"),
    pytest.param(f"teams:\n  website_url: https://acme.io\n{_WITH_URL}", APP_ID,
                 ["set teams.developer, teams.privacy_url and teams.terms_url", "Teams requires"],
                 id="developer-missing"),
    pytest.param(f"teams:\n  developer: Acme\n  website_url: https://a.io\n  privacy_url: https://a.io/p\n{_WITH_URL}",
                 APP_ID, ["set teams.terms_url:"], id="terms-missing"),
    pytest.param(TYPICAL.replace("https://platform.acme.example.com/privacy", "http://acme.io/privacy"), APP_ID,
                 ["teams.privacy_url must be an https URL"], id="privacy-url-http"),
    pytest.param(TYPICAL.replace("https://platform.acme.example.com/terms", "http://acme.io/terms"), APP_ID,
                 ["teams.terms_url must be an https URL"], id="terms-url-http"),
    pytest.param(TYPICAL.replace("website_url: https://platform", "website_url: http://platform"), APP_ID,
                 ["teams.website_url must be an https URL"], id="website-url-http"),
    pytest.param(TYPICAL.replace("teams:\n", "teams:\n  name: The Platform Team's Callboard Bot\n"), APP_ID,
                 ["teams.name is 33 characters; Teams allows at most 30"], id="name-too-long"),
    pytest.param(TYPICAL.replace("Acme Platform Team", "Acme Developer Platform Engineering"), APP_ID,
                 ["teams.developer is 35 characters; Teams allows at most 32"], id="developer-too-long"),
    pytest.param(TYPICAL.replace("teams:\n", f"teams:\n  short_description: {'x' * 81}\n"), APP_ID,
                 ["teams.short_description is 81 characters; Teams allows at most 80"], id="short-description"),
    pytest.param(TYPICAL.replace("teams:\n", f"teams:\n  full_description: {'x' * 4001}\n"), APP_ID,
                 ["teams.full_description is 4001 characters"], id="full-description"),
    pytest.param(TYPICAL.replace("teams:\n", "teams:\n  accent_color: blue\n"), APP_ID,
                 ["teams.accent_color must be a colour written #RRGGBB", "'blue'"], id="accent-color-name"),
    pytest.param(TYPICAL.replace("teams:\n", "teams:\n  accent_color: '#12345'\n"), APP_ID,
                 ["teams.accent_color", "'#12345'"], id="accent-color-short"),
    pytest.param(TYPICAL.replace("teams:\n", "teams:\n  app_version: '1.0'\n"), APP_ID,
                 ["teams.app_version must be three numbers like 1.0.0", "'1.0'"], id="version-two-numbers"),
    pytest.param(TYPICAL.replace("teams:\n", "teams:\n  app_version: 1.02.0\n"), APP_ID,
                 ["teams.app_version"], id="version-leading-zero"),
])
def test_each_problem_is_one_line_naming_what_to_set(tmp_path: Path, config: str, app_id: str | None,
                                                     expected: list[str]) -> None:
    done = _invoke(tmp_path, config, app_id=app_id)
    assert done.exit_code == 2, done.output
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    for part in expected:
        assert part in lines[0]
    assert not (tmp_path / "callboard-teams.zip").exists()


def test_out_must_be_a_file_in_a_folder_that_exists(tmp_path: Path) -> None:
    (tmp_path / "packages").mkdir()
    done = _invoke(tmp_path, TYPICAL, "--out", "packages")
    assert done.exit_code == 2
    assert done.stderr.splitlines() == [f"Error: --out 'packages' is a folder; name the zip file to write, e.g. "
                                        f"--out {Path('packages') / 'callboard-teams.zip'}"]
    assert list((tmp_path / "packages").iterdir()) == []
    done = _invoke(tmp_path, TYPICAL, "--out", "nowhere/teams.zip")
    assert done.exit_code == 2
    assert done.stderr.splitlines() == ["Error: --out 'nowhere/teams.zip': the folder 'nowhere' does not exist"]


def test_a_url_given_to_the_builder_directly_is_checked_too() -> None:
    with pytest.raises(PackageError, match="teams.terms_url must be an https URL"):
        build_package(_settings(terms_url="http://acme.io/terms"), [])


def test_the_real_process_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "callboard.yaml").write_text(TYPICAL)
    environ = {k: v for k, v in os.environ.items() if k not in _OURS}
    environ["MICROSOFT_APP_ID"] = "not-a-guid"
    done = subprocess.run([sys.executable, "-m", "callboard.bot.cli", "teams-package", "--config", "callboard.yaml"],
                          capture_output=True, text=True, env=environ, cwd=tmp_path, timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("Error: MICROSOFT_APP_ID must be")
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_app_package_zip_holds_what_it_was_given() -> None:
    package = AppPackage(manifest={}, files={"manifest.json": b"{}", "color.png": b"c"})
    with zipfile.ZipFile(io.BytesIO(package.zip_bytes())) as archive:
        assert [(i.filename, i.date_time) for i in archive.infolist()] == [
            ("manifest.json", (1980, 1, 1, 0, 0, 0)), ("color.png", (1980, 1, 1, 0, 0, 0))]
        assert archive.read("color.png") == b"c"
