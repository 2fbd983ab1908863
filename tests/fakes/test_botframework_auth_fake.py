"""The Bot Framework identity fake, checked through the SDK's own token validation with nothing
bypassed: ConfigurationBotFrameworkAuthentication pointed at the fake's OpenID metadata URL.

The refusals assert the exception types the SDK (botframework-connector 4.17) raises; only
PermissionError becomes a 401 in CloudAdapter, so the server has to treat the others as refusals too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
import requests
from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, ChannelAccount, ConversationAccount

from tests.fakes.botframework_auth import BOT_FRAMEWORK_ISSUER, BotFrameworkIdentityFake, new_signing_key

APP_ID = "3f1c0b52-0000-4000-8000-00000000a99"
SERVICE_URL = "https://smba.trafficmanager.net/emea/"


def config(identity: BotFrameworkIdentityFake, **overrides: Any) -> SimpleNamespace:
    """What the server's configuration object must carry for the SDK to validate against the fake."""
    settings = {
        "APP_ID": APP_ID,
        "APP_PASSWORD": "not-used-for-inbound-validation",
        "APP_TYPE": "MultiTenant",
        "TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL": identity.metadata_url,
        "TO_BOT_FROM_CHANNEL_TOKEN_ISSUER": BOT_FRAMEWORK_ISSUER,
        **overrides,
    }
    return SimpleNamespace(**{k: v for k, v in settings.items() if v is not None})


def activity(channel_id: str = "msteams", service_url: str = SERVICE_URL) -> Activity:
    return Activity(
        type="message", id="1700000000001", text="owner payments-api", channel_id=channel_id, service_url=service_url,
        from_property=ChannelAccount(id="29:1alice", name="Alice"), recipient=ChannelAccount(id=f"28:{APP_ID}"),
        conversation=ConversationAccount(id="a:personal-alice", conversation_type="personal"),
    )


@pytest.fixture
def identity() -> Iterator[BotFrameworkIdentityFake]:
    with BotFrameworkIdentityFake() as running:
        yield running


@pytest.fixture
def auth(identity: BotFrameworkIdentityFake) -> ConfigurationBotFrameworkAuthentication:
    return ConfigurationBotFrameworkAuthentication(config(identity))


# ---------------------------------------------------------------------------- the fake itself


def test_serves_metadata_and_endorsed_keys(identity: BotFrameworkIdentityFake) -> None:
    metadata = requests.get(identity.metadata_url, timeout=5).json()
    assert metadata["issuer"] == BOT_FRAMEWORK_ISSUER and metadata["jwks_uri"] == identity.jwks_url
    assert "RS256" in metadata["id_token_signing_alg_values_supported"]
    [key] = requests.get(identity.jwks_url, timeout=5).json()["keys"]
    assert key["kid"] == identity.kid and key["kty"] == "RSA" and key["use"] == "sig"
    assert "msteams" in key["endorsements"]
    assert (identity.metadata_requests, identity.jwks_requests) == (1, 1)
    assert requests.get(identity.origin + "/.well-known/openidconfiguration", timeout=5).status_code == 404
    with BotFrameworkIdentityFake() as other:
        assert other.metadata_url != identity.metadata_url and other.kid != identity.kid


def test_tokens_carry_the_bot_connector_claims(identity: BotFrameworkIdentityFake) -> None:
    token = identity.token(APP_ID, service_url=SERVICE_URL)
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "JWT", "kid": identity.kid}
    claims = jwt.decode(token, identity.key.public_key(), algorithms=["RS256"], audience=APP_ID)
    assert set(claims) == {"iss", "aud", "nbf", "exp", "serviceurl"}
    assert claims["iss"] == BOT_FRAMEWORK_ISSUER and claims["serviceurl"] == SERVICE_URL
    assert abs(claims["exp"] - time.time() - 3600) < 5
    trimmed = jwt.decode(identity.token(APP_ID, extra_claims={"nbf": None, "tid": "t1"}),
                         options={"verify_signature": False})
    assert "nbf" not in trimmed and trimmed["tid"] == "t1" and "serviceurl" not in trimmed
    with pytest.raises(ValueError, match="alg must be one of RS256, RS384, RS512"):
        identity.token(APP_ID, alg="HS256")
    with pytest.raises(ValueError, match="app_id must not be empty"):
        identity.token("")
    with pytest.raises(ValueError, match="endpoint must be 'metadata' or 'jwks'"):
        identity.fail_next("token")


