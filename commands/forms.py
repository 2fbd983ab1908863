"""Forms, platform-neutral: what a surface shows as a Slack modal, a Teams dialog or terminal prompts.

A ``Form`` is pages of ``Field``s. A person fills one page at a time; the surface sends the
values back as a ``FormSubmission``; whoever owns the form (the scaffolder) validates them and
answers with the next page, the same page with ``FieldError``s on its fields, or a ``Reply``.
Validation lives with the form's owner, once; surfaces only show fields and errors.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, Union, runtime_checkable

from .api import Reply

__all__ = [
    "FIELD_TYPES",
    "Choice",
    "Field",
    "FieldError",
    "FieldType",
    "Form",
    "FieldOptions",
    "FormHandler",
    "FormPage",
    "FormStep",
    "FormSubmission",
]


class FieldType(enum.Enum):
    """What a field holds, and so which input a surface shows for it."""

    TEXT = "text"  # one line
    MULTILINE = "multiline"  # ui:widget: textarea
    PASSWORD = "password"  # ui:widget: password; never echoed back
    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    CHOICE = "choice"  # enum (with enumNames as labels)
    MULTI_CHOICE = "multi_choice"  # array of enums
    STRINGS = "strings"  # array of strings (tags, a list of names)
    ENTITY = "entity"  # EntityPicker, OwnerPicker, OwnedEntityPicker: an entity from the catalog
    REPO_URL = "repo_url"  # RepoUrlPicker: host?owner=…&repo=…


FIELD_TYPES: tuple[FieldType, ...] = tuple(FieldType)


@dataclass(frozen=True, slots=True, kw_only=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Field:
    """One input. ``name`` is the key its value comes back under."""

    name: str
    label: str
    type: FieldType = FieldType.TEXT
    required: bool = False
    default: Any = None
    help: str | None = None  # ui:help, or the schema's description
    placeholder: str | None = None
    autofocus: bool = False
    choices: tuple[Choice, ...] = ()  # CHOICE, MULTI_CHOICE, and the suggestions of an ENTITY field
    min_length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    #: ENTITY fields: the catalog kinds offered (empty: any); the options come from the catalog search
    kinds: tuple[str, ...] = ()
    #: REPO_URL fields: the hosts a repository may be on
    hosts: tuple[str, ...] = ()
    #: STRINGS fields whose owner suggests values as the person types (``FieldOptions``: a tags
    #: picker); what was typed may be a new value
    suggest: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldError:
    field: str  # the field's name ("" for the page as a whole)
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FormPage:
    title: str
    fields: tuple[Field, ...]
    description: str | None = None
    #: a review page: (label, value as shown) for everything filled in, secrets already masked;
    #: submitting it confirms the form
    review: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Form:
    """A form as shown now: ``page`` of ``pages``, what is filled in so far, and errors to show."""

    id: str  # what the form is for (a template ref); the handler's key
    title: str
    pages: tuple[FormPage, ...]
    page: int = 0
    values: Mapping[str, Any] = field(default_factory=dict)
    errors: tuple[FieldError, ...] = ()
    submit_label: str = "Next"

    @property
    def current(self) -> FormPage:
        return self.pages[self.page]

    @property
    def last_page(self) -> bool:
        return self.page >= len(self.pages) - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class FormSubmission:
    """A page's values as a surface read them (strings, numbers, booleans, lists of strings)."""

    form: str
    page: int
    values: Mapping[str, Any]
    user: str | None = None
    user_ref: str | None = None


#: What a submission leads to: another page (or the same one with errors), or the answer.
FormStep = Union[Form, Reply]


class FormHandler(Protocol):
    """The owner of forms (the scaffolder): opens a form by id and takes its submissions."""

    async def open(self, form: str, values: Mapping[str, Any], user_ref: str | None) -> Form:
        """The form ``form`` with ``values`` filled in; ``Unanswered`` when there is no such form
        or the person may not use it."""
        ...

    async def submit(self, form: Form, submission: FormSubmission) -> FormStep:
        ...


@runtime_checkable
class FieldOptions(Protocol):
    """A form owner that suggests a field's options as the person types (entity pickers): a
    surface asks it with the form as it stands, the field's name and what was typed so far."""

    async def options(self, form: Form, field: str, query: str, user_ref: str | None) -> list[Choice]:
        ...
