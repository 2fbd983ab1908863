"""``callboard teams-package``: the zip an admin uploads to Teams (``manifest.json`` and two icons).

The manifest is built from ``Settings`` (``MICROSOFT_APP_ID``, the ``teams`` section,
``server.public_url``) and the installed commands; every value Teams would refuse is a
``PackageError`` naming the key to set, so what is written can be uploaded. The icons are drawn
here and written by a small PNG encoder: no imaging dependency for two pictures.
"""

from __future__ import annotations

import io
import ipaddress
import json
import math
import os
import re
import struct
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from callboard.commands.api import CommandSpec
from callboard.commands.dispatch import CommandRegistry

from ..config import ConfigError, Settings, load_settings
from .protocol import SEARCH_COMMAND_ID, SEARCH_PARAMETER

__all__ = [
    "DEFAULT_OUT", "MANIFEST_VERSION", "SCHEMA_URL", "AppPackage",
    "PackageError", "build_package", "color_icon", "encode_png", "outline_icon", "teams_package", "write_package",
]

#: 1.30 is the newest generally available manifest version (docs/teams.md says why not an older one)
MANIFEST_VERSION = "1.30"
SCHEMA_URL = f"https://developer.microsoft.com/json-schemas/teams/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json"
#: the message extension's search command and its one parameter, as ``composeExtension/query`` names them
DEFAULT_OUT = "callboard-teams.zip"
BOT_SCOPES = ("personal", "team", "groupChat")

_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_VERSION = re.compile(r"(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)")
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: names that never resolve on the public internet (RFC 6761, RFC 8375, ICANN's .internal)
_PRIVATE_SUFFIXES = ("localhost", "local", "internal", "test", "invalid", "example", "home.arpa")

#: Teams' limits (the stricter of manifest 1.19 and 1.30, so a package stays valid for both)
_NAME_MAX = 30
_DEVELOPER_MAX = 32
_SHORT_MAX = 80
_FULL_MAX = 4000
_URL_MAX = 2048
_COMMAND_TITLE_MAX = 32
_COMMAND_DESCRIPTION_MAX = 128
_COMMANDS_MAX = 10
#: which commands Teams lists when more than ten are installed: the Slack manifest's slash
#: commands first, then the rest; commands left out still work when typed
_PREFERRED = ("owner", "oncall", "docs", "runbook", "find", "create", "info", "team", "mine", "help", "deps")

_DEFAULT_NAME = "Callboard"
_DEFAULT_SHORT = "Your developer portal in chat: owners, on-call, runbooks, docs and templates"
_DEFAULT_FULL = (
    "Callboard answers questions about your software catalog where you already talk: who owns a service "
    "and how to reach them, who is on call right now, a service's runbook inline, a search over all "
    "TechDocs, what depends on what, and a form that creates a new service from a Software Template. "
    "Mention @Callboard in a channel or group chat, or chat with it directly; type help for the commands. "
    "Search the catalog from the message extension to share an entity's card, and links to Callboard's "
    "docs pages unfurl into that card."
)
_DEFAULT_ACCENT = "#1D3557"  # the Slack app's background colour
_DEFAULT_VERSION = "1.0.0"


class PackageError(Exception):
    """The package cannot be written as asked; the message names the key or option to change."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AppPackage:
    manifest: Mapping[str, Any]
    #: the zip's files by name, ``manifest.json`` included
    files: Mapping[str, bytes]
    #: installed commands the manifest does not list (over Teams' ten, or a name too long)
    left_out: tuple[str, ...] = ()

    def zip_bytes(self) -> bytes:
        """The zip, byte for byte the same for the same package (fixed timestamps, fixed order)."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in self.files.items():
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, data)
        return buffer.getvalue()


