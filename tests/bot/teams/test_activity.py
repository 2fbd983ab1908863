"""``parse_activity`` makes the same ``Activity`` msrest's deserializer makes — for what Teams
sends, and for thousands of bodies bent out of shape — or fails as msrest fails."""

from __future__ import annotations

import copy
import datetime
import random
from typing import Any

import pytest
from botbuilder.schema import Activity
from msrest.serialization import Model

from callboard.bot.teams.activity import parse_activity

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"

_BASE: dict[str, Any] = {
    "type": "message", "id": "1700000000001", "timestamp": "2026-11-30T09:00:00.1234567Z",
    "localTimestamp": "2026-11-30T10:00:00.000+01:00", "localTimezone": "Europe/Berlin",
    "serviceUrl": "https://smba.trafficmanager.net/emea/", "channelId": "msteams",
    "from": {"id": "29:1abc", "name": "Priya", "aadObjectId": "00000000-0000-0000-0000-0000000000a1"},
    "conversation": {"id": "19:general@thread.tacv2;messageid=1700000000000", "conversationType": "channel",
                     "tenantId": TENANT, "isGroup": True},
    "recipient": {"id": "28:callboard", "name": "Callboard"},
    "text": "<at>Callboard</at> who owns payment-service?", "textFormat": "plain",
    "attachments": [{"contentType": "text/html", "content": "<div><at>Callboard</at> who owns …</div>"}],
    "entities": [{"type": "mention", "text": "<at>Callboard</at>", "mentioned": {"id": "28:callboard", "name": "Callboard"}},
                 {"type": "clientInfo", "locale": "en-US", "country": "US", "platform": "Web", "timezone": "Europe/Berlin"}],
    "channelData": {"tenant": {"id": TENANT}, "teamsChannelId": "19:general@thread.tacv2",
                    "teamsTeamId": "19:team@thread.tacv2", "channel": {"id": "19:general@thread.tacv2"},
                    "team": {"id": "19:team@thread.tacv2"}, "settings": {"selectedChannel": {"id": "x"}}},
    "locale": "en-US",
}

_SHAPES: list[dict[str, Any]] = [
    _BASE,
    {**_BASE, "type": "invoke", "name": "adaptiveCard/action", "replyToId": "1:card",
     "value": {"action": {"type": "Action.Execute", "verb": "run", "data": {"cmd": "owner x", "n": 2, "f": 1.5,
                                                                             "none": None, "list": [1, None, "a"]}},
               "trigger": "manual"}},
    {**_BASE, "type": "invoke", "name": "application/search",
     "value": {"queryText": "pay", "dataset": "pick:owner", "queryOptions": {"skip": 0, "top": 15}}},
    {**_BASE, "type": "invoke", "name": "composeExtension/query",
     "value": {"commandId": "searchCatalog", "parameters": [{"name": "query", "value": "pay"}],
               "queryOptions": {"skip": 0, "count": 25}}},
    {**_BASE, "type": "conversationUpdate", "membersAdded": [{"id": "28:callboard"}, {"id": "29:x", "name": "X"}],
     "membersRemoved": [], "topicName": "General", "historyDisclosed": False},
    {**_BASE, "type": "messageReaction", "reactionsAdded": [{"type": "like"}], "replyToId": "1"},
    {**_BASE, "suggestedActions": {"to": ["29:x"], "actions": [{"type": "imBack", "title": "Yes", "value": "yes"}]},
     "semanticAction": {"id": "a", "state": "start", "entities": {"x": {"type": "thing"}}}},
    {**_BASE, "relatesTo": {"activityId": "1", "channelId": "msteams", "serviceUrl": "https://x/",
                            "conversation": {"id": "c"}, "bot": {"id": "b"}, "user": {"id": "u"}}},
    {**_BASE, "textHighlights": [{"text": "owns", "occurrence": 1}], "listenFor": ["yes", "no"],
     "expiration": "2026-12-01T00:00:00Z", "importance": "high", "deliveryMode": "normal"},
    {"type": "message"},
    {"type": "message", "from": {}, "conversation": {}, "unknownTop": {"deep": [1, {"x": None}]}},
]


def _dump(value: Any) -> Any:
    """A model, as comparable data: its class, its attributes and what msrest kept aside."""
    if isinstance(value, Model):
        return (type(value).__name__, {k: _dump(v) for k, v in sorted(vars(value).items())})
    if isinstance(value, list):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    if isinstance(value, datetime.datetime):
        return ("datetime", value.isoformat(), value.utcoffset())
    return (type(value).__name__, value)


