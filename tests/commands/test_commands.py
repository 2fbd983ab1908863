"""Commands and plain questions against the bundled demo catalog, through the shell surface."""

from __future__ import annotations

from typing import Any

import pytest

from callboard.bot.shell import Shell
from callboard.commands.api import CommandSpec, Deps, Invocation, Reply, Status
from callboard.commands.dispatch import CommandRegistry, StartupError, parse


async def test_owner_with_contacts(demo_app) -> None:
    reply = await demo_app.ask("owner payment-service")
    assert reply.status is Status.OK
    assert reply.data["owners"][0]["ref"] == "group:default/payments-team"
    text = await Shell(demo_app).exec("owner payment-service")
    assert "payments-team@acme.example.com" in text and "Parent group" in text


@pytest.mark.parametrize(
    "question",
    ["who owns payment-service?", "Who owns paymnet-servce", "who is the owner of Payment Service?",
     "owner PAYMENT_SERVICE", "/owner payment-service", "owner component:default/payment-service",
     "\u201cwho owns payment-service\u201d"],
)
async def test_owner_questions(demo_app, question: str) -> None:
    reply = await demo_app.ask(question)
    assert reply.status is Status.OK, reply.summary
    assert reply.data["entity"] == "component:default/payment-service"


async def test_what_a_team_owns(demo_app) -> None:
    reply = await demo_app.ask("what does payments-team own?")
    assert reply.status is Status.OK
    assert "component:default/payment-service" in reply.data["owns"]


async def test_ambiguous_owner_offers_choices(demo_app) -> None:
    reply = await demo_app.ask("owner payments")
    assert reply.status in (Status.AMBIGUOUS, Status.OK)
    if reply.status is Status.AMBIGUOUS:
        assert len(reply.data["candidates"]) >= 2


async def test_unknown_entity(demo_app) -> None:
    reply = await demo_app.ask("owner zzzz-qqqq-xxxx")
    assert reply.status is Status.NOT_FOUND
    assert "find" in reply.summary


async def test_find_with_kind(demo_app) -> None:
    reply = await demo_app.ask("find payments --kind api")
    assert reply.status is Status.OK
    assert all(r["ref"].startswith("api:") for r in reply.data["results"])
    bad = await demo_app.ask("find x --kind")
    assert bad.status is Status.USAGE


async def test_info_deps_team_help(demo_app) -> None:
    info = await demo_app.ask("info checkout-api")
    assert info.status is Status.OK
    text = await Shell(demo_app).exec("info checkout-api")
    for label in ("Owner", "System", "Lifecycle", "Consumes APIs", "Source"):
        assert label in text
    deps = await demo_app.ask("deps payment-service")
    assert set(deps.data["depends_on"]) == {"resource:default/payments-db", "component:default/fraud-detector",
                                            "api:default/identity-api"}  # the API it consumes too
    assert deps.data["consumes_apis"] == ["api:default/identity-api"]
    dependents = await demo_app.ask("what depends on payments-db?")
    assert "component:default/payment-service" in dependents.data["dependency_of"]
    team = await demo_app.ask("team sre-team")
    assert team.status is Status.OK and team.data["members"]
    assert (await demo_app.ask("help")).status is Status.OK
    assert (await demo_app.ask("help owner")).data["command"] == "owner"


async def test_unknown_command_suggests(demo_app) -> None:
    reply = await demo_app.ask("ownr payment-service")
    assert reply.status is Status.USAGE and reply.data["suggestion"] == "owner"


async def test_bare_entity_name_shows_its_card(demo_app) -> None:
    reply = await demo_app.ask("fraud-detector")
    assert reply.status is Status.OK and reply.data["entity"] == "component:default/fraud-detector"


async def test_a_failing_command_gets_a_generic_reply(demo_app, caplog) -> None:
    async def boom(inv: Invocation, deps: Deps) -> Reply:
        raise RuntimeError("secret detail")

    from callboard.commands.dispatch import Dispatcher

    spec = CommandSpec(name="boom", summary="x", usage="boom", examples=("boom",), run=boom)
    dispatcher = Dispatcher(CommandRegistry([spec]), demo_app.dispatcher.deps)
    reply = await dispatcher.dispatch("boom")
    assert reply.status is Status.ERROR
    assert "secret detail" not in reply.summary and "ref " in reply.summary
    assert "secret detail" in caplog.text


def test_registry_refuses_bad_commands() -> None:
    async def ok(inv: Invocation, deps: Deps) -> Reply:
        raise AssertionError

    def not_async(inv: Invocation, deps: Deps) -> Reply:
        raise AssertionError

    spec = CommandSpec(name="a", summary="s", usage="a", examples=(), run=ok)
    with pytest.raises(StartupError, match="twice"):
        CommandRegistry([spec, spec])
    with pytest.raises(StartupError, match="async def"):
        CommandRegistry([CommandSpec(name="b", summary="s", usage="b", examples=(), run=not_async)])  # type: ignore[arg-type]
    with pytest.raises(StartupError, match="summary"):
        CommandRegistry([CommandSpec(name="c", summary="", usage="c", examples=(), run=ok)])


