"""A template run's progress, posted to the person who started it through a chat surface.

``surface_notify(surface, to)`` is the ``notify`` of a run started from ``surface`` (``to`` is the
surface's own notion of where to post: Slack's ``(channel, thread_ts, asker)``): each finished or
failed step becomes a short message, and the end a message with the output's links and text.
``TaskNotifier`` builds the same for a task another replica started (from the task's stored
``Who``), for the surfaces this process serves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from callboard.commands.api import (Actions, Block, Header, Links, Notice, Reply, RunCommand, Status, Text)
from callboard.commands.forms import FormSubmission
from callboard.commands.template_forms import TemplateForms
from callboard.scaffolder.model import Runner, TemplateDef
from callboard.scaffolder.pickers import CatalogPickers
from callboard.scaffolder.tasks import NotAllowed, Notify, StepFinished, TaskFinished, TaskNote, Who

from .surface import Answer, DirectMessages, Surface, View

__all__ = ["TaskNotifier", "surface_notify", "task_reply", "template_forms"]


def task_reply(note: TaskNote) -> Reply | None:
    """The message for ``note`` (None: nothing worth a message, a step that was skipped or started)."""
    status_command = RunCommand(label="Status", command=f"create status {note.task_id}")
    if isinstance(note, StepFinished):
        step = note.step
        name = step.name or step.step_id
        if step.status == "done":
            text = f"{note.title}: step “{name}” done."
            return Reply(status=Status.OK, blocks=(Text(text=text),), summary=text, command="create",
                         data={"task": note.task_id, "step": step.step_id, "status": step.status})
        if step.status == "failed":
            text = f"{note.title}: step “{name}” failed."
            blocks: tuple[Block, ...] = (Notice(level="error", text=text),)
            if step.log:
                blocks += (Text(text=step.log[-1]),)
            return Reply(status=Status.ERROR, blocks=blocks, summary=text, command="create",
                         data={"task": note.task_id, "step": step.step_id, "status": step.status})
        return None
    return _finished(note, status_command)


def _finished(note: TaskFinished, status_command: RunCommand) -> Reply:
    data: dict[str, Any] = {"task": note.task_id, "status": note.status,
                            "links": [{"title": t, "url": u} for t, u in note.links],
                            "entities": [{"title": t, "ref": r} for t, r in note.entities]}
    if note.status != "completed":
        where = f" at step {note.failed_step}" if note.failed_step else ""
        text = f"{note.title} failed{where}: {note.error or 'no reason given'}"
        return Reply(status=Status.ERROR, blocks=(Notice(level="error", text=text), Actions(actions=(status_command,))),
                     summary=text, command="create", data=data)
    blocks: list[Block] = [Header(text=f"{note.title}: done", subtitle=f"task {note.task_id}")]
    if note.links:
        blocks.append(Links(links=note.links))
    for title, content in note.text:
        if title:
            blocks.append(Text(text=title, strong=True))
        blocks.append(Text(text=content))
    actions = [RunCommand(label=title, command=f"info {ref}") for title, ref in note.entities[:5]]
    blocks.append(Actions(actions=(*actions, status_command)))
    return Reply(status=Status.OK, blocks=tuple(blocks), summary=f"{note.title}: done", command="create", data=data)


def surface_notify(surface: Surface, to: Any) -> Notify:
    """The ``notify`` of a run started from ``surface``: messages posted where ``to`` says."""

    async def notify(note: TaskNote) -> None:
        reply = task_reply(note)
        if reply is not None:
            await surface.send(to, Answer(reply, View(asked=f"create status {note.task_id}")))

    return notify


class TaskNotifier:
    """For a task claimed here but started elsewhere: its notify, through this process's surface of
    the platform it was started from (None when this process serves no such surface)."""

    def __init__(self, surfaces: Mapping[str, Surface]) -> None:
        self.surfaces = dict(surfaces)

    def __call__(self, who: Who) -> Notify | None:
        surface = self.surfaces.get(who.platform)
        if surface is None or who.to is None:
            return None
        to = tuple(who.to) if isinstance(who.to, list) else who.to  # stored as JSON: a tuple comes back a list
        return surface_notify(surface, to)


def template_forms(app: Any, surface: Surface) -> TemplateForms:
    """The forms of the Software Templates of ``app`` (a Callboard) as ``surface`` shows them: a
    confirmed form starts a task, whose progress is posted to the person directly."""
    pickers = CatalogPickers(app.catalog)

    async def start(template: TemplateDef, values: Mapping[str, Any], secrets: Mapping[str, str],
                    submission: FormSubmission) -> Reply:
        entity = await app.catalog.get(submission.user_ref) if submission.user_ref else None
        runner = Runner(ref=submission.user_ref, entity=entity.data if entity else None,
                        groups=tuple(entity.related("memberOf")) if entity else ())
        to = surface.direct(submission.user) if isinstance(surface, DirectMessages) and submission.user else None
        try:
            task_id = await app.tasks.start(template, values, secrets, runner,
                                            surface_notify(surface, to) if to is not None else None,
                                            who=Who(platform=surface.name, user=submission.user, to=to))
        except NotAllowed as refused:
            return Reply.notice(Status.ERROR, str(refused))
        where = "I will post each step here as it finishes." if to is not None else "Ask `create status` for its progress."
        text = f"Creating with {template.title}: task {task_id}. {where}"
        return Reply(status=Status.OK, blocks=(Text(text=text), Actions(actions=(
            RunCommand(label="Status", command=f"create status {task_id}"),))), summary=text, command="create",
            data={"task": task_id, "template": template.ref})

    return TemplateForms(templates=app.template, start=start, may_run=app.permissions.may_run,
                         options=pickers.options, known=pickers.known)
