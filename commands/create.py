"""``create [words]``: the Software Templates you may run, each opening its form;
``create status [task]``: how a run of yours went (your latest without an id).

Templates are listed only when the person may run them (``scaffolder.permissions``); words after
``create`` filter them by name, title, description and tags, typos allowed. A person sees only
their own tasks: another person's task id answers as if there were no such task.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from rapidfuzz.distance import DamerauLevenshtein

from callboard.catalog.search import allowed_typos
from callboard.catalog.service import Catalog
from callboard.scaffolder.catalog import list_templates
from callboard.scaffolder.model import TemplateDef
from callboard.scaffolder.permissions import Permissions
from callboard.scaffolder.tasks import Task, TaskRunner, Who, output_links, output_texts

from .api import (Actions, Block, CommandSpec, Code, Deps, Fields, Grammar, Header, Invocation, Item, ItemList, Links,
                  Notice, OpenForm, Phrasing, Reply, RunCommand, Status, Steps, Text)
from .grammar import words

__all__ = ["SPEC", "run"]

log = logging.getLogger(__name__)

#: Forms offered as buttons at most (Slack shows 25 elements in a row of actions; fewer read better).
_ACTIONS_MAX = 10
#: Templates listed at most.
_LIST_MAX = 50
#: Log lines a status shows (the last ones).
_LOG_TAIL = 15
#: How many of a person's latest tasks an id prefix is looked up among.
_RECENT = 50
#: Words in a filter that say nothing about which template ("create a new python service").
_FILLER = frozenset({"a", "an", "the", "new", "for", "me", "please", "some", "one", "template", "templates"})
_STATUS_WORDS = {"open": "waiting to run", "processing": "running", "completed": "completed", "failed": "failed",
                 "cancelled": "cancelled"}
_STEP_MARKS = {"done": "done", "skipped": "skipped", "failed": "FAILED", "started": "running"}


async def _templates(catalog: Catalog) -> tuple[list[TemplateDef], list[str]]:
    """The templates one may pick: the catalog's Template entities, then the built-ins not
    overridden by one of the same ref; and what is wrong with those that cannot be run."""
    listing = await list_templates(catalog)
    return sorted(listing.templates, key=lambda t: t.ref), list(listing.errors)


def _tokens(template: TemplateDef) -> list[str]:
    text = " ".join((template.name.replace("-", " ").replace("_", " "), template.title, template.description,
                     " ".join(template.tags)))
    return [w.word for w in words(text)]


def _score(query: Sequence[str], template: TemplateDef) -> int | None:
    """How well ``query``'s words name ``template`` (None: one of them does not)."""
    tokens = _tokens(template)
    name = template.name.lower()
    total = 0
    for q in query:
        if q in tokens or q == name:
            total += 3
        elif any(t.startswith(q) for t in tokens) or (len(q) >= 3 and q in name):
            total += 2
        elif any(abs(len(t) - len(q)) <= allowed_typos(len(q))
                 and DamerauLevenshtein.distance(q, t) <= allowed_typos(len(q)) for t in tokens):
            total += 1
        else:
            return None
    return total


def _filtered(templates: Sequence[TemplateDef], query: Sequence[str]) -> list[TemplateDef]:
    if not query:
        return sorted(templates, key=lambda t: (t.title.lower(), t.ref))
    scored = [(s, t) for t in templates if (s := _score(query, t)) is not None]
    scored.sort(key=lambda st: (-st[0], st[1].title.lower(), st[1].ref))
    return [t for _, t in scored]


def _detail(template: TemplateDef) -> str | None:
    parts = [template.description.strip()] if template.description.strip() else []
    if template.tags:
        parts.append("tags: " + ", ".join(template.tags))
    return " — ".join(parts) or None