def test_builtins_register_through_entry_points() -> None:
    registry = CommandRegistry.from_entry_points()
    assert [s.name for s in registry.specs][:7] == ["owner", "find", "info", "deps", "team", "mine", "help"]
    for spec in registry.specs:
        assert spec.summary and spec.usage and spec.examples


def test_parse_handles_smart_quotes_and_mentions() -> None:
    assert parse("@callboard owner \u201cpayment service\u201d") == ("owner", ("payment service",))
    assert parse("/OWNER x") == ("owner", ("x",))
    assert parse('owner "unclosed') == ("owner", ('"unclosed',))


def test_parse_splits_as_shlex_does() -> None:
    """Text without quotes or backslashes (and text whose only quotes are an odd number of
    apostrophes) skips shlex: the words must be those shlex (or its fallback) gives."""
    import random
    import shlex

    from callboard.commands.dispatch import _clean

    def reference(text: str) -> tuple[str, tuple[str, ...]]:
        cleaned = _clean(text)
        try:
            words = shlex.split(cleaned)
        except ValueError:
            words = cleaned.split()
        return (words[0].lower().lstrip("/"), tuple(words[1:])) if words else ("", ())

    pieces = ["owner", "Who", "/OWNER", "x", "payment-service", "'", "'s", '"', "\\", " ", "  ", "\t", "\n", "\r",
              "\u00a0", "\u2003", "\x0b", "\x0c", "\u2019", "\u201c", "@bot ", "#", "é", "?"]
    rnd = random.Random(5)
    texts = ["", " ", "who's on call for x", "who's x's owner", "owner 'a b' c", "owner\u00a0x", "a\\", "'"]
    texts += ["".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 12))) for _ in range(20_000)]
    for text in texts:
        assert parse(text) == reference(text), repr(text)


async def test_mine_needs_to_know_the_asker(demo_app) -> None:
    anonymous = await demo_app.ask("mine")
    assert anonymous.status is Status.NOT_FOUND and "email" in anonymous.summary
    user = next(k for k in demo_app.catalog.index.keys() if k.startswith("user:"))
    reply = await demo_app.dispatcher.dispatch("what do my teams own?", user_ref=user)
    assert reply.status is Status.OK and reply.data["teams"]


async def test_picker_options_complete_what_is_typed(demo_app) -> None:
    from callboard.commands.find import picker_options

    options = dict(picker_options(demo_app.catalog, "paym"))
    assert options["component:default/payment-service"] == "payment-service (Component) · Payment Service"
    assert list(options)[:2] == ["system:default/payments", "group:default/payments-team"]  # "Payments" is shortest
    assert "component:default/payment-service" in [ref for ref, _ in picker_options(demo_app.catalog, "serv")]
    assert all(ref.startswith("group:") for ref, _ in picker_options(demo_app.catalog, "pay", kinds=("Group",)))
    assert picker_options(demo_app.catalog, "pay", kinds=("Group",))
    assert "component:default/payment-service" in [ref for ref, _ in picker_options(demo_app.catalog, "paymnt")]
    assert picker_options(demo_app.catalog, "  ") == []


async def test_a_one_shot_index_completes_as_a_servers_does(demo_app) -> None:
    """A one-shot command's index sorts its word starts only when a completion is first asked for."""
    from callboard.catalog.service import Catalog
    from callboard.commands.find import picker_options

    one_shot = Catalog(demo_app.catalog.engine)
    await one_shot.load_index()  # no graph: a one-shot command's
    assert one_shot.index._pending  # not sorted yet
    for typed in ("paym", "serv", "checkout", "pay"):
        assert picker_options(one_shot, typed) == picker_options(demo_app.catalog, typed), typed
    assert not one_shot.index._pending


async def test_a_picker_is_not_held_up_by_a_huge_typed_text(demo_app) -> None:
    """Typeahead text comes from the chat platform on every keystroke; a megabyte of it offers
    nothing, at once, instead of a fuzzy search of it."""
    from callboard.commands.find import MAX_TYPED, picker_options

    assert picker_options(demo_app.catalog, "payment-service")  # an ordinary one answers
    searched: list[str] = []
    complete = demo_app.catalog.complete

    def counted(query: str, **kw: Any) -> Any:
        searched.append(query)
        return complete(query, **kw)

    demo_app.catalog.complete = counted
    assert picker_options(demo_app.catalog, "p" * MAX_TYPED) == [] and len(searched) == 1  # searched, nothing
    assert picker_options(demo_app.catalog, "payment-service " * 65536) == []
    assert len(searched) == 1  # never searched
