"""Docs for incidents, built for real with MkDocs: code in snippets and steps exactly as written
(whatever the line-number style), matched words marked in prose only, every page's URL shown,
the runbook's topics, and the fallback to the closest docs section when there is no runbook."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from callboard.bot.app import Callboard
from callboard.bot.shell.render import render_json, render_rich, render_text
from callboard.bot.slack.render import render
from callboard.bot.surface import View
from callboard.commands.api import Actions, Hit, Hits, ItemList, Reply, RunCommand, Status
from callboard.providers.techdocs.content import page_parts, section_text
from callboard.providers.techdocs.index import DocsIndex, Section, snippet_runs

from .test_techdocs import COMPONENT, TEAM, open_app, write

#: One page, four ways to number code lines (MkDocs + pymdownx.highlight + Pygments).
LINENUMS = {
    "table": "  - pymdownx.highlight:\n      linenums: true\n",
    "pymdownx-inline": ("  - pymdownx.highlight:\n      linenums: true\n      linenums_style: pymdownx-inline\n"
                        "      anchor_linenums: true\n      line_spans: __span\n"),
    "inline": "  - pymdownx.highlight:\n      linenums: true\n      linenums_style: inline\n",
    "fence": "",  # no site-wide setting: linenums="1" on the fence itself
}
COMMANDS = (
    "kubectl -n shop get pods -l app=blob-gateway -o wide",
    "kubectl -n shop scale deploy/blob-gateway --replicas=10",
    "kubectl logs deploy/blob-gateway --since=10m | grep -c ERROR | tee /tmp/errors.txt",
    "echo \"$(date -u) drained\" >> /var/log/drain.log && test -s /var/log/drain.log",
)
PAGE = """# Storage operations

Gateway for blobs in three zones.

## Draining a storage node

Disk pressure on a node. Check and drain it:

```bash linenums="1"
{commands}
```

Then run `kubectl drain node-7 --ignore-daemonsets --delete-emptydir-data` and wait.

## Rotating the signing key

1. Generate a key:
    ```bash
    openssl rand -hex 32 | keyctl rotate --service blobs --stdin
    ```
2. Rotate the key: `keyctl rotate --service auth`
3. Check with `` curl -H 'X-Sig: `sig`' https://blobs.internal/health ``
"""
MKDOCS = ("site_name: {name}\nplugins:\n  - techdocs-core\nmarkdown_extensions:\n  - admonition\n"
          "  - pymdownx.superfences\n{extra}")


def component(root: Path, name: str, pages: dict[str, str], *, mkdocs: str = MKDOCS, extra: str = "") -> None:
    write(root / name / "catalog-info.yaml", COMPONENT.format(name=name, ref="dir:.", extra=""))
    write(root / name / "mkdocs.yml", mkdocs.format(name=name, extra=extra))
    for page, text in pages.items():
        write(root / name / "docs" / page, text)


async def built(tmp_path: Path, make: dict[str, tuple[dict[str, str], str]]) -> Callboard:
    root = tmp_path / "catalog"
    write(root / "org" / "catalog-info.yaml", TEAM)
    for name, (pages, extra) in make.items():
        component(root, name, pages, extra=extra)
    app = await open_app(tmp_path)
    summary = await app.sync((str(root),))
    assert not summary.errors, summary.errors
    docs = await app.sync_docs()
    assert (docs.built, docs.failed) == (len(make), 0), docs.errors
    return app


def _code_lines(text: str) -> list[str]:
    """The lines of text inside ``` fences."""
    out, inside = [], False
    for line in text.split("\n"):
        if re.fullmatch(r"\s*`{3,}\w*", line):
            inside = not inside
        elif inside:
            out.append(line.strip())
    return out


