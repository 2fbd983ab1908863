"""Scaffolder actions: each registered through the ``callboard.actions`` entry point group."""