def _both(body: dict[str, Any]) -> tuple[Any, Any]:
    try:
        reference = ("ok", _dump(Activity.deserialize(copy.deepcopy(body))))
    except Exception as exc:  # noqa: BLE001 - whatever msrest raises, parse_activity must raise too
        reference = ("error", type(exc).__name__)
    try:
        ours = ("ok", _dump(parse_activity(copy.deepcopy(body))))
    except Exception as exc:  # noqa: BLE001
        ours = ("error", type(exc).__name__)
    return reference, ours


@pytest.mark.parametrize("body", _SHAPES, ids=[f"{b['type']}-{i}" for i, b in enumerate(_SHAPES)])
def test_what_teams_sends_is_the_activity_msrest_makes(body: dict[str, Any]) -> None:
    reference, ours = _both(body)
    assert reference[0] == "ok"
    assert ours == reference


_ODD: list[Any] = [None, 0, 1, -7, 2.5, True, False, "", "x", "2026-11-30T09:00:00Z", "not a date", [], [1, "a"], [{}],
        [{"id": 3}], {}, {"id": "x"}, {"id": 5}, {"type": "mention"}, "99999-01-01T00:00:00Z", 10 ** 30]


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [at]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*at, i))
    return out


def _bent(rng: random.Random, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with a few of its values replaced by values of other JSON types, or keys added."""
    bent = copy.deepcopy(body)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(_paths(bent)[1:])
        parent = bent
        for step in path[:-1]:
            parent = parent[step]
        if rng.random() < 0.2 and isinstance(parent, dict):
            parent[f"extra{rng.randint(0, 9)}"] = copy.deepcopy(rng.choice(_ODD))
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(_ODD))
    return bent


def test_bodies_bent_out_of_shape_come_out_as_msrest_makes_them_or_fail_as_it_fails() -> None:
    rng = random.Random(20261130)
    outcomes = {"ok": 0, "error": 0}
    for n in range(3000):
        body = _bent(rng, rng.choice(_SHAPES))
        reference, ours = _both(body)
        assert ours == reference, (n, body)
        outcomes[reference[0]] += 1
    assert outcomes["ok"] > 1000 and outcomes["error"] > 50  # both kinds were really tried


def _date_texts(rng: random.Random) -> list[str]:
    """Timestamps as Teams writes them, and near misses: other precisions, offsets, impossible days
    and hours, the ends of the year range, stray characters."""
    texts = ["2026-11-30T09:00:00Z", "2026-11-30T09:00:00.1234567Z", "2026-11-30T10:00:00.000+01:00",
             "2026-02-29T00:00:00Z", "2024-02-29T23:59:59.9999999-12:00", "2026-11-30T24:00:00Z",
             "2026-11-30T23:59:60Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
             "0002-01-01T00:00:00Z", "9998-12-31T23:59:59.5+14:00", "2026-11-30T09:00:00", "2026-11-30 09:00:00Z",
             "2026-11-30T09:00:00.Z", "2026-11-30T09:00:00,5Z", "2026-11-30T09:00:00+0100", "2026-11-30T09:00:00+25:00",
             "2026-13-01T00:00:00Z", "2026-11-31T00:00:00Z", "2026-11-30T09:60:00Z", "2026-11-30T09:00:00.123456789012Z",
             "2026-11-30T09:00:00Zjunk", "２０２６-11-30T09:00:00Z", "2026-11-30T09:00:00-00:00"]
    for _ in range(2000):
        digits = rng.choice(["", "." + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 9)))])
        zone = rng.choice(["Z", f"{rng.choice('+-')}{rng.randint(0, 15):02d}:{rng.choice([0, 30, 45, 59]):02d}"])
        texts.append(f"{rng.randint(1, 9999):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 31):02d}"
                     f"T{rng.randint(0, 24):02d}:{rng.randint(0, 60):02d}:{rng.randint(0, 60):02d}{digits}{zone}")
    return texts


def test_timestamps_come_out_as_msrest_reads_them_or_fail_as_it_fails() -> None:
    """The standard library builds the usual timestamps; each equals msrest's, offset included."""
    seen = {"ok": 0, "error": 0}
    for text in _date_texts(random.Random(7)):
        reference, ours = _both({**_BASE, "timestamp": text, "localTimestamp": text})
        assert ours == reference, text
        seen[reference[0]] += 1
    assert seen["ok"] > 1000 and seen["error"] > 100
