"""The intent grammar: how a question becomes words, how phrasings are declared (by built-ins and
plugins alike) and checked at startup, and that hostile input cannot make matching slow."""

from __future__ import annotations

import time

import pytest

from callboard.bot.app import Callboard
from callboard.commands.api import CommandSpec, Deps, Grammar, Invocation, Phrasing, Reply, Status
from callboard.commands.dispatch import CommandRegistry, Dispatcher, StartupError
from callboard.commands.grammar import pattern_text, words


def test_words_read_as_people_type_them() -> None:
    ws = words("Who\u2019s on-call for \u201cpayment-service\u201d, right now?!")
    assert [w.word for w in ws] == ["who", "is", "on", "call", "for", "payment-service", "right", "now"]
    assert [w.text for w in ws if w.text][-3:] == ["payment-service", "right", "now"]
    assert [w.word for w in words("whos oncall")] == ["who", "is", "on", "call"]
    assert [(w.word, w.text) for w in words("what is aisha.khan's team?")][-3:] == [
        ("aisha.khan", "aisha.khan"), ("'s", ""), ("team", "team")]
    assert [w.text for w in words("owner PAYMENT_SERVICE")] == ["owner", "PAYMENT_SERVICE"]  # case kept for values
    assert words("  \t\n ?? ") == []


def test_phrasings_read_as_people_read_them() -> None:
    assert pattern_text("who (is|are) on call [for|of] {entity}") == "who is on call <entity>"
    assert pattern_text("{entity} 's (owner|owners)") == "<entity>'s owner"
    assert pattern_text("runbook (for|of) {entity} {topic?}") == "runbook for <entity> [topic]"


async def _ok(inv: Invocation, deps: Deps) -> Reply:
    return Reply.notice(Status.OK, f"{inv.command} {inv.args}")


def _spec(name: str, *phrasings: str | Phrasing, **grammar: object) -> CommandSpec:
    return CommandSpec(name=name, summary="s", usage=name, examples=(name,), run=_ok,
                       grammar=Grammar(phrasings=phrasings, **grammar))  # type: ignore[arg-type]


@pytest.mark.parametrize(("phrasings", "grammar", "problem"), [
    (("who (owns|runs {entity}",), {}, "cannot read it"),
    (("who owns {entity}", "(owner|) of {entity}"), {}, "an empty choice"),
    (("{entity}",), {}, "needs at least one word of its own"),
    (("{entity} [owner]",), {}, "needs at least one word of its own"),
    (("how do i {topic} {entity}",), {"args": ("{entity}", "{topic}")}, "must begin with the entity slot"),
    (("who owns {entity} {a} {b}",), {"args": ("{entity}", "{a}", "{b}")}, "three slots side by side"),
    (("who owns {entity} in {place}",), {}, "its slot {place} is in no argument"),
    ((Phrasing(pattern="who owns {entity}", args=("{entity}", "{topic}")),), {}, "which it has no slot for"),
    (("who owns {entity} or {entity}",), {}, "a slot appears twice"),
])
def test_a_phrasing_that_cannot_work_stops_the_start(phrasings: tuple[str, ...], grammar: dict[str, object],
                                                      problem: str) -> None:
    with pytest.raises(StartupError, match="command \"deploy\": phrasing") as info:
        CommandRegistry([_spec("deploy", *phrasings, **grammar)])
    assert problem in str(info.value)


def test_two_commands_cannot_claim_one_phrasing() -> None:
    with pytest.raises(StartupError, match="is also a phrasing of"):
        CommandRegistry([_spec("a", "who owns {entity}"), _spec("b", "who (owns) {entity}")])


