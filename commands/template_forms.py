"""Templates as forms in a conversation: the ``FormHandler`` a surface opens and submits pages to.

``open`` shows page 1 (or says why not: no such template, the person may not run it, a field
Callboard cannot show). ``submit`` takes one page's values: the same page with its field errors,
the same page grown by the fields its answers turned on, the next page, then a review of
everything (secrets masked), and on confirming the review, the run, through the injected
``start``. Who may run a template is asked of ``may_run`` when the form opens and again on
confirming.

Secrets (``ui:field: Secret``) never enter the form's values, which the conversation keeps in the
database between pages: the values hold Backstage's mask (``****``) and the secret stays in this
process's memory for ``SECRET_TTL_S``, tied to the form and the person. A secret another replica
took, or one that expired, is asked for again on its page rather than run without.
"""

from __future__ import annotations

import inspect
import secrets as _secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from .api import Reply, Status, Unanswered
from .forms import Choice, FieldError, Form, FormPage, FormStep, FormSubmission

from callboard.scaffolder import forms as f
from callboard.scaffolder.model import TemplateDef

__all__ = ["FindTemplate", "MayRun", "PickerOptions", "SECRET_TTL_S", "StartRun", "TemplateForms", "REVIEW_TITLE"]

#: The template with this ref (``None``: there is none).
FindTemplate = Callable[[str], Awaitable[TemplateDef | None]]
#: Whether the person (their catalog User ref, ``None`` when unknown) may run the template.
MayRun = Callable[[str | None, TemplateDef], "bool | Awaitable[bool]"]
#: Start a run: (template, values, secrets, the confirming submission: who, on which platform) ->
#: the answer to show (the task runner's start, through the surface the form came from).
StartRun = Callable[[TemplateDef, Mapping[str, Any], Mapping[str, str], FormSubmission], Awaitable[Reply]]
#: A picker's options: (field, what was typed, user ref) -> choices (``pickers.CatalogPickers.options``).
PickerOptions = Callable[[f.FieldSpec, str, str | None], Awaitable[list[Choice]]]

SECRET_TTL_S = 1800.0
REVIEW_TITLE = "Review and create"
#: The form value naming where this form's secrets are kept (never passed to a template).
_SECRETS_KEY = "__callboard_secrets__"


def _allow(user_ref: str | None, template: TemplateDef) -> bool:
    return True


