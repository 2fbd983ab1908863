"""The terminal surface as a person uses it: ``callboard chat``'s loop, and what it prints.

Catalog text is shown as written, never read as Rich markup; commands, code and URLs reach the
terminal unframed and unwrapped at 80 columns (so they copy as the one line they are); the
suggested commands name entities briefly and still run on the same entity; a long question is
not printed back whole; Ctrl-C clears the line being typed and Ctrl-D leaves.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console
from rich.segment import Segment

from callboard.bot.app import Callboard
from callboard.bot.config import Settings
from callboard.bot.shell import render_rich, render_text
from callboard.bot.shell.chat import _interruptible, converse
from callboard.bot.shell.render import print_rich
from callboard.bot.shell.refs import short_ref
from callboard.commands.api import (
    Actions,
    Code,
    Fields,
    Header,
    Item,
    ItemList,
    Links,
    Notice,
    Reply,
    RunCommand,
    Status,
    Steps,
    Text,
)
from callboard.commands.dispatch import CommandRegistry

MARKUP = ("Grafana [/prod]", "[bold]not bold[/bold]", "[link=https://evil.example]click[/link]", "[/]", "[red]")


def _console(width: int = 80) -> Console:
    return Console(file=io.StringIO(), width=width, record=True, force_terminal=True, color_system="truecolor")


def _segments(reply: Reply, width: int = 80) -> list[Segment]:
    console = _console(width)
    return list(console.render(render_rich(reply), console.options))


def _shown(reply: Reply, width: int = 80) -> str:
    console = _console(width)
    print_rich(console, reply)
    return console.export_text()


def _markup_reply() -> Reply:
    text = " ".join(MARKUP)
    return Reply(status=Status.OK, summary=text, blocks=(
        Header(text=f"widget {MARKUP[1]}", subtitle=MARKUP[0]),
        Text(text=text),
        Fields(pairs=((MARKUP[3], text),)),
        ItemList(title=MARKUP[0], items=(Item(label=MARKUP[1], detail=MARKUP[2]),)),
        Links(links=((MARKUP[0], "https://grafana.example.com/d/1"), (MARKUP[2], "https://example.com/x"))),
        Steps(items=(f"restart {MARKUP[1]}\n```\nkubectl rollout restart {MARKUP[4]}\n```",)),
        Code(text=f"echo '{MARKUP[2]}'"),
        Notice(level="warning", text=text),
        Actions(actions=(RunCommand(label="x", command=f"owner {MARKUP[0]}"),)),
    ))


def test_catalog_text_is_never_read_as_rich_markup() -> None:
    reply = _markup_reply()
    shown = _shown(reply)
    for literal in MARKUP:
        assert literal in shown, literal
    for seg in _segments(reply):
        if seg.style is None:
            continue
        # "[bold]not bold[/bold]" is text: only the renderer's own styles apply, never one it names
        if "not bold" in seg.text and not seg.text.startswith("widget"):
            assert not seg.style.bold, seg
        assert seg.style.link != "https://evil.example", seg
        assert not (seg.style.color and seg.style.color.name == "red" and "[red]" not in seg.text), seg


def _widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def test_commands_code_and_urls_are_neither_framed_nor_wrapped_at_80_columns() -> None:
    command = "kubectl -n payments rollout restart deployment/payment-service --timeout=300s && " \
              "kubectl -n payments get pods -l app=payment-service -o wide"
    url = "https://grafana.example.com/d/abcdef/payment-service-overview?orgId=1&var-env=production&from=now-6h"
    reply = Reply(status=Status.OK, summary="s", blocks=(
        Header(text="Runbook for payment-service", subtitle="Component payment-service"),
        Steps(items=(f"Restart it\n```\n{command}\n```",)),
        Code(text=command),
        Links(links=(("Dashboard", url),)),
        Actions(actions=(RunCommand(label="x", command=f"docs payment-service {'restart ' * 12}".strip()),)),
    ))
    shown = _shown(reply, width=80)
    assert not set("│╭╮╰╯─") & set(shown), "commands sit inside a frame"
    lines = shown.splitlines()
    assert sum(command in line for line in lines) == 2, shown  # the step's and the code block's, each whole
    assert any(url in line for line in lines)
    assert any(line.strip() == f"docs payment-service {'restart ' * 12}".strip() for line in lines)
    assert _widest(shown) > 80  # long lines went out whole: the terminal wraps them, softly


async def test_next_names_entities_briefly_and_runs_on_the_same_entity(demo_app: Callboard) -> None:
    reply = await demo_app.ask("owner payment-service")
    commands = [a.command for b in reply.blocks if isinstance(b, Actions) for a in b.actions
                if isinstance(a, RunCommand)]
    assert commands and all("component:default/" not in c for c in commands), commands
    assert "oncall payment-service" in commands
    text = render_text(reply)
    next_lines = text.split("Next:\n", 1)[1].splitlines()
    assert [line.strip() for line in next_lines] == commands  # one per line, nothing around them
    for command in commands:
        again = await demo_app.ask(command)
        assert again.subject == "component:default/payment-service", (command, again.summary)
    # a short name that would be ambiguous keeps its kind; a full ref always resolves
    search = demo_app.catalog.search
    assert short_ref("system:default/payments", search) == "system:payments"
    assert short_ref("group:default/payments-team", search) == "payments-team"
    assert short_ref("component:default/no-such-thing", search) == "component:default/no-such-thing"
    assert (await demo_app.ask("info system:payments")).subject == "system:default/payments"


async def test_a_long_question_is_not_printed_back_whole(demo_app: Callboard) -> None:
    question = "find " + "zzqx " * 600
    reply = await demo_app.ask(question)
    for shown in (render_text(reply), _shown(reply)):
        assert "zzqx " * 40 not in shown
        assert _widest(shown) < 200 and "characters)" in shown


async def _chat(app: Callboard, keys: str) -> tuple[int, str]:
    console = _console()
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        session: PromptSession[str] = PromptSession(input=pipe, output=DummyOutput())
        code = await asyncio.wait_for(converse(app, console, session), 60)
    return code, console.export_text()


async def test_ctrl_c_clears_the_line_and_ctrl_d_leaves(demo_app: Callboard) -> None:
    code, shown = await _chat(demo_app, "owner paymnet\x03owner checkout-api\r\x04")
    assert code == 0
    assert "checkout-team" in shown
    assert "paymnet" not in shown and "payment-service" not in shown  # the cleared line was never asked
    code, shown = await _chat(demo_app, "team sre-team\rexit\rowner checkout-api\r")
    assert code == 0 and "sre-team" in shown and "checkout-team" not in shown


async def test_a_link_titled_like_markup_does_not_end_the_chat(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "catalog-info.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: widget\n"
        "  description: '[bold]not bold[/bold] [red]'\n  links:\n"
        "    - url: https://grafana.example.com/d/1\n      title: Grafana [/prod]\n"
        "spec:\n  type: service\n  lifecycle: production\n  owner: team-a\n")
    app = await Callboard.open(Settings(database_url=f"sqlite:///{tmp_path / 'cb.db'}", data_dir=str(tmp_path / "d")),
                               CommandRegistry.from_entry_points(), resident=True)
    try:
        assert not (await app.sync((str(catalog),))).errors
        code, shown = await _chat(app, "info widget\rowner widget\r\x04")
    finally:
        await app.close()
    assert code == 0
    assert "Grafana [/prod]" in shown and "[bold]not bold[/bold] [red]" in shown
    assert "team-a" in shown.split("Grafana [/prod]", 1)[1]  # the question after it was answered too


async def test_ctrl_c_while_answering_abandons_the_answer_only() -> None:
    before = signal.getsignal(signal.SIGINT)
    started = asyncio.Event()

    async def slow() -> Reply:
        started.set()
        await asyncio.sleep(30)
        raise AssertionError("not interrupted")

    async def interrupt() -> None:
        await started.wait()
        os.kill(os.getpid(), signal.SIGINT)

    pressing = asyncio.ensure_future(interrupt())
    assert await asyncio.wait_for(_interruptible(slow()), 10) is None
    await pressing
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C means what it meant before, afterwards

    async def quick() -> Reply:
        return Reply(status=Status.OK, blocks=(), summary="done")

    assert (await _interruptible(quick())) is not None


def test_a_form_is_offered_in_the_terminal_as_the_shell_command_that_asks_it() -> None:
    """In the terminal a template's button is `callboard create <name>` (the shell asks its
    questions one by one); `create template:...` typed in the chat would only list it again."""
    from callboard.bot.shell.render import action_text
    from callboard.commands.api import OpenForm

    assert action_text(OpenForm(label="Python service", form="template:default/python-service")).startswith(
        "callboard create python-service ")
    assert action_text(OpenForm(label="x", form="template:platform/svc")).startswith("callboard create platform/svc ")
