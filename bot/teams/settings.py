"""Teams' settings, read without importing the Bot Framework SDK (``serve`` decides first whether
Teams is on at all)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from callboard.bot.config import ConfigError, Settings

__all__ = ["TeamsSettings", "teams_settings"]

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True, slots=True)
class TeamsSettings:
    """Teams' settings: credentials from the environment (``MICROSOFT_APP_*``), never from files.

    ``openid_metadata_url`` and ``token_issuer`` point the SDK's token validation at another
    identity service (a national cloud, or a test's own); None: Microsoft's public cloud."""

    app_id: str | None = None
    app_password: str | None = field(default=None, repr=False)
    tenant_id: str | None = None
    app_type: str = "MultiTenant"
    dev: bool = False
    openid_metadata_url: str | None = None
    token_issuer: str | None = None
    public_url: str | None = None  # where Callboard serves its docs (links to it unfurl)

    @property
    def authenticated(self) -> bool:
        return bool(self.app_id)

    def __repr__(self) -> str:  # never print the password
        return (f"TeamsSettings(app_id={self.app_id!r}, app_type={self.app_type!r}, tenant_id={self.tenant_id!r}, "
                f"dev={self.dev}, password={'set' if self.app_password else 'unset'})")


def teams_settings(settings: Settings) -> TeamsSettings | None:
    """Teams' settings, or None when Teams is off (neither ``MICROSOFT_APP_ID`` nor
    ``CALLBOARD_TEAMS_DEV=1``). Credentials that cannot work are a ``ConfigError`` naming the variable."""
    app_id = settings.teams_app_id
    if not app_id:
        if not settings.teams_dev:
            return None
        return TeamsSettings(dev=True, public_url=settings.public_url)
    if not _GUID.fullmatch(app_id):
        raise ConfigError(f"MICROSOFT_APP_ID must be your bot's Microsoft app id (a GUID such as "
                          f"00000000-0000-0000-0000-000000000000), got {app_id[:60]!r}")
    kind = settings.teams_app_type
    if kind != "UserAssignedMSI" and not settings.teams_app_password:
        raise ConfigError("MICROSOFT_APP_PASSWORD is not set (the client secret of your bot's app registration; "
                          "with a managed identity, set MICROSOFT_APP_TYPE=UserAssignedMSI instead)")
    if kind in ("SingleTenant", "UserAssignedMSI") and not settings.teams_tenant_id:
        raise ConfigError(f"MICROSOFT_APP_TENANT_ID is not set (a {kind} bot needs its Microsoft Entra tenant id)")
    return TeamsSettings(app_id=app_id, app_password=settings.teams_app_password, tenant_id=settings.teams_tenant_id,
                         app_type=kind, public_url=settings.public_url)
