"""On-call sources (PagerDuty, Opsgenie, a schedule file) and the resolution that asks them."""
