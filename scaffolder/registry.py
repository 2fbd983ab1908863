"""The actions a template's steps may name, by id: Callboard's built-ins and plugins alike, loaded
from the ``callboard.actions`` entry point group (an entry point names an ``Action``, a list of
them, or a module with ``ACTIONS``).

Backstage templates also name actions Callboard does not provide (``fetch:rails``,
``notification:send``, ...). They are known here with the example outputs Backstage's dry-run
invents for them, so a dry-run of a Backstage template goes as Backstage's does (the step is
skipped); a real run stops at such a step with an error naming the action. An id that is neither
is an unknown action, refused before any step runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from importlib.metadata import entry_points
from typing import Any

from .actions.api import Action, ActionContext, ActionError

__all__ = ["ActionRegistry", "ActionLoadError", "BACKSTAGE_ONLY", "default_registry"]

GROUP = "callboard.actions"

_E = "<example>"
# Backstage actions Callboard does not run, with the outputs Backstage's dry-run makes up for
# them (generateExampleOutput over each action's output schema, @backstage/plugin-scaffolder-backend
# 4.2.0 and its modules; catalog:register's schema yields no entityRef, as the reference runs show).
BACKSTAGE_ONLY: Mapping[str, Mapping[str, Any]] = {
    "publish:github": {"remoteUrl": _E, "repoContentsUrl": _E, "commitHash": _E},
    "publish:github:pull-request": {"targetBranchName": _E, "remoteUrl": _E, "pullRequestNumber": 0},
    "publish:gitlab": {"remoteUrl": _E, "repoContentsUrl": _E, "projectId": 0, "commitHash": _E},
    "publish:gitlab:merge-request": {"targetBranchName": _E, "projectid": _E, "projectPath": _E,
                                     "mergeRequestUrl": _E},
    "publish:bitbucketCloud": {"remoteUrl": _E, "repoContentsUrl": _E, "commitHash": _E},
    "publish:azure": {"remoteUrl": _E, "repoContentsUrl": _E, "repositoryId": _E, "commitHash": _E},
    "publish:gerrit": {"remoteUrl": _E, "repoContentsUrl": _E, "commitHash": _E},
    "catalog:register": {},
    "catalog:fetch": {"entity": {}, "entities": []},
    "fetch:cookiecutter": {},
    "fetch:rails": {},
    "github:actions:dispatch": {},
    "github:pages:enable": {},
    "github:repo:create": {"remoteUrl": _E},
    "github:repo:push": {"remoteUrl": _E, "repoContentsUrl": _E, "commitHash": _E},
    "github:webhook": {},
    "github:environment:create": {},
    "notification:send": {},
    "gitlab:group:ensureExists": {"groupId": 0},
    "gitlab:issues:create": {"issueUrl": _E, "issueId": 0, "issueIid": 0},
}


class ActionLoadError(RuntimeError):
    """A plugin's entry point that does not load or does not hold actions; names the entry point."""


def _not_provided(action_id: str) -> Any:
    async def run(ctx: ActionContext) -> None:
        raise ActionError(f"{action_id} is a Backstage action Callboard does not provide; this step can run "
                          "only in a dry-run (where it is skipped, as Backstage's dry-run skips it)")

    return run


class ActionRegistry:
    """Actions by id. Registering an id twice is an error, except over a Backstage-only placeholder."""

    def __init__(self, actions: Iterable[Action] = (), *, backstage_only: bool = True) -> None:
        self._actions: dict[str, Action] = {}
        self._placeholders: set[str] = set()
        if backstage_only:
            for action_id, example in BACKSTAGE_ONLY.items():
                self._actions[action_id] = Action(id=action_id, run=_not_provided(action_id),
                                                  description="Backstage action (dry-run only in Callboard)",
                                                  supports_dry_run=False, example_outputs=example)
                self._placeholders.add(action_id)
        for action in actions:
            self.register(action)

    def register(self, action: Action, *, source: str = "") -> None:
        if not isinstance(action, Action):
            raise ActionLoadError(f"{source or 'register'}: {action!r} is not an Action")
        if action.id in self._actions and action.id not in self._placeholders:
            raise ActionLoadError(f"duplicate action id {action.id!r}{' from ' + source if source else ''}")
        self._actions[action.id] = action
        self._placeholders.discard(action.id)

    def get(self, action_id: str) -> Action | None:
        return self._actions.get(action_id)

    def provided(self, action_id: str) -> bool:
        """Whether Callboard really runs this action (not only skips it in a dry-run)."""
        return action_id in self._actions and action_id not in self._placeholders

    def __contains__(self, action_id: object) -> bool:
        return action_id in self._actions

    def __iter__(self) -> Iterator[Action]:
        """The actions Callboard provides (not the Backstage-only placeholders), by id."""
        return iter(sorted((a for a in self._actions.values() if a.id not in self._placeholders), key=lambda a: a.id))

    def ids(self) -> list[str]:
        return sorted(a for a in self._actions if a not in self._placeholders)

    @classmethod
    def from_entry_points(cls, group: str = GROUP) -> ActionRegistry:
        registry = cls()
        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            source = f"entry point {ep.name} = {ep.value} ({group})"
            try:
                loaded = ep.load()
            except Exception as exc:  # a broken plugin: say which, do not start half-loaded
                raise ActionLoadError(f"{source} does not load: {type(exc).__name__}: {exc}") from exc
            for action in _actions_in(loaded, source):
                registry.register(action, source=source)
        return registry


def _actions_in(loaded: Any, source: str) -> list[Action]:
    if isinstance(loaded, Action):
        return [loaded]
    if hasattr(loaded, "ACTIONS"):
        loaded = loaded.ACTIONS
    if isinstance(loaded, (list, tuple)) and all(isinstance(a, Action) for a in loaded):
        return list(loaded)
    raise ActionLoadError(f"{source} holds no actions (an Action, a list of them, or a module with ACTIONS)")


_DEFAULT: ActionRegistry | None = None


def default_registry() -> ActionRegistry:
    """The installed actions (entry points), loaded once per process."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = ActionRegistry.from_entry_points()
    return _DEFAULT
