"""Callboard's entity model against the test cases of Backstage's own ``@backstage/catalog-model``.

Each test names the Backstage test file (backstage/backstage, ``packages/catalog-model/src/``)
and the case it comes from; the inputs are that case's inputs, the outcome is what Backstage
asserts. Where Backstage only asserts "throws", the test also checks that Callboard's message
names the field, since the user has to find it.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from callboard.catalog.model import CatalogError, EntityRef, ProcessedEntity, RefParseError, parse_ref
from callboard.catalog.process import process_text
from callboard.catalog.validation import is_valid_string, is_valid_url, validate

# --- entity/ref.ts: parseEntityRef ------------------------------------------------------------
# Backstage's parseRefString: the kind ends at the first ":", the namespace at the first "/",
# the rest is the name; a "/" before the first ":" means there is no kind.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # ref.test.ts "handles some omissions" (defaults filled in: Callboard always needs a kind)
        ("a:b/c", EntityRef("a", "b", "c")),
        ("b/c", EntityRef("x", "b", "c")),
        ("a:c", EntityRef("a", "y", "c")),
        ("c", EntityRef("x", "y", "c")),
        # names holding ":" or "/": what parseRefString makes of them
        ("a:b:c", EntityRef("a", "y", "b:c")),
        ("a/b:c", EntityRef("x", "a", "b:c")),
        ("a/b/c", EntityRef("x", "a", "b/c")),
        ("a:b/c/d", EntityRef("a", "b", "c/d")),
        ("a:b/c:d", EntityRef("a", "b", "c:d")),
    ],
)
def test_parse_ref_splits_as_parse_entity_ref(text: str, expected: EntityRef) -> None:
    # ref.test.ts "adds defaults where necessary to strings": defaultKind x, defaultNamespace y
    assert parse_ref(text, default_kind="x", default_namespace="y") == expected


@pytest.mark.parametrize(
    "text",
    # ref.test.ts "rejects empty parts in strings"
    [":b/c", "a:/c", "a:b/", "a:/", ":b/", ":/c", ":/", "/c", "b/", ":c", "a:", ""],
)
def test_parse_ref_refuses_empty_parts(text: str) -> None:
    with pytest.raises(RefParseError, match="not on the form|must not be empty"):
        parse_ref(text, default_kind="x")


def test_parse_ref_refuses_non_strings_and_a_missing_kind() -> None:
    # ref.test.ts "rejects bad inputs": null and 7
    for bad in (None, 7):
        with pytest.raises(RefParseError, match="must be a string"):
            parse_ref(bad)  # type: ignore[arg-type]
    # parseEntityRef: "had missing or empty kind" when no kind is given and none is defaulted
    with pytest.raises(RefParseError, match="missing or empty kind"):
        parse_ref("b/c")


def test_parse_ref_does_not_trim() -> None:
    # ref.ts parses the string as given (no trim): a quoted " team-a" is a name with a space
    assert parse_ref(" team-a", default_kind="Group") == EntityRef("Group", "default", " team-a")


def test_a_spec_ref_whose_name_holds_a_colon_is_a_dangling_relation() -> None:
    """``owner: group:team:a`` relates to ``group:default/team:a`` in Backstage (a name no entity
    can have, so the relation dangles); it is not an error that refuses the component."""
    doc = ("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: svc\n"
           "spec:\n  type: service\n  lifecycle: production\n  owner: group:team:a\n"
           "  dependsOn: [resource:ns/db:primary]\n")
    (item,) = process_text(doc, file="f.yaml", location="file:f.yaml")
    assert isinstance(item, ProcessedEntity), item
    assert ("component:default/svc", "ownedBy", "group:default/team:a") in item.relations
    assert ("component:default/svc", "dependsOn", "resource:ns/db:primary") in item.relations


# --- entity/policies/NoForeignRootFieldsEntityPolicy.ts ----------------------------------------

#: NoForeignRootFieldsEntityPolicy.test.ts, the entity of its beforeEach
_POLICY_ENTITY: dict[str, Any] = {
    "apiVersion": "backstage.io/v1alpha1",
    "kind": "Component",
    "metadata": {
        "uid": "e01199ab-08cc-44c2-8e19-5c29ded82521",
        "etag": "lsndfkjsndfkjnsdfkjnsd==",
        "generation": 13,
        "name": "my-component-yay",
        "namespace": "the-namespace",
        "labels": {"backstage.io/custom": "ValueStuff"},
        "annotations": {"example.com/bindings": "are-secret"},
    },
    "spec": {"custom": "stuff"},
}


def _problem(doc: dict[str, Any]) -> str | None:
    err = validate(doc, file="f.yaml")
    return None if err is None else err.message


def test_no_foreign_root_fields_happy_path() -> None:
    # "works for the happy path" (an unknown kind's schema aside: the policy alone is tested)
    doc = copy.deepcopy(_POLICY_ENTITY)
    doc["spec"] = {"type": "service", "lifecycle": "production", "owner": "me"}
    assert _problem(doc) is None


@pytest.mark.parametrize("field", ["spec2", "relations", "status"])
def test_foreign_root_fields_are_refused(field: str) -> None:
    """"rejects unknown root fields" (``spec2``). The policy's known fields are apiVersion, kind,
    metadata and spec only (``defaultKnownFields``), so ``relations`` and ``status``, which the
    catalog adds to the entities it serves, are refused in a catalog file as well."""
    doc = copy.deepcopy(_POLICY_ENTITY)
    doc[field] = {} if field != "relations" else [{"type": "ownedBy", "targetRef": "group:default/x"}]
    message = _problem(doc)
    assert message is not None and f"Unknown field {field}" in message
    assert "apiVersion, kind, metadata and spec" in message


def test_an_entity_with_root_status_is_not_ingested() -> None:
    """The entity of NoForeignRootFieldsEntityPolicy.test.ts's older beforeEach carries a
    ``status`` block copied from a served entity: read from a file, it is refused with its line."""
    text = """apiVersion: backstage.io/v1alpha1