async def test_code_is_kept_as_written_whatever_numbers_its_lines(tmp_path: Path) -> None:
    names = {style: f"store-{style}" for style in LINENUMS}
    page = PAGE.format(commands="\n".join(COMMANDS))
    app = await built(tmp_path, {name: ({"index.md": page}, LINENUMS[style]) for style, name in names.items()})
    try:
        for style, name in names.items():
            key = f"component:default/{name}"
            # the index: each command whole, nothing inserted, no line number in front
            (draining,) = [s for s in await app.docs.sections(key) if s.title == "Draining a storage node"]
            assert "\n".join(COMMANDS) in draining.text, (style, draining.text)
            for line in draining.text.split("\n"):
                assert not re.match(r"\d", line), (style, line)
            assert " = " not in draining.text and "1 2 3" not in draining.text

            # a docs search whose words are inside the commands: the snippet shows them as written
            reply = await app.ask(f"docs {name} replicas grep")
            assert reply.status is Status.OK and reply.data["hits"][0]["location"] == "#draining-a-storage-node"
            text = render_text(reply)
            shown = _code_lines(text)
            # every code line shown is a whole line as written; those with the words are shown
            assert shown and all(line in COMMANDS for line in shown), (style, text)
            assert COMMANDS[1] in shown and COMMANDS[2] in shown, (style, text)
            assert "**" not in "\n".join(shown)
            assert reply.data["hits"][0]["url"] in text  # the page's URL, whole
            hit_json = json.loads(render_json(reply))["hits"][0]
            assert COMMANDS[1] in hit_json["snippet"] and hit_json["url"].endswith("#draining-a-storage-node")

            # the runbook fallback posts the steps: the same commands, the same key rotation
            reply = await app.ask(f"runbook {name} draining")
            assert reply.status is Status.OK, render_text(reply)
            assert _code_lines(render_text(reply)) == list(COMMANDS)
            reply = await app.ask(f"runbook {name} signing key")
            text = render_text(reply)
            assert "openssl rand -hex 32 | keyctl rotate --service blobs --stdin" in _code_lines(text)
            assert "Rotate the key: `keyctl rotate --service auth`" in text
            assert "``curl -H 'X-Sig: `sig`' https://blobs.internal/health``" in text
    finally:
        await app.close()


async def test_matched_words_are_marked_in_prose_never_in_code(tmp_path: Path) -> None:
    app = await built(tmp_path, {"keys": ({"index.md": PAGE.format(commands="\n".join(COMMANDS))}, "")})
    try:
        reply = await app.ask("docs keyctl rotate")
        assert reply.status is Status.OK
        text = render_text(reply)
        assert "**Rotate** the key: `keyctl rotate --service auth`" in text, text
        assert "keyctl **rotate**" not in text and "**keyctl**" not in text
        assert "openssl rand -hex 32 | keyctl rotate --service blobs --stdin" in _code_lines(text)

        blob = json.dumps(render(reply, View(asked="docs keyctl rotate")).blocks)
        assert "*Rotate* the key: `keyctl rotate --service auth`" in blob
        assert "*keyctl*" not in blob and "*rotate*" not in blob  # no bold inside code
        assert "```\\nopenssl rand -hex 32 | keyctl rotate --service blobs --stdin\\n```" in blob  # no "bash" in Slack's fence
        url = reply.data["hits"][0]["url"]
        assert url in blob  # Slack: the URL as text too (file URLs cannot be links)

        rich = _rich_text(reply)
        assert url in rich and "```" not in rich
        assert "openssl rand -hex 32 | keyctl rotate --service blobs --stdin" in rich
    finally:
        await app.close()


def _rich_text(reply: Reply) -> str:
    from rich.console import Console

    console = Console(width=400, record=True, file=io.StringIO())
    console.print(render_rich(reply))
    return console.export_text()


OPERATIONS = """# Operations

How checkout-web is run in production.

## Deploying

Deploys go through Argo CD: `argocd app sync checkout-web --prune`.

## Rolling back a release

1. Find the last good revision:
    ```bash
    argocd app history checkout-web | tail -n 5
    ```
2. Roll back to it: `argocd app rollback checkout-web 41`

## Restarting the pods

`kubectl -n web rollout restart deploy/checkout-web` restarts them one at a time.
"""