async def _list(inv: Invocation, deps: Deps, parts: Sequence[str]) -> Reply:
    query = [w.word for w in words(" ".join(parts)) if w.word not in _FILLER]
    templates, broken = await _templates(deps.catalog)
    permissions = deps.permissions or Permissions((), deps.catalog)
    runnable = await permissions.runnable(inv.user_ref, templates)
    shown = _filtered(runnable, query)
    asked = " ".join(parts)
    data: dict[str, Any] = {"query": asked, "templates": [
        {"ref": t.ref, "name": t.name, "title": t.title, "description": t.description, "tags": list(t.tags)}
        for t in shown]}
    if not shown:
        if not runnable:
            text = ("There is no template you may run." if templates else
                    "There are no Software Templates in the catalog yet (Template entities).")
            return Reply.notice(Status.NOT_FOUND, text, data=data)
        return Reply.notice(Status.NOT_FOUND, f'No template you may run matches "{asked}". '
                                              f"Type `create` for all {len(runnable)} of them.", data=data)
    title = f'Templates matching "{asked}"' if query else "Templates you can run"
    blocks: list[Block] = [Header(text=title)]
    listed = shown[:_LIST_MAX]
    blocks.append(ItemList(title="Templates", items=tuple(
        Item(label=t.title, ref=t.ref, detail=_detail(t)) for t in listed), total=len(shown)))
    blocks.append(Actions(actions=tuple(OpenForm(label=t.title, form=t.ref) for t in shown[:_ACTIONS_MAX])))
    if len(shown) > _ACTIONS_MAX:
        blocks.append(Text(text=f"Buttons for the first {_ACTIONS_MAX}: type `create <words>` to narrow the list."))
    if broken and not query:
        blocks.append(Notice(level="warning", text=f"{len(broken)} template(s) in the catalog cannot be run: "
                             + "; ".join(broken[:5])))
        data["broken"] = list(broken)
    count = len(shown)
    return Reply(status=Status.OK, blocks=tuple(blocks), data=data,
                 summary=f"{count} template{'' if count == 1 else 's'} you can run" + (f' matching "{asked}"'
                                                                                         if query else ""))


def _when(value: datetime | None) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "-"


def _task_data(task: Task) -> dict[str, Any]:
    return {
        "id": task.id, "template": task.template_ref, "title": task.template_title, "status": task.status,
        "values": dict(task.values), "steps": [dict(s) for s in task.steps], "output": task.output,
        "error": task.error, "failed_step": task.failed_step, "created_at": task.created_at.isoformat(),
        "started_at": task.started_at.isoformat() if task.started_at else None,
        "finished_at": task.finished_at.isoformat() if task.finished_at else None,
    }


async def _mine(inv: Invocation, runner: TaskRunner, wanted: str | None) -> Task | Reply:
    """The person's task ``wanted`` (an id or the start of one), or their latest; a Reply when none."""
    who = Who(platform=inv.platform, user=inv.user)
    recent = await runner.tasks_of(inv.user_ref, who, limit=1 if wanted is None else _RECENT)
    if wanted is None:
        if not recent:
            return Reply.notice(Status.NOT_FOUND, "You have not run a template yet. Type `create` to see the "
                                                  "templates you can run.")
        return recent[0]
    wanted = wanted.lower()
    exact = next((t for t in recent if t.id == wanted), None)
    if exact is None and len(wanted) == 12:  # older than the recent ones: look it up, then check it is theirs
        task = await runner.get(wanted)
        if task is not None and _owns(inv, task):
            exact = task
    if exact is not None:
        return exact
    starting = [t for t in recent if t.id.startswith(wanted)] if len(wanted) >= 4 else []
    if len(starting) == 1:
        return starting[0]
    if len(starting) > 1:
        return Reply.notice(Status.AMBIGUOUS, f'Several of your tasks start with "{wanted}": '
                                              + ", ".join(t.id for t in starting[:5]) + ". Give more of the id.")
    return Reply.notice(Status.NOT_FOUND, f'You have no task "{wanted}". `create status` shows your latest one.')