def test_stop_stops_serving() -> None:
    identity = BotFrameworkIdentityFake()
    url = identity.start()
    identity.stop()
    identity.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=5)
    with pytest.raises(RuntimeError, match="not started"):
        identity.metadata_url


# ---------------------------------------------------------------------------- through the SDK


async def test_a_valid_token_passes(identity: BotFrameworkIdentityFake,
                                    auth: ConfigurationBotFrameworkAuthentication) -> None:
    result = await auth.authenticate_request(activity(), "Bearer " + identity.token(APP_ID, service_url=SERVICE_URL))
    assert result.claims_identity.is_authenticated
    assert result.claims_identity.claims["aud"] == APP_ID
    assert result.claims_identity.claims["serviceurl"] == SERVICE_URL
    # the SDK really fetched the metadata and the keys from the fake, once, then cached them per URL
    assert (identity.metadata_requests, identity.jwks_requests) == (1, 1)
    await auth.authenticate_request(activity(), "Bearer " + identity.token(APP_ID, service_url=SERVICE_URL))
    assert (identity.metadata_requests, identity.jwks_requests) == (1, 1)


@pytest.mark.parametrize("app_type", ["MultiTenant", "SingleTenant"])
async def test_valid_for_either_app_type(identity: BotFrameworkIdentityFake, app_type: str) -> None:
    auth = ConfigurationBotFrameworkAuthentication(config(identity, APP_TYPE=app_type, APP_TENANTID="t-1"))
    result = await auth.authenticate_request(activity(), "Bearer " + identity.token(APP_ID, service_url=SERVICE_URL))
    assert result.claims_identity.is_authenticated


async def test_clock_skew_of_five_minutes(identity: BotFrameworkIdentityFake,
                                          auth: ConfigurationBotFrameworkAuthentication) -> None:
    just_expired = identity.token(APP_ID, service_url=SERVICE_URL, expires_in=-120)
    assert (await auth.authenticate_request(activity(), "Bearer " + just_expired)).claims_identity.is_authenticated
    nearly_valid = identity.token(APP_ID, service_url=SERVICE_URL, not_before=time.time() + 120)
    assert (await auth.authenticate_request(activity(), "Bearer " + nearly_valid)).claims_identity.is_authenticated


REFUSALS: list[tuple[str, dict[str, Any], type[BaseException], str]] = [
    ("wrong issuer", {"issuer": "https://sts.example.com/"}, PermissionError, "Identity missing"),
    ("wrong audience", {"audience": "another-bot"}, PermissionError, "Invalid AppId passed on token: another-bot"),
    ("expired", {"expires_in": -600}, jwt.ExpiredSignatureError, "Signature has expired"),
    ("not yet valid", {"not_before": time.time() + 3600}, jwt.ImmatureSignatureError, "not yet valid"),
    ("unsigned", {"unsigned": True}, Exception, "Token signing algorithm not in allowed list"),
    ("unknown key, known kid", {"sign_with": new_signing_key()}, jwt.InvalidSignatureError, "verification failed"),
    ("unknown key and kid", {"sign_with": new_signing_key(), "kid": "someone-else"}, IndexError, "out of range"),
    ("RS384", {"alg": "RS384"}, jwt.InvalidAlgorithmError, "alg value is not allowed"),
    ("other service URL", {"service_url": "https://evil.example.com/"}, PermissionError, "Invalid 'serviceurl' claim"),
    ("no service URL", {"service_url": None}, PermissionError, "'serviceurl' claim missing"),
]


