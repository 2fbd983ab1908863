"""Callboard on Microsoft Teams: every botbuilder type stays inside this package.

``app.py`` is the surface (``bot/surface.py``): the Bot Framework SDK (``CloudAdapter``)
validates each request to ``/api/messages`` and hands its activity here; activities become
``Asked`` values for the shared conversation policy, and ``Reply``/``Form`` values become
Adaptive Cards (``cards.py``). ``protocol.py`` names what Callboard's cards carry back in their
actions. ``package.py`` writes the Teams app package. Moving to the Microsoft 365 Agents SDK
touches only this folder.
"""
