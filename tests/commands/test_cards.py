"""Entity cards (``info``), ``deps`` and ``team`` for every kind: the graph as Backstage's entity
page shows it, in the text and, the same, in ``--format json`` — over the demo catalog, and over
a small catalog written here with each relation, on SQLite and PostgreSQL, with and without the
resident relation graph (the two ways relations are read)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from callboard.bot.app import Callboard
from callboard.bot.config import Settings
from callboard.bot.shell.render import render_json, render_text
from callboard.commands.api import Fields, ItemList, Links, Reply, Status
from callboard.commands.dispatch import CommandRegistry
from callboard.commands.info import CARD_LIMIT

_ONCALL_LISTS = ("On call now", "Next on call")


def _snake(label: str) -> str:
    return label.lower().replace(" ", "_").replace("-", "_")


def assert_json_carries_the_text(reply: Reply) -> dict[str, Any]:
    """Every field, list item (label and detail), list total and link the text shows is in the
    JSON a script reads; the JSON's lists are whole where the text's are cut. Returns the JSON."""
    assert reply.status is Status.OK, render_text(reply)
    data: dict[str, Any] = json.loads(render_json(reply))
    lists = data.get("lists", {})
    for block in reply.blocks:
        if isinstance(block, Fields):
            for label, value in block.pairs:
                assert data["fields"][_snake(label)] == value, (label, value)
        elif isinstance(block, ItemList) and block.title in _ONCALL_LISTS:
            shifts = (data.get("oncall") or data)["shifts"]
            for item in block.items:
                detail = item.detail or ""
                assert any(s["display_name"] == item.label and s["role"] in detail
                           and (s["email"] is None or s["email"] in detail) for s in shifts), item
        elif isinstance(block, ItemList):
            (listing,) = [v for v in lists.values() if v["title"] == block.title]
            assert listing["total"] == (block.total if block.total is not None else len(block.items))
            assert len(listing["items"]) == listing["total"]  # whole, even when the text is cut
            for item in block.items:
                assert {"ref": item.ref, "label": item.label, "detail": item.detail} in [
                    {k: i[k] for k in ("ref", "label", "detail")} for i in listing["items"]]
        elif isinstance(block, Links) and "links" in data:
            for title, url in block.links:
                assert {"title": title, "url": url} in data["links"] or (data.get("oncall") or {}).get("link") == url
    return data


# -- the demo catalog ------------------------------------------------------------------------

async def test_api_card_shows_who_provides_and_consumes_it(demo_app: Callboard) -> None:
    reply = await demo_app.ask("info payments-api")
    data = assert_json_carries_the_text(reply)
    text = render_text(reply)
    assert "Provided by (1):\n  - payment-service" in text
    assert "Consumed by (2):\n  - checkout-api  (Component)\n  - refund-worker  (Component)" in text
    assert data["provided_by"] == ["component:default/payment-service"]
    assert data["consumed_by"] == ["component:default/checkout-api", "component:default/refund-worker"]
    assert data["fields"]["definition"].endswith("(openapi 3.0.3, version 1.4.0)")
    assert data["owner"] == ["group:default/payments-team"] and data["system"] == ["system:default/payments"]
    assert data["domain"] == ["domain:default/commerce"]
    assert data["oncall"]["via"] == "its owner payments-team"


async def test_system_domain_component_resource_group_and_user_cards(demo_app: Callboard) -> None:
    system = assert_json_carries_the_text(await demo_app.ask("info system:payments"))
    assert system["components"] == ["component:default/fraud-detector", "component:default/ledger-service",
                                    "component:default/payment-service", "component:default/refund-worker"]
    assert system["apis"] == ["api:default/payments-api"] and system["resources"] == ["resource:default/payments-db"]
    assert system["domain"] == ["domain:default/commerce"] and system["fields"]["domain"] == "commerce"
    domain = assert_json_carries_the_text(await demo_app.ask("info commerce"))
    assert domain["systems"] == ["system:default/payments", "system:default/storefront"]
    component = assert_json_carries_the_text(await demo_app.ask("info payment-service"))
    assert component["provides_apis"] == ["api:default/payments-api"]
    assert component["consumes_apis"] == ["api:default/identity-api"]
    assert component["depends_on"] == ["component:default/fraud-detector", "resource:default/payments-db"]
    assert component["dependency_of"] == []
    resource = assert_json_carries_the_text(await demo_app.ask("info payments-db"))
    assert resource["dependency_of"] == ["component:default/ledger-service", "component:default/payment-service"]
    team_reply = await demo_app.ask("info payments-team")
    group = assert_json_carries_the_text(team_reply)
    assert group["parent"] == ["group:default/engineering"] and group["fields"]["parent_group"] == "engineering"
    assert len(group["members"]) == 3 and "component:default/payment-service" in group["owns"]
    assert "Priya Raman  (priya.raman@acme.example.com)" in render_text(team_reply)
    assert any(p.ref == "user:default/priya.raman" for p in team_reply.people())  # surfaces may mention them
    parent = assert_json_carries_the_text(await demo_app.ask("info group:engineering"))
    assert "group:default/payments-team" in parent["sub_teams"]
    user = assert_json_carries_the_text(await demo_app.ask("info priya.raman"))
    assert user["teams"] == ["group:default/payments-team"] and user["fields"]["email"] == "priya.raman@acme.example.com"


async def test_deps_of_an_api_lists_its_consumers_as_depending_on_it(demo_app: Callboard) -> None:
    reply = await demo_app.ask("deps payments-api")
    data = assert_json_carries_the_text(reply)
    text = render_text(reply)
    assert "Depended on by: none" not in text
    assert "checkout-api  (Component · consumes it)" in text
    assert data["dependency_of"] == ["component:default/checkout-api", "component:default/refund-worker"]
    assert data["provided_by"] == ["component:default/payment-service"]


async def test_deps_of_a_component_counts_the_consumers_of_its_apis(demo_app: Callboard) -> None:
    data = assert_json_carries_the_text(await demo_app.ask("deps payment-service"))
    assert data["dependency_of"] == ["component:default/checkout-api", "component:default/refund-worker"]
    assert {i["detail"] for i in data["lists"]["dependency_of"]["items"]} == {"Component · consumes payments-api"}


async def test_deps_of_a_system_domain_group_and_user(demo_app: Callboard) -> None:
    system = assert_json_carries_the_text(await demo_app.ask("deps system:payments"))
    assert len(system["parts"]) == 6
    assert "api:default/identity-api" in system["depends_on"]  # consumed by its parts, outside it
    assert "resource:default/payments-db" not in system["depends_on"]  # inside: left out
    assert system["dependency_of"] == ["component:default/checkout-api"]
    domain = assert_json_carries_the_text(await demo_app.ask("deps commerce"))
    assert "system:default/payments" in domain["parts"] and "component:default/payment-service" in domain["parts"]
    assert "component:default/checkout-api" not in domain["dependency_of"]  # inside the domain
    group = assert_json_carries_the_text(await demo_app.ask("deps payments-team"))
    assert "component:default/checkout-api" in group["dependency_of"]  # consumes payments-api and pricing-api
    user = assert_json_carries_the_text(await demo_app.ask("deps priya.raman"))
    assert user["owns"] == [] and "nothing they own" in user["scope"]


async def test_team_json_carries_members_emails_and_contacts(demo_app: Callboard) -> None:
    reply = await demo_app.ask("team payments-team")
    data = assert_json_carries_the_text(reply)
    assert data["fields"]["email"] == "payments-team@acme.example.com" and data["parent"] == ["group:default/engineering"]
    emails = {i["email"] for i in data["lists"]["members"]["items"]}
    assert "priya.raman@acme.example.com" in emails


# -- a small catalog with each relation --------------------------------------------------------

CLIENTS = CARD_LIMIT + 2

CATALOG = """apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: org}
spec: {type: organization, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: team-a}
spec: {type: team, parent: org, children: [], profile: {email: team-a@example.com}}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: team-b}
spec: {type: team, parent: org, children: [], members: [ghost-user]}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: dana}
spec: {profile: {displayName: Dana Diaz, email: dana@example.com}, memberOf: [team-a, team-b]}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: eve}
spec: {memberOf: [team-a]}
---
apiVersion: backstage.io/v1alpha1
kind: Domain
metadata: {name: shop}
spec: {owner: team-a}
---
apiVersion: backstage.io/v1alpha1
kind: Domain
metadata: {name: shop-eu}
spec: {owner: team-b, subdomainOf: shop}
---
apiVersion: backstage.io/v1alpha1
kind: System
metadata: {name: checkout}
spec: {owner: team-a, domain: shop}
---
apiVersion: backstage.io/v1alpha1
kind: System
metadata: {name: eu-checkout}
spec: {owner: team-b, domain: shop-eu}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: cart}
spec:
  type: service
  lifecycle: production
  owner: team-a
  system: checkout
  providesApis: [cart-api]
  consumesApis: [pricing-api]
  dependsOn: [resource:cart-db, component:ghost-svc]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: cart-ui}