def _owns(inv: Invocation, task: Task) -> bool:
    if inv.user_ref:
        return task.user_ref == inv.user_ref
    return task.user_ref is None and task.platform == inv.platform and task.user_id == (inv.user or "")


def _status_reply(task: Task) -> Reply:
    status = _STATUS_WORDS.get(task.status, task.status)
    blocks: list[Block] = [Header(text=f"{task.template_title}: {status}", subtitle=f"task {task.id}")]
    fields = [("Template", task.template_ref), ("Status", status), ("Started", _when(task.started_at or task.created_at))]
    if task.finished_at is not None:
        fields.append(("Finished", _when(task.finished_at)))
    blocks.append(Fields(pairs=tuple(fields)))
    if task.error:
        where = f" (step {task.failed_step})" if task.failed_step else ""
        blocks.append(Notice(level="error", text=f"Failed{where}: {task.error}"))
    if task.steps:
        blocks.append(Steps(items=tuple(
            f"{s.get('name') or s.get('id')}: {_STEP_MARKS.get(str(s.get('status')), str(s.get('status')))}"
            for s in task.steps), ordered=True))
        lines = [f"[{s.get('id')}] {line}" for s in task.steps for line in (s.get("log") or ())]
        if lines:
            blocks.append(Text(text="Log" + (f" (the last {_LOG_TAIL} lines)" if len(lines) > _LOG_TAIL else ""),
                               strong=True))
            blocks.append(Code(text="\n".join(lines[-_LOG_TAIL:])))
    links, entities, texts = _output(task)
    if links:
        blocks.append(Links(links=links))
    for title, content in texts:
        blocks.append(Text(text=title, strong=True) if title else Text(text=content))
        if title:
            blocks.append(Text(text=content))
    if entities:
        blocks.append(Actions(actions=tuple(RunCommand(label=title, command=f"info {ref}")
                                            for title, ref in entities[:_ACTIONS_MAX])))
    return Reply(status=Status.OK, blocks=tuple(blocks), data={"task": _task_data(task)},
                 summary=f"Task {task.id} ({task.template_title}): {status}")


def _output(task: Task) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...],
                                 tuple[tuple[str, str], ...]]:
    links, entities = output_links(task.output)
    return links, entities, output_texts(task.output)


async def _status(inv: Invocation, deps: Deps, rest: Sequence[str]) -> Reply:
    if deps.tasks is None:
        return Reply.notice(Status.ERROR, "Template runs are not available in this Callboard.")
    if len(rest) > 1:
        return Reply.notice(Status.USAGE, "Usage: create status [task id]")
    found = await _mine(inv, deps.tasks, rest[0] if rest else None)
    return found if isinstance(found, Reply) else _status_reply(found)


async def run(inv: Invocation, deps: Deps) -> Reply:
    parts = " ".join(inv.args).split()  # a phrasing hands the words over as one argument
    if parts and parts[0].lower() == "status":
        return await _status(inv, deps, parts[1:])
    return await _list(inv, deps, parts)


SPEC = CommandSpec(
    name="create",
    summary="Create something from a Software Template (a service, a docs site); `create status` shows your run",
    usage="create [words to filter the templates] | create status [task id]",
    examples=("create", "create python service", "create status", "I want to create a new documentation site"),
    run=run,
    aliases=("scaffold",),
    grammar=Grammar(
        phrasings=(
            "(create|scaffold|bootstrap) [a|an] [new] {query?}",
            "(I want|I would like|I need|how do I|how can I|can I|help me) [to] (create|make|scaffold|start|"
            "bootstrap|set up|spin up) [a|an] [new] {query?}",
            Phrasing(pattern="(which|what) [software] templates (are there|can I use|can I run|do we have|"
                             "are available)", args=()),
            Phrasing(pattern="[what is] [the] (status|progress) of my [last|latest] (task|run|template run)",
                     args=("status",)),
            Phrasing(pattern="how is my [last|latest] (task|run|template run) (going|doing)", args=("status",)),
        ),
        args=("{query}",),
        entity=None,
    ),
)