async def test_runbook_falls_back_to_the_closest_docs_section(tmp_path: Path) -> None:
    app = await built(tmp_path, {"checkout-web": ({"index.md": "# Checkout web\n\nThe checkout pages.\n",
                                                   "operations.md": OPERATIONS}, "")})
    try:
        reply = await app.ask("runbook checkout-web rollback")
        assert reply.status is Status.OK, render_text(reply)
        text = render_text(reply)
        assert ("checkout-web has no runbook page; this is the closest section of its docs: "
                "Operations › Rolling back a release.") in text
        assert "argocd app history checkout-web | tail -n 5" in _code_lines(text)
        assert "Deploys go through" not in text and "restarts them" not in text  # that section only
        assert reply.data["section"] == "operations/#rolling-back-a-release" and reply.data["source"] == "docs"
        assert reply.data["url"].endswith("operations/index.html#rolling-back-a-release") and reply.data["url"] in text

        for topic, location in [("restart", "operations/#restarting-the-pods"),
                                ("restarting pods", "operations/#restarting-the-pods"),
                                ("roll back", "operations/#rolling-back-a-release"),
                                ("rolled back", "operations/#rolling-back-a-release"),
                                ("deploy", "operations/#deploying")]:
            reply = await app.ask(f"runbook checkout-web {topic}")
            assert reply.data["section"] == location, (topic, render_text(reply))

        nothing = await app.ask("runbook checkout-web kafka partitions")
        assert nothing.status is Status.NOT_FOUND
        assert 'has no runbook page, and nothing in its docs matches "kafka partitions"' in nothing.summary
        bare = await app.ask("runbook checkout-web")
        assert bare.status is Status.NOT_FOUND and "runbook checkout-web <topic>" in bare.summary
        # ...and lists what its docs cover, each section a command away that answers with it
        (listed,) = [b for b in bare.blocks if isinstance(b, ItemList) and b.title == "Sections of its docs"]
        assert "Rolling back a release" in [i.label for i in listed.items]
        (rollback,) = [t for t in bare.data["topics"] if t["title"] == "Rolling back a release"]
        picked = await app.ask(rollback["command"])
        assert picked.status is Status.OK and picked.data["section"] == "operations/#rolling-back-a-release"
    finally:
        await app.close()


def _topic(title: str, body_lines: int) -> str:
    steps = "\n".join(f"{i}. Step {i} of {title.lower()}: `svcctl {title.split()[0].lower()} --step={i}`"
                      for i in range(1, body_lines + 1))
    return f"## {title}\n\n{steps}\n"


RUNBOOK = "# Ledger runbook\n\nPage the ledger on-call first; every step below is safe to repeat.\n\n" + "\n".join(
    _topic(t, 12) for t in ("Replication lag", "Stuck month-end close", "Disk full on ledger-db", "Bad deploy"))


async def test_runbook_without_a_topic_is_its_introduction_and_its_topics(tmp_path: Path) -> None:
    no_intro = RUNBOOK.replace("Page the ledger on-call first; every step below is safe to repeat.\n\n", "")
    app = await built(tmp_path, {"ledger": ({"index.md": "# Ledger\n", "runbook.md": RUNBOOK}, ""),
                                 "journal": ({"index.md": "# Journal\n", "runbook.md": no_intro}, "")})
    try:
        reply = await app.ask("runbook ledger")
        assert reply.status is Status.OK
        text = render_text(reply)
        assert "Page the ledger on-call first" in text and "Step 1 of" not in text  # the introduction only
        assert len(text.split("\n")) < 30, text
        (topics,) = [b for b in reply.blocks if isinstance(b, ItemList) and b.title == "Topics"]
        assert [i.label for i in topics.items] == ["Replication lag", "Stuck month-end close", "Disk full on ledger-db",
                                                   "Bad deploy"]
        commands = [a.command for b in reply.blocks if isinstance(b, Actions) for a in b.actions
                    if isinstance(a, RunCommand) and a.command.startswith("runbook ")]
        # the terminal names the entity as briefly as still resolves it; the data keeps the full ref
        assert len(commands) == 4 and [t["command"] for t in reply.data["topics"]] == [
            c.replace("runbook ledger ", "runbook component:default/ledger ", 1) for c in commands]
        assert all(t["url"].endswith("runbook/index.html#" + t["section"].partition("#")[2]) for t in reply.data["topics"])

        # each topic's command answers with that topic, whole, and offers the others
        for command, title in zip(commands, [i.label for i in topics.items]):
            answer = await app.ask(command)
            assert answer.data["title"] == title, (command, render_text(answer))
            shown = render_text(answer)
            assert f"Step 12 of {title.lower()}" in shown and "Page the ledger on-call first" not in shown
            others = [a.command for b in answer.blocks if isinstance(b, Actions) for a in b.actions
                      if isinstance(a, RunCommand) and a.command.startswith("runbook ")]
            assert command not in others and len(others) == 3

        # no introduction: the first topic, and the list
        reply = await app.ask("runbook journal")
        text = render_text(reply)
        assert reply.data["title"] == "Replication lag" and "Step 12 of replication lag" in text
        assert "Step 1 of stuck month-end close" not in text and "Disk full on ledger-db" in text
    finally:
        await app.close()