async def test_a_plugin_declares_its_phrasings_like_a_builtin(demo_app: Callboard) -> None:
    """A third-party command's grammar is read the same way: its entity resolved (articles and kind
    words dropped), its topic split off by the catalog, its stop words dropped."""
    asked: list[Invocation] = []

    async def deploys(inv: Invocation, deps: Deps) -> Reply:
        asked.append(inv)
        return Reply.notice(Status.OK, "deployed")

    plugin = CommandSpec(
        name="deploys", summary="Recent deploys of a service", usage="deploys <entity> [environment]",
        examples=("deploys payment-service",), run=deploys,
        grammar=Grammar(phrasings=("(when|what) (was|were) (the last deploy|deployed) (of|to) {entity} {env?}",
                                   Phrasing(pattern="is {entity} (frozen|locked)", args=("{entity}", "freeze"))),
                        args=("{entity}", "{env}"), kinds=("component",), stop_words=("lately", "recently", "to", "in")))
    registry = CommandRegistry([*CommandRegistry.from_entry_points().specs, plugin])
    dispatcher = Dispatcher(registry, demo_app.dispatcher.deps)
    reply = await dispatcher.dispatch("hey, when was the last deploy of the payment service service to production lately?")
    assert reply.status is Status.OK and reply.command == "deploys"
    assert asked[-1].args == ("payment service", "production")
    await dispatcher.dispatch("is the checkout-api locked?")
    assert asked[-1].args == ("checkout-api", "freeze")
    # the built-ins still answer theirs
    assert (await dispatcher.dispatch("who owns payment-service?")).command == "owner"


async def test_every_example_is_answered_by_its_own_command(demo_app: Callboard) -> None:
    """The examples help shows (typed or in words) route to the command that lists them."""
    for spec in demo_app.dispatcher.registry.specs:
        for example in spec.examples:
            route = demo_app.dispatcher.route(example)
            assert route.spec is not None and route.spec.name == spec.name, (example, route)


async def test_help_shows_questions(demo_app: Callboard) -> None:
    general = await demo_app.ask("help")
    assert "who owns checkout-api?" in general.data["questions"]
    assert any(q.startswith("who is on call") for q in general.data["questions"])
    oncall = await demo_app.ask("help oncall")
    assert "who is on call <entity>" in oncall.data["questions"]
    runbook = await demo_app.ask("help runbook")
    assert "how do I <topic> on <entity>" in runbook.data["questions"]


async def test_typed_commands_come_first(demo_app: Callboard) -> None:
    """``runbook for x`` is the runbook's own phrasing; a typed command's words are otherwise its arguments."""
    route = demo_app.dispatcher.route
    assert route("runbook for payment-service rollback").args == ("payment-service", "rollback")
    assert route("runbook payment-service rollback").args == ("payment-service", "rollback")
    assert route("/owner payment-service").how == "command"
    assert route("find who owns payment-service").spec.name == "find"  # type: ignore[union-attr]
    assert route("search for payments").args == ("payments",)


async def test_a_bare_name_gets_its_card_or_the_candidates_never_an_unknown_command(demo_app: Callboard) -> None:
    one = await demo_app.ask("the payment service")
    assert one.status is Status.OK and one.subject == "component:default/payment-service"
    several = await demo_app.ask("payments")
    assert several.status is Status.AMBIGUOUS and several.command == "info"
    assert {c["ref"] for c in several.data["candidates"]} >= {"system:default/payments", "group:default/payments-team"}
    assert "know the command" not in several.summary
    nothing = await demo_app.ask("nothing-like-this-xyz")
    assert nothing.status is Status.USAGE and nothing.data["candidates"] == []
    typo = await demo_app.ask("ownr payment-service")
    assert typo.data["suggestion"] == "owner"


async def test_not_found_offers_nobody(demo_app: Callboard) -> None:
    for question in ("who owns nothing-like-this-xyz?", "who is on call for nothing-like-this-xyz",
                     "owner zzzz-qqqq-xxxx", "find nothing-like-this-xyz"):
        reply = await demo_app.ask(question)
        assert reply.status is Status.NOT_FOUND, (question, reply.summary)
        assert not reply.data.get("candidates") and not reply.data.get("results"), question


async def test_hostile_questions_are_read_fast(demo_app: Callboard) -> None:
    """Long runs of words a phrasing could end a slot at, spaces, repeats: each read in milliseconds."""
    hostile = [
        "how do I " + "on " * 160 + "payment-service",
        "who is on call for " + "for " * 150 + "x",
        "what does" + " " * 2000 + "x",
        "runbook for " + "payment service " * 30,
        "who is " * 70 + "x",
        "the " * 120 + "payment-service",
        "a" * 499,
        "who owns " + "x" * 5000,
    ]
    for text in hostile:
        started = time.perf_counter()
        await demo_app.ask(text)
        assert time.perf_counter() - started < 0.5, (text[:40], time.perf_counter() - started)