@pytest.mark.parametrize(("case", "kwargs", "error", "message"), REFUSALS, ids=[r[0] for r in REFUSALS])
async def test_broken_tokens_are_refused(identity: BotFrameworkIdentityFake,
                                         auth: ConfigurationBotFrameworkAuthentication, case: str,
                                         kwargs: dict[str, Any], error: type[BaseException], message: str) -> None:
    token = identity.token(APP_ID, **{"service_url": SERVICE_URL, **kwargs})
    with pytest.raises(error, match=message) as raised:
        await auth.authenticate_request(activity(), "Bearer " + token)
    assert type(raised.value) is error  # exactly: a bare Exception must not stand in for a subclass


async def test_missing_or_malformed_headers_are_refused(identity: BotFrameworkIdentityFake,
                                                        auth: ConfigurationBotFrameworkAuthentication) -> None:
    token = identity.token(APP_ID, service_url=SERVICE_URL)
    with pytest.raises(PermissionError, match="Request is not authorized"):
        await auth.authenticate_request(activity(), None)
    for header in ("Basic " + token, "bearer " + token):
        with pytest.raises(PermissionError, match="Identity missing"):
            await auth.authenticate_request(activity(), header)
    # An empty header, or one not of two space-separated parts, is not refused cleanly: the SDK
    # dereferences the missing identity.
    for header in ("", token, "Bearer " + token + " extra", "Bearer"):
        with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'claims'"):
            await auth.authenticate_request(activity(), header)


async def test_cloud_adapter_passes_an_absent_header_as_empty(identity: BotFrameworkIdentityFake,
                                                              auth: ConfigurationBotFrameworkAuthentication) -> None:
    # CloudAdapter.process reads a missing Authorization header as "", so the request fails with the
    # AttributeError above instead of a 401, and the bot's logic never runs.
    turns: list[TurnContext] = []

    async def logic(context: TurnContext) -> None:
        turns.append(context)

    adapter = CloudAdapter(auth)
    with pytest.raises(AttributeError):
        await adapter.process_activity("", activity(), logic)
    assert turns == [] and identity.metadata_requests == 0


async def test_a_key_not_endorsed_for_the_channel_is_refused() -> None:
    with BotFrameworkIdentityFake(endorsements=["webchat"]) as identity:
        auth = ConfigurationBotFrameworkAuthentication(config(identity))
        token = "Bearer " + identity.token(APP_ID, service_url=SERVICE_URL)
        with pytest.raises(Exception, match="Could not validate endorsement key") as raised:
            await auth.authenticate_request(activity("msteams"), token)
        assert type(raised.value) is Exception
        result = await auth.authenticate_request(activity("webchat"), token)
        assert result.claims_identity.is_authenticated


async def test_the_issuer_setting_is_required(identity: BotFrameworkIdentityFake) -> None:
    # With a metadata URL configured the SDK takes every endpoint from configuration: no issuer, no tokens.
    auth = ConfigurationBotFrameworkAuthentication(config(identity, TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=None))
    with pytest.raises(PermissionError, match="Identity missing"):
        await auth.authenticate_request(activity(), "Bearer " + identity.token(APP_ID, service_url=SERVICE_URL))


async def test_metadata_outage_refuses_and_recovers(identity: BotFrameworkIdentityFake,
                                                    auth: ConfigurationBotFrameworkAuthentication) -> None:
    identity.fail_next("jwks", 503)
    token = "Bearer " + identity.token(APP_ID, service_url=SERVICE_URL)
    with pytest.raises(requests.HTTPError, match="503"):
        await auth.authenticate_request(activity(), token)
    # nothing was cached from the failed fetch, so the next request fetches again
    assert (await auth.authenticate_request(activity(), token)).claims_identity.is_authenticated
    assert (identity.metadata_requests, identity.jwks_requests) == (2, 2)