async def test_demo_runbook_without_a_topic_is_short(tmp_path: Path) -> None:
    from callboard.bot.app import demo_catalog_path
    from callboard.bot.config import Settings
    from callboard.commands.dispatch import CommandRegistry

    app = await Callboard.open(Settings(database_url=f"sqlite:///{tmp_path / 'demo.db'}", data_dir=str(tmp_path / "data")),
                               CommandRegistry.from_entry_points(), resident=True)
    try:
        await app.sync((str(demo_catalog_path()),))
        assert (await app.sync_docs()).failed == 0
        for name in ("payment-service", "checkout-api", "auth-service", "order-service"):
            reply = await app.ask(f"runbook {name}")
            text = render_text(reply)
            assert reply.status is Status.OK and len(reply.data["topics"]) >= 3, text
            assert len(text.split("\n")) <= 45, text
            first = reply.data["topics"][1]
            picked = await app.ask(first["command"])
            assert picked.data["section"] == first["section"], render_text(picked)
    finally:
        await app.close()


# --- pure parts ---------------------------------------------------------------------------------


def test_snippet_keeps_code_whole_and_unmarked() -> None:
    parts = page_parts(
        '<article><h2 id="a">A</h2><p>Restart it: <code>svc restart --now</code> then wait for the restart.</p>'
        '<div class="language-bash highlight"><pre><span></span><code>'
        + "".join(f'<span class="linenos">{i}</span>line{i}<span class="o">=</span>{i}\n' for i in range(1, 60))
        + "</code></pre></div><p>After the restart, done.</p></article>")
    text, code = section_text([p for p in parts if p.kind != "heading"])
    assert "line1=1\nline2=2" in text and "1line1" not in text
    at = text.index("restart --now")
    prose = text.index("the restart") + 4
    runs = snippet_runs(text, code, at + 4, prose + 10, [(at, at + 7), (prose, prose + 7)])
    joined = "".join(t for t, _ in runs)
    assert "`svc restart --now`" in joined  # widened to the whole span
    assert [t for t, m in runs if m] == ["restart"] and "wait for the " in joined  # the prose match only

    # a window that ends inside a long block: cut at a line end, the fence closed, "…" after it
    middle = text.index("line30=30")
    runs = snippet_runs(text, code, text.index("done") - 400, middle + 3, [])
    joined = "".join(t for t, _ in runs)
    assert "line30=30\n```\n…" in joined and joined.count("```") == 2 and joined.startswith("…\n```bash\n")


def test_index_matches_word_forms_and_compounds(tmp_path: Path) -> None:
    index = DocsIndex(tmp_path / "index")
    index.replace_many([("component:default/web", [
        Section(location="ops/#rolling-back", page_title="Ops", title="Rolling back a release", text="Use the previous tag."),
        Section(location="ops/#restarting", page_title="Ops", title="Restarting pods", text="One at a time."),
        Section(location="ops/#setup", page_title="Ops", title="Setup", text="Install the agent; the failover is manual."),
        Section(location="ops/#other", page_title="Ops", title="Other things", text="Nothing about that."),
    ])])
    for query, location in [("rollback", "ops/#rolling-back"), ("rollbacks", "ops/#rolling-back"),
                            ("restart", "ops/#restarting"), ("restarts", "ops/#restarting"),
                            ("set up", "ops/#setup"), ("fail over", "ops/#setup")]:
        hits = index.search(query, limit=1)
        assert hits and hits[0].location == location, (query, hits)


