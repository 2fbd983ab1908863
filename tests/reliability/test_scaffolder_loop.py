"""A template run leaves the event loop responsive: a big skeleton (2,000 files in 40 folders,
each with expressions in its contents and its name) rendered by fetch:template through the
engine, while a heartbeat measures the loop's longest gap (``test_event_loop._responsive``).

The control is the same template run by the same engine, with fetch:template's own rendering
called on the loop instead of in a thread: its gap is as long as the rendering, which proves the
work is big enough to matter; the real action's gap must stay well below it.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path
from typing import Any

from callboard.scaffolder.actions.api import ActionContext, ActionDeps
from callboard.scaffolder.actions.fetch import FETCH_TEMPLATE, _render_template, _template_options, skeleton_source
from callboard.scaffolder.engine import RunResult, execute
from callboard.scaffolder.model import Runner, template_from_document
from callboard.scaffolder.registry import ActionRegistry, default_registry

from .test_event_loop import _responsive

FILES, FOLDERS = 2000, 40

CONTENT = """\
# ${{ values.name }} — module {n}

Owned by ${{ values.owner }}.
{% for item in values.items %}- ${{ item }} of ${{ values.name | upper }}
{% endfor %}
"""


def _skeleton(root: Path) -> None:
    for n in range(FILES):
        folder = root / "skeleton" / f"pkg{n % FOLDERS}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"${{{{ values.name }}}}_{n}.md").write_text(CONTENT.replace("{n}", str(n)))


def _blocking_registry() -> ActionRegistry:
    """fetch:template with its rendering done on the event loop (the control)."""

    async def on_the_loop(ctx: ActionContext) -> None:
        ctx.log("Fetching template content from remote URL")
        _render_template(ctx, _template_options(ctx), skeleton_source(ctx, ctx.input.get("url")))

    registry = ActionRegistry()
    for action in default_registry():
        registry.register(replace(action, run=on_the_loop) if action.id == FETCH_TEMPLATE.id else action)
    return registry


async def test_rendering_a_big_skeleton_leaves_the_loop_responsive(tmp_path: Path) -> None:
    _skeleton(tmp_path / "template")
    template = template_from_document({
        "apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template", "metadata": {"name": "big"},
        "spec": {"steps": [{"id": "fetch", "action": "fetch:template", "input": {
            "url": "./skeleton",
            "values": {"name": "${{ parameters.name }}", "owner": "team-a", "items": ["a", "b", "c"]}}}]},
    }, base_dir=tmp_path / "template")
    runs = itertools.count()

    def run(registry: ActionRegistry | None) -> Any:
        async def go() -> RunResult:
            workspace = tmp_path / f"ws-{next(runs)}"
            result = await execute(template, {"name": "orders"}, secrets={}, user=Runner(), workspace=workspace,
                                   deps=ActionDeps(), registry=registry)
            assert result.ok, result.error
            return result
        return go

    blocked, threaded = await _responsive(run(_blocking_registry()), run(None))
    # the same work both ways: every file written, rendered alike
    assert [e.message for e in blocked.entries if "Processing" in e.message] == [
        e.message for e in threaded.entries if "Processing" in e.message]
    written = sorted((tmp_path / "ws-1").rglob("*.md"))
    assert len(written) == FILES
    sample = tmp_path / "ws-1" / "pkg7" / "orders_7.md"
    assert sample.read_text() == ("# orders — module 7\n\nOwned by team-a.\n- a of ORDERS\n- b of ORDERS\n"
                                  "- c of ORDERS\n\n")  # no trim_blocks: the loop keeps its newline
