"""Credentials in URLs stay where the fetch needs them and nowhere else.

A catalog URL may carry user info (``https://bob:token@git.example/catalog-info.yaml``): the
fetch needs it, but nothing a person sees may show it — not the ``managed-by-location``
annotations, not ``info`` answers, not sync errors, not docs links. These helpers take the user
info out of any URL inside a piece of text, so a message that quotes a URL, a location key
(``url:https://…``) or a whole entity document can be shown safely. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from .model import CatalogError

__all__ = ["redact_error", "strip_userinfo", "without_userinfo"]

#: ``scheme://userinfo@`` anywhere in a text; the user info runs to the last ``@`` before the first
#: ``/ ? #`` or space, as the URL is parsed when fetched (a password may hold a raw ``@``)
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#\s]*@")


def strip_userinfo(text: str) -> str:
    """``text`` with the user info (user name and password) removed from every URL in it."""
    if "@" not in text:
        return text
    return _USERINFO.sub(lambda m: m["scheme"], text)


def without_userinfo(value: Any) -> Any:
    """A copy of a JSON-like value (an entity document, answer data) with every string passed
    through :func:`strip_userinfo`; the value itself when nothing in it changes."""
    if isinstance(value, str):
        return strip_userinfo(value)
    if isinstance(value, dict):
        out = {k: without_userinfo(v) for k, v in value.items()}
        return value if all(out[k] is value[k] for k in value) else out
    if isinstance(value, list):
        items = [without_userinfo(v) for v in value]
        return value if all(a is b for a, b in zip(items, value)) else items
    return value


def redact_error(error: CatalogError) -> CatalogError:
    """The error as it may be shown: no credentials in its file or message. ``location`` is the
    internal key the sync engine files the error under (never shown), so it stays as it is."""
    file, message = strip_userinfo(error.file), strip_userinfo(error.message)
    if (file, message) == (error.file, error.message):
        return error
    return replace(error, file=file, message=message)