kind: Component
status:
  items:
    - type: backstage.io/catalog-processing
      level: error
      message: 'NotFoundError: File not found'
metadata:
  name: my-component-yay
spec:
  type: service
  lifecycle: production
  owner: me
"""
    (err,) = process_text(text, file="f.yaml", location="file:f.yaml")
    assert isinstance(err, CatalogError) and err.line == 1
    assert "Unknown field status" in str(err) and "computed by the catalog" in str(err)


# --- entity/policies/FieldFormatEntityPolicy.ts: links ---------------------------------------------


def _with_links(links: Any) -> dict[str, Any]:
    # FieldFormatEntityPolicy.test.ts beforeEach, as a valid Component
    return {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {
            "name": "my-component-yay",
            "namespace": "the-namespace",
            "tags": ["java", "data-service"],
            "links": links,
        },
        "spec": {"type": "service", "lifecycle": "production", "owner": "me"},
    }


@pytest.mark.parametrize(
    "links",
    [
        [{"url": "https://example.org", "title": "Website", "icon": "website"}],  # the happy path
        [],  # "accepts empty links array"
        [{"url": "http://foo"}, {"url": "https://bar"}],  # "accepts multiple links"
        [{"url": "http://foo", "icon": "dashboard"}],  # "accepts missing link title"
        [{"url": "http://foo", "title": "foo"}],  # "accepts missing link icon"
        [{"url": "http://foo", "icon": "dashboard"}],  # "accepts valid link icon"
        [{"url": "http://foo", "icon": "admin-dashboard"}],
        [{"url": "http://foo", "icon": "foo_dashboard"}],
    ],
)
def test_links_backstage_accepts(links: list[dict[str, Any]]) -> None:
    assert _problem(_with_links(links)) is None


@pytest.mark.parametrize(
    ("links", "pattern"),
    [
        ([{}], r"links\.0\.url"),  # "rejects missing link url value"
        ([{"url": "http://good"}, {"url": ""}], r"links\.1\.url.*valid url"),  # "a single bad ... url"
        ([{"url": ""}], r"links\.0\.url"),  # "rejects empty link url value"
        ([{"url": "invalid"}], r'links\.0\.url.*"invalid"'),  # "rejects bad link url value"
        ([{"url": "http://foo", "title": ""}], r'links\.0\.title.*""'),  # "rejects empty link title"
        ([{"url": "http://foo", "title": 123}], r'links\.0\.title.*"123"'),  # "rejects bad link title"
        ([{"url": "http://foo", "title": {}}], r"links\.0\.title"),
        ([{"url": "http://foo", "title": []}], r"links\.0\.title"),
        ([{"url": "http://foo", "title": "good"}, {"url": "http://foo", "title": ""}], r'links\.1\.title.*""'),
        ([{"url": "http://foo", "icon": ""}], r'links\.0\.icon.*""'),  # "rejects empty link icon"
        ([{"url": "http://foo", "icon": 123}], r"links\.0\.icon"),  # "rejects bad link icon value"
        ([{"url": "http://foo", "icon": {}}], r"links\.0\.icon"),
        ([{"url": "http://foo", "icon": []}], r"links\.0\.icon"),
        ([{"url": "http://foo", "icon": "abc xyz"}], r"links\.0\.icon"),
        ([{"url": "http://foo", "icon": "good"}, {"url": "http://foo", "icon": "not good"}],
         r'links\.1\.icon.*"not good"'),
        # whitespace only: isValidString trims (title); an object name has no spaces (icon)
        ([{"url": "http://foo", "title": "   "}], r"links\.0\.title"),
        ([{"url": "http://foo", "icon": " "}], r"links\.0\.icon"),
    ],
)
def test_links_backstage_refuses(links: list[dict[str, Any]], pattern: str) -> None:
    message = _problem(_with_links(links))
    assert message is not None
    assert re.search(pattern, message, re.IGNORECASE), message


# --- validation/CommonValidatorFunctions.ts ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "valid"),
    # CommonValidatorFunctions.test.ts, isValidUrl
    [
        (None, False), (7, False), ("", False), ("abc", False), ("   abc", False), ({}, False),
        ("http://foo", True), ("https://www.foo.com/", True), ("https://foo.com:8080", True),
        ("https://foo:8080/page", True), ("https://foo:8080/sub/page", True),
        ("https://foo:8080/sub/page?query", True), ("https://foo:8080/sub/page/?query=value", True),
        ("https://foo:8080/sub/page/?query=value&", True),
        ("https://foo:8080/sub/page/?query=value&another=val", True),
        ("https://foo.com/page#fragment", True), ("ftp://ftp.some.domain.com/path", True),
        ("xyz://custom-protocol:4444/path", True),
        # what new URL() also refuses: no host, a space in the host, a port out of range
        ("http://", False), ("https://exa mple.com", False), ("http://foo:65536/", False),
        ("http://[::1]:8080/x", True), ("mailto:oncall@example.com", True),
    ],
)
def test_is_valid_url(value: Any, valid: bool) -> None:
    assert is_valid_url(value) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    # CommonValidatorFunctions.test.ts, isValidString
    [(None, False), (True, False), (7, False), ({}, False), ("", False), (" ", False), ("    ", False),
     ("abc", True), (" abc ", True), ("abc xyz", True), ("abc xyz abc.", True)],
)
def test_is_valid_string(value: Any, valid: bool) -> None:
    assert is_valid_string(value) is valid