class TemplateForms:
    """The scaffolder's ``FormHandler`` (and ``FieldOptions``)."""

    def __init__(self, *, templates: FindTemplate, start: StartRun, may_run: MayRun = _allow,
                 options: PickerOptions | None = None, known: Callable[[str], bool] | None = None,
                 hosts: tuple[str, ...] = ("github.com",), clock: Callable[[], float] = time.monotonic) -> None:
        self._templates = templates
        self._start = start
        self._may_run = may_run
        self._options = options
        self._known = known
        self.hosts = hosts
        self._clock = clock
        self._secrets: dict[str, tuple[str | None, float, dict[str, str]]] = {}  # token -> (user, kept at, secrets)

    # --- FormHandler ------------------------------------------------------------------------------

    async def open(self, form: str, values: Mapping[str, Any], user_ref: str | None) -> Form:
        template = await self._template(form, user_ref)
        return self._form(template, f.apply_defaults(template, values), page=0)

    async def submit(self, form: Form, submission: FormSubmission) -> FormStep:
        try:
            template = await self._template(form.id, submission.user_ref)
        except Unanswered as unanswered:
            return unanswered.reply
        values = f.apply_defaults(template, form.values)
        pages = len(template.parameters)
        if form.page >= pages:
            return await self._confirm(template, values, submission)
        return self._page(template, values, form.page, submission)

    async def options(self, form: Form, field: str, query: str, user_ref: str | None) -> list[Choice]:
        """A picker's options as the person types (empty for any other field)."""
        if self._options is None or form.page >= len(form.pages):
            return []
        template = await self._templates(form.id)
        if template is None or form.page >= len(template.parameters):
            return []
        spec = next((s for s in f.field_specs(template.parameters[form.page], form.values, hosts=self.hosts)
                     if s.name == field), None)
        if spec is None or spec.picker not in ("EntityPicker", "OwnerPicker", "OwnedEntityPicker", "EntityTagsPicker"):
            return []
        return await self._options(spec, query, user_ref)

    # --- pages -------------------------------------------------------------------------------------

    async def _template(self, ref: str, user_ref: str | None) -> TemplateDef:
        template = await self._templates(ref)
        if template is None:
            raise Unanswered(Reply.notice(Status.NOT_FOUND, f"There is no template {ref}."))
        allowed = self._may_run(user_ref, template)
        if inspect.isawaitable(allowed):
            allowed = await allowed
        if not allowed:
            raise Unanswered(Reply.notice(Status.ERROR, f"You may not run the template {template.title} ({ref})."))
        problems = f.unsupported(template)
        if problems:
            raise Unanswered(Reply.notice(
                Status.ERROR, f"The template {template.title} cannot be shown here: {'; '.join(problems)}. "
                              "Run it in Backstage, or ask its owner to use a field Callboard knows."))
        return template

    def _form(self, template: TemplateDef, values: Mapping[str, Any], *, page: int,
              errors: tuple[FieldError, ...] = (), extra: Mapping[str, Any] | None = None) -> Form:
        """The form at ``page`` (the review after the last parameter page); ``extra``: values shown
        on the fields but not kept (what was typed into a field that has an error)."""
        pages = list(f.form_pages(template, values, hosts=self.hosts))
        if extra and page < len(pages):
            pages[page] = replace(pages[page], fields=tuple(
                replace(fd, default=extra[fd.name]) if fd.name in extra and fd.type.value != "password" else fd
                for fd in pages[page].fields))
        review = FormPage(title=REVIEW_TITLE, fields=(), description="Check what you entered, then create.",
                          review=f.review_pairs(template, values, hosts=self.hosts))
        return Form(id=template.ref, title=template.title, pages=(*pages, review), page=page, values=dict(values),
                    errors=errors, submit_label="Next")

    def _page(self, template: TemplateDef, values: dict[str, Any], page: int, submission: FormSubmission) -> Form:
        schema = template.parameters[page]
        before = f.field_specs(schema, values, hosts=self.hosts)
        shown = {s.name: s for s in before if not s.hidden}
        errors: list[FieldError] = []
        typed: dict[str, Any] = {}
        merged = f.copy_values(values)
        token = str(merged.get(_SECRETS_KEY) or "")
        for name, raw in submission.values.items():
            spec = shown.get(name)
            if spec is None:
                continue  # not a field of this page (a stale modal): ignored, as Backstage's omitExtraData
            if spec.secret and (raw is None or raw == "") and token and self._held(token, submission.user, name):
                continue  # a secret is never shown back: left empty, the one given before stands
            value, problem = f.coerce(spec, raw, hosts=self.hosts)
            if problem:
                errors.append(FieldError(field=name, message=problem))
                typed[name] = raw
                continue
            if spec.secret and isinstance(value, str):
                # checked on the real value here (its mask keeps only the length), kept only when good
                problems = [e for e in f.validate_page(schema, {**merged, **_at(spec.path, value)}, hosts=self.hosts)
                            if e.field == name]
                if problems:
                    errors.extend(problems)
                    f.set_path(merged, spec.path, None)
                    continue
                token = token or _secrets.token_urlsafe(16)
                self._keep(token, submission.user, name, value)
                value = f.mask_secret(value)
            f.set_path(merged, spec.path, value)
        if token:
            merged[_SECRETS_KEY] = token
        merged = f.apply_defaults(template, merged)
        kept = {**merged, **f.values_of_page(schema, merged, hosts=self.hosts)}
        for spec in before:  # values of fields the answers turned off are dropped
            if spec.name not in {s.name for s in f.field_specs(schema, merged, hosts=self.hosts)}:
                f.set_path(kept, spec.path, None)
        errored = {e.field for e in errors}
        # the page's own rules, on the fields the person saw (fields just turned on are shown first)
        errors += [e for e in f.validate_page(schema, kept, hosts=self.hosts, known=self._known)
                   if e.field not in errored and (e.field in shown or not e.field)
                   and not _masked_ok(e, schema, kept, self.hosts)]
        if errors:
            return self._form(template, kept, page=page, errors=tuple(errors), extra=typed)
        after = [s for s in f.field_specs(schema, kept, hosts=self.hosts) if not s.hidden]
        if any(s.name not in shown for s in after):
            # the answers turned fields on: the page again, grown (Slack cannot add them live)
            return self._form(template, kept, page=page)
        return self._form(template, kept, page=page + 1)

    async def _confirm(self, template: TemplateDef, values: dict[str, Any], submission: FormSubmission) -> FormStep:
        token = str(values.pop(_SECRETS_KEY, "") or "")
        for i, schema in enumerate(template.parameters):
            problems = [e for e in f.validate_page(schema, values, hosts=self.hosts, known=self._known)
                        if not _masked_ok(e, schema, values, self.hosts)]
            if problems:
                return self._form(template, {**values, **({_SECRETS_KEY: token} if token else {})}, page=i,
                                  errors=tuple(problems))
        secrets: dict[str, str] = {}
        for i, schema in enumerate(template.parameters):
            for spec in f.field_specs(schema, values, hosts=self.hosts):
                if not spec.secret or f.get_path(values, spec.path) is None:
                    continue
                held = self._held(token, submission.user, spec.name) if token else None
                if held is None:
                    f.set_path(values, spec.path, None)
                    return self._form(template, {**values, **({_SECRETS_KEY: token} if token else {})}, page=i,
                                      errors=(FieldError(field=spec.name, message=(
                                          "Enter it again: secrets are kept only briefly, in memory, and this one "
                                          "is gone")),))
                secrets[spec.path[-1]] = held
        if token:
            self._secrets.pop(token, None)
        return await self._start(template, values, secrets, submission)

    # --- secrets in memory ------------------------------------------------------------------------

    def _keep(self, token: str, user: str | None, name: str, value: str) -> None:
        now = self._clock()
        for key in [k for k, (_, at, _) in self._secrets.items() if now - at > SECRET_TTL_S]:
            del self._secrets[key]
        owner, _, held = self._secrets.get(token, (user, now, {}))
        if owner != user:
            return
        held[name] = value
        self._secrets[token] = (user, now, held)

    def _held(self, token: str, user: str | None, name: str) -> str | None:
        entry = self._secrets.get(token)
        if entry is None or entry[0] != user or self._clock() - entry[1] > SECRET_TTL_S:
            return None
        return entry[2].get(name)


def _at(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    f.set_path(out, path, value)
    return out


def _masked_ok(error: FieldError, schema: Mapping[str, Any], values: Mapping[str, Any], hosts: tuple[str, ...]) -> bool:
    """A secret's field error found on its mask (a pattern the real value met when it was given)."""
    spec = next((s for s in f.field_specs(schema, values, hosts=hosts) if s.name == error.field), None)
    return spec is not None and spec.secret and f.is_secret_mask(f.get_path(values, spec.path))
