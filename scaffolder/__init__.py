"""Backstage Software Templates (``scaffolder.backstage.io/v1beta3``) run from chat and the CLI."""