def test_a_hit_shows_its_url_in_every_output() -> None:
    url = "https://backstage.example.com/docs/default/component/web/ops/#restarting"
    reply = Reply(status=Status.OK, summary="s", data={"hits": [{"url": url}]}, blocks=(
        Hits(title="Best matches", hits=(Hit(title="Restarting", where="web › Ops", runs=(("Restart `svc`", False),),
                                             url=url),)),))
    assert url in render_text(reply) and url in _rich_text(reply) and url in render_json(reply)
    slack = json.dumps(render(reply).blocks)
    assert f"<{url}|Restarting>" in slack and f"<{url}|{url}>" in slack


def test_code_with_backticks_gets_a_longer_fence() -> None:
    parts = page_parts('<article><h2 id="a">A</h2><pre><code>echo "```"\nls</code></pre></article>')
    text, code = section_text([p for p in parts if p.kind != "heading"])
    (span,) = code
    assert text[span[1]:span[2]] == 'echo "```"\nls' and text.startswith("````\n") and text.endswith("\n````")


def test_prose_marks_never_break_what_is_copied() -> None:
    text = "Check https://status.stripe.com, then /var/log/stripe and APP=stripe; pass --stripe or run blob-gateway. Stripe!"
    words = [(m.start(), m.end()) for m in re.finditer(r"(?i)stripe|gateway", text)]
    runs = snippet_runs(text, (), 0, len(text), words)
    assert [t for t, m in runs if m] == ["blob-gateway", "Stripe"]  # the name whole; no mark in a URL, path, option
    assert "".join(t for t, _ in runs) == text


RICH_PAGE = '''# Recovery

## Rebalancing

=== "CLI"

    ```bash
    blobctl rebalance --from=node-7 --to=node-9 --rate-limit=50MiB
    ```

=== "API"

    ```http
    POST /v1/rebalance?from=node-7&to=node-9 HTTP/1.1
    ```

??? warning "If a node will not drain"
    Force it: `kubectl delete pod blob-0 --grace-period=0 --force`

    ```bash
    kubectl get pods -o name | xargs -n1 kubectl delete --wait=false
    ```

| Flag | Meaning |
|---|---|
| `--rate-limit=50MiB` | bytes per second |
'''
RICH_EXTENSIONS = ("  - pymdownx.details\n  - pymdownx.tabbed:\n      alternate_style: true\n"
                   "  - pymdownx.highlight:\n      linenums: true\n")


async def test_tabs_details_and_tables_keep_their_code(tmp_path: Path) -> None:
    app = await built(tmp_path, {"blobs": ({"index.md": "# Blobs\n", "recovery.md": RICH_PAGE}, RICH_EXTENSIONS)})
    try:
        (section,) = [s for s in await app.docs.sections("component:default/blobs") if s.title == "Rebalancing"]
        assert section.text.startswith("CLI API\n```bash\nblobctl rebalance --from=node-7 --to=node-9 --rate-limit=50MiB\n```")
        for code in ("POST /v1/rebalance?from=node-7&to=node-9 HTTP/1.1",
                     "kubectl get pods -o name | xargs -n1 kubectl delete --wait=false"):
            assert f"\n{code}\n" in section.text
        assert "Force it: `kubectl delete pod blob-0 --grace-period=0 --force`" in section.text
        assert "`--rate-limit=50MiB` | bytes per second" in section.text
        assert [section.text[i:e] for _, i, e, _ in section.code] == [
            "blobctl rebalance --from=node-7 --to=node-9 --rate-limit=50MiB",
            "POST /v1/rebalance?from=node-7&to=node-9 HTTP/1.1",
            "kubectl delete pod blob-0 --grace-period=0 --force",
            "kubectl get pods -o name | xargs -n1 kubectl delete --wait=false",
            "--rate-limit=50MiB"]
        reply = await app.ask("runbook blobs rebalance")
        assert "blobctl rebalance --from=node-7 --to=node-9 --rate-limit=50MiB" in _code_lines(render_text(reply))
    finally:
        await app.close()
