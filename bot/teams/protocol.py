"""What Callboard's Adaptive Cards carry in their actions, read back when Teams sends them.

Shared by the renderer (``cards.py``) and the surface (``app.py``); plain data, no botbuilder.

- ``Action.Execute`` (Teams sends an ``adaptiveCard/action`` invoke; the answer replaces the card):
  ``verb`` is one of the ``VERB_*`` names, ``data`` as below.
- ``Action.Submit`` with ``msteams.type = task/fetch`` opens a form as a dialog; inside the
  dialog, ``Action.Submit`` sends ``task/submit`` with the inputs' values beside ``data``.
- ``Input.ChoiceSet`` with ``Data.Query`` asks for its options as the person types (an
  ``application/search`` invoke naming the ``dataset``).
"""

from __future__ import annotations

__all__ = [
    "DATA_COMMAND", "DATA_FORM", "DATA_FORM_KEY", "DATA_FORM_VALUES", "DATA_PAGE", "DATA_PAGE_KEY",
    "DATA_PICK_COMMAND", "DATASET_FORM", "DATASET_PICK", "PICK_INPUT", "SEARCH_COMMAND_ID", "SEARCH_PARAMETER",
    "VERB_PAGE", "VERB_PICK", "VERB_RUN",
]

#: run a command line: ``{"cmd": "<command line>"}``
VERB_RUN = "run"
DATA_COMMAND = "cmd"
#: another page of a list: ``{"key": "<page key>", "page": <n>}``
VERB_PAGE = "page"
DATA_PAGE_KEY = "key"
DATA_PAGE = "page"
#: an entity chosen in a did-you-mean picker: ``{"command": "<command>"}`` plus the picker's input
#: (id ``PICK_INPUT``) holding the chosen entity ref
VERB_PICK = "pick"
DATA_PICK_COMMAND = "command"
PICK_INPUT = "callboard_pick"
#: open a form (``task/fetch``): ``{"msteams": {"type": "task/fetch"}, "form": "<template ref>",
#: "values": {...}}``
DATA_FORM = "form"
DATA_FORM_VALUES = "values"
#: a form page submitted (``task/submit``): ``{"callboard_form": "<state key>"}`` beside the inputs
#: (each input's id is its field's name)
DATA_FORM_KEY = "callboard_form"
#: Data.Query datasets: ``pick:<command>`` for a did-you-mean picker (any entity),
#: ``form:<state key>:<field name>`` for a form's picker
DATASET_PICK = "pick:"
DATASET_FORM = "form:"
#: the message extension's search command (the app manifest declares it) and its one parameter
SEARCH_COMMAND_ID = "searchEntity"
SEARCH_PARAMETER = "query"
