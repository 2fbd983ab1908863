"""Teams with credentials: every request's JWT is validated by the Bot Framework SDK's own path —
signature against keys fetched from OpenID metadata (served here by a local fake standing in for
login.botframework.com), issuer, audience, expiry, the key's endorsement of Teams, the serviceurl
claim — and anything it refuses is 401 before any of Callboard runs. Nothing is bypassed: the server
is the real one, configured as ``callboard serve`` configures it, pointed at the fake's metadata URL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from callboard.bot.teams.protocol import DATA_COMMAND, VERB_RUN
from callboard.bot.teams.settings import TeamsSettings

from ...fakes.botframework_auth import BotFrameworkIdentityFake, new_signing_key
from .rig import Rig, serving

APP_ID = "11111111-2222-3333-4444-555555555555"


@dataclass
class Authed:
    rig: Rig
    identity: BotFrameworkIdentityFake

    def card_action(self) -> dict[str, Any]:
        return self.rig.activity("invoke", name="adaptiveCard/action", value={"action": {
            "type": "Action.Execute", "verb": VERB_RUN, "data": {DATA_COMMAND: "owner payment-service"}}})

    def token(self, **kw: Any) -> str:
        kw.setdefault("service_url", self.rig.connector.url)
        return self.identity.token(APP_ID, **kw)


@pytest.fixture
def identity() -> Iterator[BotFrameworkIdentityFake]:
    with BotFrameworkIdentityFake() as fake:
        yield fake


@pytest.fixture
async def authed(tmp_path: Path, identity: BotFrameworkIdentityFake) -> AsyncIterator[Authed]:
    teams = TeamsSettings(app_id=APP_ID, app_password="test-client-secret", openid_metadata_url=identity.metadata_url,
                          token_issuer="https://api.botframework.com")
    async with serving(tmp_path, teams=teams) as rig:
        yield Authed(rig, identity)


async def test_a_valid_token_is_accepted_and_the_card_action_answered(authed: Authed) -> None:
    status, body, _ = await authed.rig.post(authed.card_action(), token=authed.token())
    assert status == 200 and "payments-team" in json.dumps(body["value"])
    assert authed.identity.metadata_requests >= 1 and authed.identity.jwks_requests >= 1  # really fetched
    assert authed.rig.dispatched == ["owner payment-service"]


@pytest.mark.parametrize("broken", [
    "wrong issuer", "wrong audience", "expired", "not yet valid", "unsigned", "signed by another key",
    "unknown key id", "another service url", "no service url", "not endorsed for teams",
])
async def test_a_token_the_sdk_refuses_is_401_and_nothing_runs(authed: Authed, broken: str) -> None:
    cases: dict[str, dict[str, Any]] = {
        "wrong issuer": {"issuer": "https://sts.windows.net/evil/"},
        "wrong audience": {"audience": "99999999-2222-3333-4444-555555555555"},
        "expired": {"expires_in": -3600},
        "not yet valid": {"not_before": 4_000_000_000},
        "unsigned": {"unsigned": True},
        "signed by another key": {"sign_with": new_signing_key()},
        "unknown key id": {"kid": "not-a-published-key"},
        "another service url": {"service_url": "https://smba.trafficmanager.net/emea/"},
        "no service url": {"service_url": None},
        "not endorsed for teams": {},
    }
    kw = cases[broken]
    activity = authed.card_action()
    if broken == "not endorsed for teams":
        activity["channelId"] = "slack"  # the key is endorsed for msteams, webchat and directline only
    token = authed.identity.token(APP_ID, **{"service_url": authed.rig.connector.url, **kw})
    status, body, _ = await authed.rig.post(activity, token=token)
    assert status == 401, (broken, status, body)
    assert not authed.rig.dispatched


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic dXNlcjpwYXNz", "Bearer not.a.jwt"])
async def test_a_missing_or_malformed_authorization_header_is_401(authed: Authed, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    status, _, _ = await authed.rig.post(authed.card_action(), headers=headers)
    assert status == 401
    assert not authed.rig.dispatched


async def test_messages_are_refused_the_same_way(authed: Authed) -> None:
    """A message is acknowledged before it is answered: a refused one must not be acknowledged at all."""
    message = authed.rig.activity("message", text="who owns payment-service?")
    status, _, _ = await authed.rig.post(message, token=authed.token(expires_in=-3600))
    assert status == 401
    await authed.rig.settled()
    assert not authed.rig.dispatched and not authed.rig.connector.calls