def build_package(settings: Settings, commands: Iterable[CommandSpec]) -> AppPackage:
    """The app package for ``settings`` listing ``commands``; ``PackageError`` for what Teams would refuse."""
    where = _where(settings)
    app = settings.teams_app
    bot_id = _bot_id(settings.teams_app_id)
    domain = _domain(settings, where)
    version = app.get("app_version", _DEFAULT_VERSION)
    if not _VERSION.fullmatch(version):
        raise PackageError(f"{where}: teams.app_version must be three numbers like 1.0.0 (raise it for each "
                           f"changed package you upload), got {_shown(version)}")
    accent = app.get("accent_color", _DEFAULT_ACCENT)
    if not _COLOR.fullmatch(accent):
        raise PackageError(f'{where}: teams.accent_color must be a colour written #RRGGBB, e.g. "{_DEFAULT_ACCENT}" '
                           f"(quoted: YAML reads # as a comment), got {_shown(accent)}")
    name = _text(app.get("name", _DEFAULT_NAME))
    short = _text(app.get("short_description", _DEFAULT_SHORT))
    full = _text(app.get("full_description", _DEFAULT_FULL), keep_newlines=True)
    developer = _developer(app, where)
    for key, value, limit in (("teams.name", name, _NAME_MAX), ("teams.short_description", short, _SHORT_MAX),
                              ("teams.full_description", full, _FULL_MAX)):
        if len(value) > limit:
            raise PackageError(f"{where}: {key} is {len(value)} characters; Teams allows at most {limit}")
    listed, left_out = _command_list(commands)
    manifest: dict[str, Any] = {
        "$schema": SCHEMA_URL,
        "manifestVersion": MANIFEST_VERSION,
        "version": version,
        # the app id is the bot's: one id to look up in the Azure portal and the Teams admin center
        "id": bot_id,
        "developer": developer,
        "name": {"short": name, "full": name},
        "description": {"short": short, "full": full},
        "icons": {"color": "color.png", "outline": "outline.png"},
        "accentColor": accent.upper(),
        "bots": [{
            "botId": bot_id,
            "scopes": list(BOT_SCOPES),
            "supportsFiles": False,
            "isNotificationOnly": False,
            "commandLists": [{"scopes": [scope], "commands": listed} for scope in BOT_SCOPES],
        }],
        "composeExtensions": [{
            "botId": bot_id,
            "commands": [{
                "id": SEARCH_COMMAND_ID,
                "type": "query",
                "title": "Search the catalog",
                "description": "Find a service, API, team or person and share its card",
                "initialRun": False,
                "parameters": [{
                    "name": SEARCH_PARAMETER,
                    "title": "Entity",
                    "description": "A name or title, or part of one (typos are fine)",
                    "inputType": "text",
                }],
            }],
            # links to Callboard's docs pages unfurl into the entity's card (composeExtension/queryLink)
            "messageHandlers": [{"type": "link", "value": {"domains": [domain]}}],
        }],
        "permissions": ["identity", "messageTeamMembers"],
        "validDomains": [domain],
    }
    files = {
        "manifest.json": (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
        "color.png": color_icon(accent),
        "outline.png": outline_icon(),
    }
    return AppPackage(manifest=manifest, files=files, left_out=left_out)


def write_package(package: AppPackage, out: Path) -> Path:
    """Write the zip to ``out`` (replacing a file, never a folder); the path written, absolute."""
    if out.is_dir():
        raise PackageError(f"--out {_shown(str(out))} is a folder; name the zip file to write, "
                           f"e.g. --out {out / DEFAULT_OUT}")
    parent = out.parent
    if not parent.is_dir():
        raise PackageError(f"--out {_shown(str(out))}: the folder {_shown(str(parent))} does not exist")
    data = package.zip_bytes()
    # written beside the target and renamed over it: a failed write leaves no half zip
    try:
        fd, tmp = tempfile.mkstemp(prefix=".callboard-teams-", suffix=".zip", dir=parent)
    except OSError as exc:
        raise PackageError(f"--out {_shown(str(out))}: cannot write there ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise PackageError(f"--out {_shown(str(out))}: cannot write there ({exc.strerror})") from None
    return out.resolve()


@click.command("teams-package")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True,
              help="The zip to write.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="callboard.yaml to read (default: $CALLBOARD_CONFIG).")
def teams_package(out: Path, config_file: str | None) -> None:
    """Write the Microsoft Teams app package: the zip an admin uploads to Teams.

    It declares the bot (MICROSOFT_APP_ID) with its commands, the catalog search message
    extension and docs link unfurling for the public domain of `callboard serve`; the `teams`
    section of the config file names the app and its developer. Exit code 2 when something
    Teams requires is missing or wrong (the key to set is named).
    """
    try:
        settings = load_settings(config_file=config_file)
        package = build_package(settings, CommandRegistry.from_entry_points().specs)
        written = write_package(package, out)
    except (ConfigError, PackageError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    manifest = package.manifest
    domain = manifest["validDomains"][0]
    click.echo(f"Wrote {written}: {manifest['name']['short']} {manifest['version']}, bot {manifest['id']}, "
               f"domain {domain}, manifest {MANIFEST_VERSION}.")
    if package.left_out:
        click.echo(f"Teams lists at most {_COMMANDS_MAX} commands; not listed (they still work when typed): "
                   f"{', '.join(package.left_out)}.")
    click.echo("Upload it in Teams: Apps → Manage your apps → Upload an app (or in the Teams admin center: "
               "Teams apps → Manage apps → Upload new app). For a changed package, raise teams.app_version first.")


def _where(settings: Settings) -> str:
    return settings.config_file or "the config file (--config or CALLBOARD_CONFIG)"


def _shown(value: object) -> str:
    """A value quoted in an error: one line, inert, not a wall of text."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _text(value: str, *, keep_newlines: bool = False) -> str:
    """Whitespace collapsed (paragraph breaks kept where asked), control characters dropped."""
    if keep_newlines:
        lines = (" ".join(_CONTROL.sub("", line).split()) for line in value.replace("\r\n", "\n").split("\n"))
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return " ".join(_CONTROL.sub("", value).split())


def _bot_id(app_id: str | None) -> str:
    if not app_id:
        raise PackageError("MICROSOFT_APP_ID is not set: the package names the bot by its Microsoft app id "
                           "(the Azure Bot's Microsoft App ID, a GUID); set it in the environment")
    if not _GUID.fullmatch(app_id):
        raise PackageError("MICROSOFT_APP_ID must be the Azure Bot's Microsoft App ID, a GUID like "
                           f"00000000-0000-0000-0000-000000000000, got {_shown(app_id)}")
    return app_id


def _domain(settings: Settings, where: str) -> str:
    """The public host name Teams links to the bot: ``teams.domain``, else ``server.public_url``'s host."""
    configured = settings.teams_app.get("domain")
    if configured is not None:
        key, raw = "teams.domain", configured
        if any(c in raw for c in "/:?#@ "):
            raise PackageError(f"{where}: teams.domain must be a host name such as callboard.example.com "
                               f"(no scheme, path or port), got {_shown(raw)}")
    elif settings.public_url is not None:
        key = "server.public_url"
        try:
            raw = urlsplit(settings.public_url).hostname or ""
        except ValueError:  # an unbalanced [ in the host
            raw = ""
    else:
        raise PackageError(f"{where}: set teams.domain (the public host name of `callboard serve`, e.g. "
                           "callboard.example.com) or server.public_url (or CALLBOARD_PUBLIC_URL); Teams links "
                           "the bot and its docs links to that domain")
    fix = ("set teams.domain or server.public_url (CALLBOARD_PUBLIC_URL) to the public domain of `callboard "
           "serve` (for local development, a tunnel gives one)")
    host = raw.strip().rstrip(".").lower()
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        raise PackageError(f"{where}: {key} gives the IP address {_shown(host)}; Teams needs a public domain "
                           f"name: {fix}")
    wildcard = host.startswith("*.")
    try:
        ascii_host = (host[2:] if wildcard else host).encode("idna").decode("ascii")
    except UnicodeError:
        ascii_host = ""
    labels = ascii_host.split(".")
    if not ascii_host or not all(_LABEL.fullmatch(label) for label in labels):
        raise PackageError(f"{where}: {key} gives {_shown(raw)}, which is not a host name; {fix}")
    if len(labels) < 2 or any(ascii_host == s or ascii_host.endswith("." + s) for s in _PRIVATE_SUFFIXES):
        raise PackageError(f"{where}: {key} gives {_shown(host)}, which is not a public domain; Teams needs "
                           f"one: {fix}")
    return ("*." if wildcard else "") + ascii_host


def _developer(app: Mapping[str, Any], where: str) -> dict[str, str]:
    """Teams refuses a package without the developer's name and https links to a website, a privacy
    statement and terms of use; Callboard cannot know them, so they must be configured."""
    keys = {"name": "developer", "websiteUrl": "website_url", "privacyUrl": "privacy_url",
            "termsOfUseUrl": "terms_url"}
    missing = [f"teams.{key}" for key in keys.values() if not app.get(key)]
    if missing:
        listed = ", ".join(missing[:-1]) + (" and " if len(missing) > 1 else "") + missing[-1]
        raise PackageError(f"{where}: set {listed}: Teams requires the developer's name and https links to "
                           "its website, privacy statement and terms of use")
    developer = {field: _text(app[key]) if field == "name" else app[key] for field, key in keys.items()}
    if len(developer["name"]) > _DEVELOPER_MAX:
        raise PackageError(f"{where}: teams.developer is {len(developer['name'])} characters; Teams allows at "
                           f"most {_DEVELOPER_MAX}")
    for field, key in keys.items():
        if field == "name":
            continue
        url = developer[field]
        host = urlsplit(url).hostname if url.startswith("https://") else None
        if not host or len(url) > _URL_MAX or _CONTROL.search(url) or " " in url:
            raise PackageError(f"{where}: teams.{key} must be an https URL of at most {_URL_MAX} characters "
                               f"(Teams requires https), got {_shown(url)}")
    return developer


def _command_list(commands: Iterable[CommandSpec]) -> tuple[list[dict[str, str]], tuple[str, ...]]:
    """Teams' command list: a command's name and summary, at most ten, the most asked first."""
    order = {name: i for i, name in enumerate(_PREFERRED)}
    ranked = [spec for _, spec in sorted(enumerate(commands), key=lambda p: (order.get(p[1].name, len(order)), p[0]))]
    listed: list[dict[str, str]] = []
    left_out: list[str] = []
    for spec in ranked:
        if len(listed) == _COMMANDS_MAX or len(spec.name) > _COMMAND_TITLE_MAX or not spec.name.strip():
            left_out.append(spec.name)
            continue
        summary = _text(spec.summary)
        if len(summary) > _COMMAND_DESCRIPTION_MAX:
            summary = summary[:_COMMAND_DESCRIPTION_MAX - 1].rstrip() + "…"
        listed.append({"title": spec.name, "description": summary})
    return listed, tuple(left_out)


# -- icons -----------------------------------------------------------------------------------------

def encode_png(width: int, height: int, rgba: bytes) -> bytes:
    """An 8-bit RGBA PNG of ``rgba`` (rows top to bottom, 4 bytes a pixel)."""
    if len(rgba) != width * height * 4:
        raise ValueError(f"{width}x{height} RGBA needs {width * height * 4} bytes, got {len(rgba)}")
    stride = width * 4
    raw = b"".join(b"\x00" + rgba[y * stride:(y + 1) * stride] for y in range(height))  # filter 0: none

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8 bits, RGBA, deflate, no interlace
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def _mark(x: float, y: float) -> bool:
    """Callboard's mark in the unit square: a "C" around a dot (a bell seen from below)."""
    dx, dy = x - 0.5, y - 0.5
    r = math.hypot(dx, dy)
    if r <= 0.13:
        return True
    outer, inner = 0.48, 0.31
    # the C's opening faces right, 40 degrees either side; its ends are rounded
    opening = dx > 0 and abs(dy) < dx * math.tan(math.radians(40))
    if inner <= r <= outer and not opening:
        return True
    mid, cap = (outer + inner) / 2, (outer - inner) / 2
    end_x, end_y = 0.5 + mid * math.cos(math.radians(40)), mid * math.sin(math.radians(40))
    return math.hypot(x - end_x, abs(dy) - end_y) <= cap


def _coverage(size: int, box: tuple[float, float, float], shape: Callable[[float, float], bool]) -> list[float]:
    """How much of each pixel ``shape`` covers (4x4 samples), drawn into the square ``box`` =
    (left, top, side) in pixels."""
    left, top, side = box
    samples = (0.125, 0.375, 0.625, 0.875)
    out = [0.0] * (size * size)
    for py in range(size):
        for px in range(size):
            u0, v0 = (px - left) / side, (py - top) / side
            if not (-1 / side <= u0 <= 1 and -1 / side <= v0 <= 1):
                continue
            hits = sum(shape(u0 + sx / side, v0 + sy / side) for sx in samples for sy in samples)
            out[py * size + px] = hits / 16
    return out


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _luminance(rgb: Sequence[int]) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4
    return 0.2126 * channel(rgb[0]) + 0.7152 * channel(rgb[1]) + 0.0722 * channel(rgb[2])


def _contrast(a: Sequence[int], b: Sequence[int]) -> float:
    """WCAG's contrast ratio of two colours (1 to 21)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def color_icon(accent: str) -> bytes:
    """The 192x192 full-colour icon: the mark on the accent colour, in white or near-black,
    whichever reads better on it. Teams rounds the corners itself."""
    size = 192
    background = _rgb(accent)
    white, dark = (255, 255, 255), (31, 31, 31)
    ink = white if _contrast(white, background) >= _contrast(dark, background) else dark
    cover = _coverage(size, (48.0, 48.0, 96.0), _mark)  # Teams' guideline: a 96x96 symbol, centred
    pixels = bytearray()
    for a in cover:
        pixels += bytes(round(b + (i - b) * a) for b, i in zip(background, ink)) + b"\xff"
    return encode_png(size, size, bytes(pixels))


def outline_icon() -> bytes:
    """The 32x32 outline icon: the mark in white on transparent (all Teams allows), edges smoothed
    with alpha only."""
    size = 32
    cover = _coverage(size, (2.0, 2.0, 28.0), _mark)
    pixels = bytearray()
    for a in cover:
        pixels += b"\xff\xff\xff" + bytes([round(a * 255)])
    return encode_png(size, size, bytes(pixels))
