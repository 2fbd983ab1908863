"""Teams' credentials come only from the environment; ones that cannot work say which variable to fix."""

from __future__ import annotations

import pytest

from callboard.bot.config import ConfigError, load_settings
from callboard.bot.teams.settings import teams_settings

APP_ID = "11111111-2222-3333-4444-555555555555"


def _teams(env: dict[str, str]):
    return teams_settings(load_settings(env=env))


def test_teams_is_off_without_an_app_id_or_dev_mode() -> None:
    assert _teams({}) is None
    assert _teams({"CALLBOARD_TEAMS_DEV": "0"}) is None


def test_dev_mode_turns_teams_on_unauthenticated() -> None:
    teams = _teams({"CALLBOARD_TEAMS_DEV": "1"})
    assert teams is not None and teams.dev and not teams.authenticated


def test_credentials_from_the_environment_and_the_password_never_printed() -> None:
    teams = _teams({"MICROSOFT_APP_ID": APP_ID, "MICROSOFT_APP_PASSWORD": "s3cret-value",
                    "MICROSOFT_APP_TYPE": "singletenant", "MICROSOFT_APP_TENANT_ID": "contoso.onmicrosoft.com"})
    assert teams is not None and teams.authenticated
    assert (teams.app_id, teams.app_type, teams.tenant_id) == (APP_ID, "SingleTenant", "contoso.onmicrosoft.com")
    assert "s3cret-value" not in repr(teams)
    settings = load_settings(env={"MICROSOFT_APP_ID": APP_ID, "MICROSOFT_APP_PASSWORD": "s3cret-value"})
    assert "s3cret-value" not in repr(settings)


@pytest.mark.parametrize(("env", "names"), [
    ({"MICROSOFT_APP_ID": "my-bot"}, "MICROSOFT_APP_ID"),
    ({"MICROSOFT_APP_ID": APP_ID}, "MICROSOFT_APP_PASSWORD"),
    ({"MICROSOFT_APP_ID": APP_ID, "MICROSOFT_APP_PASSWORD": "x", "MICROSOFT_APP_TYPE": "SingleTenant"},
     "MICROSOFT_APP_TENANT_ID"),
    ({"MICROSOFT_APP_ID": APP_ID, "MICROSOFT_APP_TYPE": "UserAssignedMSI"}, "MICROSOFT_APP_TENANT_ID"),
    ({"MICROSOFT_APP_ID": APP_ID, "MICROSOFT_APP_PASSWORD": "x", "MICROSOFT_APP_TYPE": "Anybody"}, "MICROSOFT_APP_TYPE"),
    ({"CALLBOARD_TEAMS_DEV": "maybe"}, "CALLBOARD_TEAMS_DEV"),
])
def test_credentials_that_cannot_work_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        _teams(env)


def test_a_managed_identity_needs_no_password() -> None:
    teams = _teams({"MICROSOFT_APP_ID": APP_ID, "MICROSOFT_APP_TYPE": "UserAssignedMSI",
                    "MICROSOFT_APP_TENANT_ID": "tenant"})
    assert teams is not None and teams.app_type == "UserAssignedMSI"