spec: {type: website, lifecycle: production, owner: user:dana, system: checkout, subcomponentOf: cart,
       consumesApis: [cart-api]}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: pricing}
spec: {type: service, lifecycle: production, owner: team-b, system: eu-checkout, providesApis: [pricing-api],
       dependencyOf: [component:cart]}
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata: {name: cart-api}
spec:
  type: openapi
  lifecycle: production
  owner: team-a
  system: checkout
  definition: |
    openapi: 3.0.3
    info: {title: Cart, version: 2.0.0}
    paths: {}
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata: {name: pricing-api}
spec: {type: grpc, lifecycle: production, owner: team-b, system: eu-checkout, definition: "service Pricing {}"}
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata: {name: cart-db}
spec: {type: database, owner: team-a, system: checkout, dependsOn: [resource:backups]}
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata: {name: backups}
spec: {type: bucket, owner: team-b}
""" + "".join(f"""---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {{name: client-{i:02d}}}
spec: {{type: service, lifecycle: production, owner: team-b, consumesApis: [cart-api]{
    ", dependsOn: [component:cart]" if i == 1 else ""}}}
""" for i in range(1, CLIENTS + 1))

CLIENT_KEYS = [f"component:default/client-{i:02d}" for i in range(1, CLIENTS + 1)]


@pytest.fixture(params=[True, False], ids=["graph", "storage"])
async def small(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> AsyncIterator[Callboard]:
    root = tmp_path / "catalog"
    root.mkdir()
    (root / "catalog-info.yaml").write_text(CATALOG)
    app = await Callboard.open(Settings(database_url=database_url, data_dir=str(tmp_path / "data")),
                               CommandRegistry.from_entry_points(), resident=request.param)
    try:
        summary = await app.sync((str(root),))
        assert not [e for e in summary.errors if "ghost-" not in e.message], summary.errors
        yield app
    finally:
        await app.close()


async def test_small_catalog_cards(small: Callboard) -> None:
    api_reply = await small.ask("info cart-api")
    api = assert_json_carries_the_text(api_reply)
    text = render_text(api_reply)
    assert api["provided_by"] == ["component:default/cart"]
    assert api["consumed_by"] == ["component:default/cart-ui", *CLIENT_KEYS]  # whole in the JSON
    assert f"Consumed by ({CLIENTS + 1}):" in text
    assert text.count("  - client-") == CARD_LIMIT - 1  # the card is cut...
    assert f"Consumed by: all {CLIENTS + 1} with `deps api:default/cart-api`" in text  # ...and says where the rest is
    assert api["fields"]["definition"] == "3 lines (openapi 3.0.3, version 2.0.0)"
    assert assert_json_carries_the_text(await small.ask("info pricing-api"))["fields"]["definition"] == "1 line"

    cart = assert_json_carries_the_text(await small.ask("info cart"))
    assert cart["subcomponents"] == ["component:default/cart-ui"]
    assert cart["provides_apis"] == ["api:default/cart-api"] and cart["consumes_apis"] == ["api:default/pricing-api"]
    assert cart["depends_on"] == ["component:default/ghost-svc", "component:default/pricing", "resource:default/cart-db"]
    assert {"ref": "component:default/ghost-svc", "label": "ghost-svc", "detail": "Component · not in the catalog"} \
        in cart["lists"]["depends_on"]["items"]
    assert cart["dependency_of"] == ["component:default/client-01"]
    ui = assert_json_carries_the_text(await small.ask("info cart-ui"))
    assert ui["subcomponent_of"] == ["component:default/cart"] and ui["fields"]["subcomponent_of"] == "cart"
    assert ui["owner"] == ["user:default/dana"] and ui["domain"] == ["domain:default/shop"]

    system = assert_json_carries_the_text(await small.ask("info system:checkout"))
    assert system["components"] == ["component:default/cart", "component:default/cart-ui"]
    assert system["apis"] == ["api:default/cart-api"] and system["resources"] == ["resource:default/cart-db"]
    assert system["domain"] == ["domain:default/shop"]
    shop = assert_json_carries_the_text(await small.ask("info domain:shop"))
    assert shop["systems"] == ["system:default/checkout"] and shop["subdomains"] == ["domain:default/shop-eu"]
    eu = assert_json_carries_the_text(await small.ask("info domain:shop-eu"))
    assert eu["subdomain_of"] == ["domain:default/shop"] and eu["systems"] == ["system:default/eu-checkout"]

    db = assert_json_carries_the_text(await small.ask("info cart-db"))
    assert db["depends_on"] == ["resource:default/backups"] and db["dependency_of"] == ["component:default/cart"]
    team = assert_json_carries_the_text(await small.ask("info team-a"))
    assert team["parent"] == ["group:default/org"] and team["members"] == ["user:default/dana", "user:default/eve"]
    assert {"ref": "user:default/dana", "label": "Dana Diaz", "detail": "dana@example.com", "email": "dana@example.com"} \
        in team["lists"]["members"]["items"]
    team_b_reply = await small.ask("info team-b")
    team_b = assert_json_carries_the_text(team_b_reply)
    assert team_b["members"] == ["user:default/dana", "user:default/ghost-user"]
    assert {"ref": "user:default/ghost-user", "label": "ghost-user", "detail": "not in the catalog", "email": None} \
        in team_b["lists"]["members"]["items"]
    assert [p.ref for p in team_b_reply.people()] == ["user:default/dana"]  # nobody to mention for a dangling ref
    org = assert_json_carries_the_text(await small.ask("info group:org"))
    assert org["sub_teams"] == ["group:default/team-a", "group:default/team-b"] and org["members"] == []
    dana = assert_json_carries_the_text(await small.ask("info dana"))
    assert dana["teams"] == ["group:default/team-a", "group:default/team-b"]
    assert dana["owns"] == ["component:default/cart-ui"]


async def test_small_catalog_deps(small: Callboard) -> None:
    api_reply = await small.ask("deps cart-api")
    api = assert_json_carries_the_text(api_reply)
    assert api["provided_by"] == ["component:default/cart"]
    assert api["dependency_of"] == ["component:default/cart-ui", *CLIENT_KEYS]
    assert "Depended on by: none" not in render_text(api_reply)

    cart = assert_json_carries_the_text(await small.ask("deps cart"))
    assert cart["depends_on"] == ["api:default/pricing-api", "component:default/ghost-svc", "component:default/pricing",
                                  "resource:default/cart-db"]
    assert cart["dependency_of"] == ["component:default/cart-ui", *CLIENT_KEYS]
    details = {i["ref"]: i["detail"] for i in cart["lists"]["dependency_of"]["items"]}
    assert details["component:default/client-01"] == "Component · consumes cart-api"  # dependsOn too: its own line
    details = {i["ref"]: i["detail"] for i in cart["lists"]["depends_on"]["items"]}
    assert details["api:default/pricing-api"] == "API · consumed API"
    assert details["component:default/ghost-svc"] == "Component · not in the catalog"

    system = assert_json_carries_the_text(await small.ask("deps system:checkout"))
    assert system["parts"] == ["api:default/cart-api", "component:default/cart", "component:default/cart-ui",
                               "resource:default/cart-db"]
    assert system["depends_on"] == ["api:default/pricing-api", "component:default/ghost-svc",
                                    "component:default/pricing", "resource:default/backups"]
    assert system["dependency_of"] == CLIENT_KEYS  # cart-ui consumes cart-api inside the system: left out
    details = {i["ref"]: i["detail"] for i in system["lists"]["depends_on"]["items"]}
    assert details["resource:default/backups"] == "Resource · needed by cart-db"
    assert details["component:default/pricing"] == "Component · needed by cart"
    clients = {i["ref"]: i["detail"] for i in system["lists"]["dependency_of"]["items"]}
    assert clients["component:default/client-01"] == "Component · consumes cart-api; depends on cart"

    shop = assert_json_carries_the_text(await small.ask("deps domain:shop"))
    assert {"system:default/checkout", "domain:default/shop-eu", "system:default/eu-checkout",
            "component:default/pricing", "component:default/cart"} <= set(shop["parts"])
    assert "component:default/pricing" not in shop["depends_on"]  # in its subdomain's system: inside
    team = assert_json_carries_the_text(await small.ask("deps team-b"))
    assert "api:default/cart-api" in team["depends_on"] and "component:default/cart" in team["dependency_of"]
    dana = assert_json_carries_the_text(await small.ask("deps dana"))
    assert dana["owns"] == ["component:default/cart-ui"] and dana["depends_on"] == ["api:default/cart-api"]
    team_reply = await small.ask("team team-a")
    assert assert_json_carries_the_text(team_reply)["fields"] == {"email": "team-a@example.com", "parent_group": "org"}


@pytest.mark.parametrize(("definition", "shown"), [
    ("openapi: 3.0.3\ninfo: {title: Cart, version: 2.0.0}\npaths: {}\n", "3 lines (openapi 3.0.3, version 2.0.0)"),
    ('{"swagger": "2.0", "info": {"description": {"a": [1]}, "version": 7}, "paths": {}}',
     "1 line (swagger 2.0, version 7)"),
    ("asyncapi: 2.6.0\ninfo:\n  title: t\n  version: 1.0.0\n", "4 lines (asyncapi 2.6.0, version 1.0.0)"),
    ("? [a]\n: b\nopenapi: 3.1.0\ninfo:\n  version: '2'", "5 lines (openapi 3.1.0, version 2)"),  # a complex key passed over
    ("service Pricing {\n  rpc Quote (Q) returns (A);\n}", "3 lines"),  # not YAML: counted only
    ("type Query { a: Int }", "1 line"),
    ("a: [unclosed", "1 line"),
    ("openapi: 3.1.0\ninfo: {version: [1]}\n", "2 lines (openapi 3.1.0)"),
    ("", None),
])
def test_api_definition_in_a_few_words(definition: str, shown: str | None) -> None:
    from callboard.commands.info import _definition

    assert _definition({"definition": definition}) == shown


def test_a_long_definition_is_not_read_whole() -> None:
    from callboard.commands.info import _DEFINITION_EVENTS, _definition

    paths = "".join(f"  /p{i}:\n    get: {{summary: thing {i}}}\n" for i in range(_DEFINITION_EVENTS))
    first = "openapi: 3.0.3\ninfo: {version: 1.0.0}\npaths:\n" + paths
    assert _definition({"definition": first}).endswith("(openapi 3.0.3, version 1.0.0)")  # type: ignore[union-attr]
    last = "paths:\n" + paths + "openapi: 3.0.3\n"  # what it is comes after the limit: not said
    assert _definition({"definition": last}) == f"{last.count(chr(10))} lines"
