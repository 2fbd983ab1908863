#!/usr/bin/env python3
"""Deterministic synthetic TechDocs corpus for the docs-search benchmarks.

Usage (from the project root)::

    python bench/gen_docs.py --sites 5000 --sections 10 --out /tmp/docs-5000 --seed 42
    python bench/gen_docs.py --sites 5000 --out /tmp/docs-5000 --only 42   # incremental change

Layout of ``OUT``:

- ``catalog-info.yaml``: one ``Location`` (``metadata.name: docs-bench``) whose
  ``spec.targets`` are ``./org.yaml`` and every ``./sites/<name>/catalog-info.yaml``,
  so the whole corpus is one catalog root. ``spec.type`` is left out (inherited).
- ``org.yaml``: 50 ``Group`` entities ``team-00`` .. ``team-49`` (``spec.type: team``,
  ``spec.children: []``).
- ``sites/<name>/catalog-info.yaml``: a ``Component`` named like ``billing-ledger-00042``
  (the suffix is the site index, zero-padded to at least 5 digits, so names are unique
  and at most 40 characters), annotated ``backstage.io/techdocs-ref: dir:.``, with
  ``spec: {type: service, lifecycle: production, owner: team-<k>}``.
- ``sites/<name>/mkdocs.yml``: ``site_name``, a ``nav`` of the pages, ``plugins: [techdocs-core]``.
- ``sites/<name>/docs/*.md``: ``index.md`` plus one or two of ``runbook.md``,
  ``architecture.md``, ``operations.md``, ``troubleshooting.md``, ``api.md``, ``data.md``.
- ``queries.json``: 1,000 queries (see below).

Pages and sections
------------------
Site ``i`` has ``P = 2`` pages when ``i`` is even and ``P = 3`` when ``i`` is odd (never
more than ``--sections``). The ``S = --sections`` sections of a site are spread over its
pages, at least one per page. Every page is one ``# Title`` line immediately followed by
its first ``## Heading``: the h1 has no body of its own and counts as part of the first
section. A section is a ``## Heading`` and 2-5 blocks (paragraphs, numbered steps, at
most one fenced ``bash`` or ``sql`` block), about 80-200 words. Headings are unique
within a page (including the h1), so MkDocs never adds ``_1`` suffixes to anchors.

What MkDocs' search plugin (which ``techdocs-core`` installs) writes to
``site/search/search_index.json`` for one site, exactly:

- one entry per ``##`` section:               ``S``  (location ``<page>/#<anchor>``)
- one entry per page ``#`` title (empty text): ``P``  (location ``<page>/#<anchor>``)
- one whole-page entry per page:              ``P``  (location ``<page>/``, no ``#``)

so ``S + P`` heading ("section") entries and ``S + 2P`` entries in total: with the
default ``S = 10`` that is 12 heading entries (14 in all) for even sites and 13 (16
in all) for odd sites. For ``--sites 5000 --sections 10``: 50,000 ``##`` sections,
12,500 pages, 62,500 heading entries, 75,000 index entries. The summary line prints
these totals for any options.

Text
----
Built from engineering word lists and sentence templates with ``random.Random``; every
site, page body and the query set get their own generator seeded with a string derived
from ``--seed`` (string seeds are hashed with SHA-512, so output is byte-identical across
runs and machines for the same options). Nouns, adjectives, metrics etc. are drawn with
Zipf-like weights (1/rank), and every site boosts its own handful of "focus" nouns and
has its own database, cache, queue, dependencies and tables, so BM25 statistics differ
between sections and sites. ASCII only; pure standard library.

Queries
-------
``queries.json`` is a list of 1,000 objects ``{"q", "entity", "location", "kind"}``:
``entity`` is ``component:default/<name>`` and ``location`` the section the query was
drawn from, written as MkDocs' search index writes it: ``runbook.md`` -> ``runbook/``,
``index.md`` -> empty, then ``#`` and the heading's default toc slug (``## Cache stampede
on Redis`` -> ``#cache-stampede-on-redis``). Sections are sampled without replacement
when the corpus has at least 1,000 sections. ``kind``:

- ``plain`` (60%): 1-4 consecutive content words of the section heading or of a body sentence;
- ``typo`` (20%): a plain query with one interior letter of one word of >= 5 letters
  deleted, or two adjacent different interior letters swapped;
- ``phrase`` (10%): two adjacent words of the section, quoted: ``"consumer lag"``;
- ``prefix`` (10%): 0-2 words then a word of the section truncated to 5-7 letters
  (shorter than the word), type-ahead style.

All queries are lowercase. Queries come from prose and headings, never from code blocks.

Incremental change
------------------
``--only N`` (with the same ``--sites``/``--sections``/``--seed`` as the corpus) rewrites
one page of site ``N`` (chosen deterministically) with new body text; the page title, its
headings and anchors (so ``queries.json``) stay valid. It prints every file it changed.
``--rev R`` (default 1) picks a different text for the same page, so successive runs can
change it again; ``--rev 0`` restores the original text. Nothing else in ``OUT`` is touched.

Files are only written when their content differs (an unchanged re-run writes nothing),
and sites beyond ``--sites`` left over from an earlier, larger run are not removed (they
are not in the Location's targets).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import sys
import time
import unicodedata
from bisect import bisect
from dataclasses import dataclass, field
from random import Random
from typing import Callable, Sequence

N_TEAMS = 50
N_QUERIES = 1000

# --------------------------------------------------------------------------- vocabulary

WORDS_A = [
    "payments", "billing", "checkout", "catalog", "search", "identity", "auth",
    "inventory", "shipping", "pricing", "orders", "ledger", "notifications",
    "analytics", "reporting", "recommendations", "media", "profile", "accounts",
    "fraud", "risk", "onboarding", "support", "messaging", "scheduler", "audit",
    "gateway", "storefront", "loyalty", "subscriptions", "tax", "invoicing",
    "warehouse", "routing", "tracking", "reviews", "ratings", "content",
    "experiments", "feature-flags", "metrics", "logging", "tracing", "config",
    "secrets", "registry", "builds", "deploys", "artifacts", "backup",
]
WORDS_B = [
    "api", "service", "worker", "processor", "engine", "store", "sync",
    "bridge", "adapter", "collector", "indexer", "exporter", "importer",
    "resolver", "validator", "aggregator", "publisher", "consumer", "proxy",
    "cache", "portal", "dashboard", "gateway", "client", "core",
    "agent", "controller", "scheduler", "ledger", "router",
]
# Ordered roughly by how common they are in real runbooks: the Zipf weights follow the order.
NOUNS = [
    "request", "deploy", "query", "connection", "pod", "node", "error", "alert",
    "message", "consumer", "replica", "partition", "timeout", "retry", "endpoint",
    "dashboard", "metric", "trace", "job", "worker", "release", "rollout", "rollback",
    "config change", "secret", "certificate", "token", "session", "lock", "transaction",
    "snapshot", "backup", "failover", "leader", "heartbeat", "health check",
    "load balancer", "ingress", "proxy", "sidecar", "container image", "volume", "disk",
    "thread", "cron job", "batch", "pipeline", "build", "artifact", "canary",
    "feature flag", "quota", "rate limit", "circuit breaker", "deadlock", "hot key",
    "eviction", "compaction", "checkpoint", "connection pool", "thread pool", "heap",
    "file descriptor", "socket", "DNS record", "TLS handshake", "webhook", "payload",
    "schema", "contract", "incident", "postmortem", "escalation", "ticket",
    "maintenance window", "autoscaler", "node pool", "availability zone", "tenant",
    "customer", "invoice", "event", "topic", "offset", "watermark", "backlog",
    "dead letter queue", "idempotency key", "checksum", "cursor", "buffer", "spike",
    "regression", "outage", "bottleneck", "migration", "index", "table", "shard",
    "read replica", "primary", "write", "read", "cache miss", "cache key",
    "span", "log line", "stack trace", "core dump", "memory leak", "goroutine",
    "JVM", "garbage collection", "queue", "subscription", "API key", "service account",
    "role binding", "network policy", "firewall rule", "security group", "VPC",
    "bucket", "object", "presigned URL", "CDN", "edge cache", "origin", "retry storm",
    "thundering herd", "split brain", "quorum", "lease", "clock skew", "cold start",
    "warm pool", "traffic shift", "blue green deploy", "dark launch", "kill switch",
    "error budget", "SLO", "SLI", "runbook", "on-call shift", "handover", "pager",
    "status page", "customer report", "support ticket", "audit log", "data export",
    "backfill", "reconciliation", "outbox", "saga", "fan-out", "batch window",
]
ADJS = [
    "slow", "stale", "failed", "degraded", "noisy", "flaky", "saturated", "pending",
    "duplicate", "missing", "expired", "throttled", "blocked", "lagging", "unhealthy",
    "unreachable", "elevated", "intermittent", "cascading", "partial", "orphaned",
    "idle", "hot", "cold", "oversized", "unbounded", "corrupted", "misconfigured",
    "regional", "critical", "long-running", "zombie", "half-open", "out-of-order",
    "poisoned", "undelivered", "abandoned", "runaway", "leaked", "skewed",
]
VERBS_3 = [
    "reads", "writes", "caches", "publishes", "consumes", "validates", "retries",
    "batches", "throttles", "replicates", "indexes", "compacts", "exports", "schedules",
    "drains", "evicts", "aggregates", "reconciles", "emits", "buffers",
    "deduplicates", "serializes", "encrypts", "signs", "rotates", "prunes", "streams",
    "backfills", "enriches", "routes", "shards", "archives", "verifies", "polls",
]
METRICS = [
    "p99 latency", "error rate", "request rate", "CPU usage", "memory usage",
    "consumer lag", "queue depth", "p95 latency", "cache hit ratio", "replication lag",
    "GC pause time", "connection count", "5xx rate", "disk usage", "saturation",
    "open file descriptors", "thread pool utilisation", "apdex score", "retry rate",
    "throughput", "tail latency", "restart count", "timeout rate", "queue age",
]
METRIC_IDS = [
    "http_request_duration_seconds", "http_requests_total", "kafka_consumergroup_lag",
    "pg_stat_activity_count", "redis_connected_clients", "process_open_fds",
    "container_memory_working_set_bytes", "jvm_gc_pause_seconds_sum",
    "container_cpu_cfs_throttled_seconds_total", "kube_pod_container_status_restarts_total",
    "grpc_server_handled_total", "db_pool_wait_seconds", "queue_messages_ready",
]
ALERTS = [
    "HighErrorRate", "HighLatency", "ConsumerLagHigh", "PodCrashLooping",
    "ReplicationLagHigh", "DiskAlmostFull", "CertificateExpiringSoon", "QueueBacklogGrowing",
    "CacheHitRatioLow", "ConnectionPoolExhausted", "ErrorBudgetBurn", "TargetDown",
    "JobFailed", "MemoryPressure", "CPUThrottlingHigh", "DeadLetterQueueNotEmpty",
]
TOOLS = [
    "Grafana", "PagerDuty", "Prometheus", "Datadog", "Sentry", "Kibana", "Jaeger",
    "Argo CD", "Loki", "Helm", "Terraform", "Vault", "Alertmanager", "Honeycomb",
    "Spinnaker", "OpsGenie", "Tempo", "Statuspage", "Jenkins", "GitHub Actions",
]
K8S = [
    "deployment", "pod", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap",
    "readiness probe", "liveness probe", "StatefulSet", "node pool", "namespace",
    "CronJob", "init container", "resource limits", "DaemonSet", "ingress controller",
    "service mesh", "Istio sidecar", "network policy", "priority class", "taint",
]
DATABASES = [
    "PostgreSQL", "MySQL", "DynamoDB", "Cassandra", "MongoDB", "Elasticsearch",
    "CockroachDB", "ClickHouse", "Aurora", "Spanner", "ScyllaDB", "TimescaleDB",
    "BigQuery", "Snowflake",
]
CACHES = ["Redis", "Memcached", "Varnish", "Hazelcast", "KeyDB", "Caffeine"]
QUEUES = ["Kafka", "RabbitMQ", "SQS", "NATS", "Kinesis", "Pulsar", "PubSub", "ActiveMQ"]
LANGS = ["Go", "Java", "Python", "Kotlin", "TypeScript", "Rust", "Scala", "Elixir"]
ENVS = ["production", "staging", "canary", "preprod", "sandbox"]
REGIONS = ["eu-west-1", "us-east-1", "us-west-2", "eu-central-1", "ap-southeast-2", "ap-northeast-1"]
DURS = [
    "30 seconds", "90 seconds", "two minutes", "five minutes", "ten minutes",
    "15 minutes", "30 minutes", "two hours", "four hours", "12 hours",
]
TABLE_SUFFIXES = [
    "events", "entries", "jobs", "outbox", "records", "snapshots", "audit_log",
    "idempotency_keys", "locks", "batches", "attempts", "state",
]
COLUMNS = ["status", "tenant_id", "attempt", "created_at", "updated_at", "processed_at",
           "owner_id", "region", "version", "error_code"]
STATUSES = ["failed", "pending", "stuck", "retrying", "dead"]

STOP = frozenset("""
a an the and or but if then than so of to in on at by for from with without into onto
over under after before during while when where which who whom whose what why how
is are was were be been being has have had do does did done can could should would will
may might must shall not no nor only also just very more most less least much many
few some any all each every other another such same own this that these those it its
they them their there here we us our you your he she his her i me my one two three
about above below again further once both either neither up down out off through
until because as per via use used using get gets got make makes made let lets
first second last next new old like so too still yet even ever never always often
usually roughly mostly rather instead back away well keep keeps kept take takes
whether however though although unless otherwise before since around within across
""".split())

PAGES = {
    # file stem: (nav title, h1 suffix)
    "runbook": ("Runbook", "runbook"),
    "architecture": ("Architecture", "architecture"),
    "operations": ("Operations", "operations guide"),
    "troubleshooting": ("Troubleshooting", "troubleshooting"),
    "api": ("API", "API reference"),
    "data": ("Data model", "data model"),
}
EXTRA_PAGES = list(PAGES)

# Heading templates per page. Only letters, digits, spaces and hyphens after filling.
HEADINGS_COMMON = [
    "{Adj} {nouns} in {db}", "{Cache} {noun} handling", "{Queue} {noun} settings",
    "{Metric} budget", "When {metric} rises", "{Noun} ownership", "{Adj} {noun} after a deploy",
    "{Noun} limits in {env}", "{K8s} tuning", "{Noun} and {noun} interaction",
    "{Tool} {noun} panels", "Known {adj} {nouns}", "{Noun} lifecycle",
]
HEADINGS = {
    "index": [
        "Overview", "What {self_title} does", "Ownership and escalation", "Service level objectives",
        "Dependencies", "Getting access", "Local development", "Key dashboards",
        "Glossary", "Release process", "Support hours", "{Noun} guarantees",
        "How {self_title} uses {db}", "Talking to {dep_title}", "Where {nouns} come from",
        "Capacity at a glance", "Contact {team}", "Service tiers and {noun} policy",
    ] + HEADINGS_COMMON,
    "runbook": [
        "{Alert} alert", "{Cache} stampede on {noun}", "Rolling back a {adj} deploy",
        "Draining {queue} consumers", "{Db} failover", "Restarting {adj} {k8s_plain}",
        "Paging {team}", "Clearing the dead letter queue", "{Metric} above threshold",
        "Scaling out during peak traffic", "Rotating {noun} credentials", "Replaying {nouns} from {queue}",
        "Disabling the {noun} kill switch", "Recovering from {adj} {nouns}",
        "Emergency {noun} freeze", "Handover checklist", "{Region} region evacuation",
        "Silencing {adj} alerts",
    ] + HEADINGS_COMMON,
    "architecture": [
        "Request flow", "Write path through {db}", "Read path and {cache}", "Event flow over {queue}",
        "Failure domains", "Consistency model", "Why {db} and not {db2}", "{Noun} fan-out",
        "Deployment topology in {region}", "Multi-region design", "Idempotency and retries",
        "Backpressure from {queue}", "Caching strategy", "Security boundaries",
        "Schema evolution", "Batch versus streaming {nouns}", "Upstream {dep_title}",
    ] + HEADINGS_COMMON,
    "operations": [
        "Deploying to {env}", "Scaling the {k8s_plain}", "Backups and restore drills",
        "Certificate rotation", "Database migrations", "Feature flag cleanup",
        "Cost and capacity planning", "{Tool} alert routing", "Maintenance windows",
        "Dependency upgrades", "Secrets in {tool}", "Log retention", "Load testing {nouns}",
        "Chaos experiments", "Weekly on-call review", "Quota increases in {region}",
    ] + HEADINGS_COMMON,
    "troubleshooting": [
        "{Adj} {nouns} after restart", "High {metric}", "{Queue} consumer lag keeps growing",
        "{Db} connection pool exhausted", "Pods stuck in CrashLoopBackOff", "Timeouts calling {dep_title}",
        "Memory leak in the {lang} runtime", "{Cache} eviction storm", "Clock skew between nodes",
        "Duplicate {nouns} in {db}", "TLS handshake failures", "DNS resolution errors",
        "Slow queries on {table_title}", "{Noun} retries never stop", "Deadlocks during {noun} writes",
    ] + HEADINGS_COMMON,
    "api": [
        "Authentication", "Rate limits", "Pagination", "Error codes", "Versioning",
        "Webhooks", "Idempotency keys", "Listing {nouns}", "Creating a {noun}",
        "Bulk {noun} import", "Deprecations", "SDK usage in {lang}", "Timeouts and retries",
        "Filtering {nouns}", "Streaming {nouns} over {queue}",
    ] + HEADINGS_COMMON,
    "data": [
        "Tables in {db}", "The {table_title} table", "Retention of {nouns}", "Partitioning scheme",
        "Indexes and query plans", "Change data capture to {queue}", "Personal data handling",
        "Backfilling {nouns}", "Archival to cold storage", "Reconciliation jobs",
        "Data contracts with {dep_title}", "Schema migrations on {db}",
    ] + HEADINGS_COMMON,
}

PROSE = [
    "{Self} {verbs} {nouns} from {queue} and {verbs} the results into {db}.",
    "During peak traffic the p99 latency of {self} can climb above {ms}, mostly because of {adj} {nouns} in {db}.",
    "If the {alert} alert fires, open the {dashboard} dashboard in {tool} before paging {team}.",
    "Every {noun} is retried up to {n} times with exponential backoff, capped at {dur}.",
    "We keep {pct} of headroom on the {k8s} so that a single {adj} {noun} does not cascade into an outage.",
    "The {cache} layer absorbs most reads; a cold cache after a deploy roughly doubles the load on {db}.",
    "Writes go through {dep}, which owns the {noun} schema and publishes change events to {queue}.",
    "Deploys roll out through {tool} to {env} first and then to {region} in small batches.",
    "Most incidents in the last quarter were caused by {adj} {nouns} rather than code changes.",
    "{Team} owns this service; escalate through the on-call rotation in PagerDuty if nobody answers within {dur}.",
    "Connection pool exhaustion shows up as {adj} {nouns} and a rising {metric}.",
    "The {lang} service runs {n} replicas per availability zone in {region}.",
    "A {adj} {noun} usually means {dep} is slow, so check its {metric} before restarting anything.",
    "Consumer lag on {queue} is the best early signal that {self} is falling behind.",
    "The {noun} is written to {db} and cached in {cache} for {dur}.",
    "Do not restart all pods at once: the {cache} warm-up puts a thundering herd on {db}.",
    "Alerts are routed by {tool} to the {team} channel and page only for {env} traffic.",
    "The {metric} SLO is {pct} over 28 days; the error budget policy freezes deploys when it is spent.",
    "Batch jobs run every {dur} and compete with online traffic for {db} connections.",
    "{Self} depends on {dep} for {nouns} and degrades gracefully when it is unavailable.",
    "A {adj} {noun} in {queue} ends up in the dead letter queue after {n} attempts.",
    "The {k8s} has a CPU target of {pct}, which keeps {metric} flat until traffic doubles.",
    "Schema changes to {table} must be backwards compatible for one release.",
    "Idempotency keys make replays from {queue} safe, so duplicate {nouns} are dropped.",
    "The read path never touches {db} directly when the {cache} hit ratio is above {pct}.",
    "Latency regressions are usually visible in {tool} traces as long {db} spans.",
    "{Self} exposes {metric_id} so {tool} can alert on {metric}.",
    "The nightly {noun} reconciliation compares {table} with the records held by {dep}.",
    "A failover of {db} takes about {dur}, during which writes fail fast and are retried.",
    "Kubernetes evicts pods that exceed their memory limit, which looks like a spike in {metric}.",
    "Rate limits protect {db} from {adj} clients; the default is {n} requests per second per tenant.",
    "Tracing headers are propagated to {dep}, so a single trace covers the whole request.",
    "When {queue} partitions are rebalanced, consumers pause for up to {dur}.",
    "Feature flags in {tool} gate every risky {noun} change in {env}.",
    "Runbooks for {self} assume read access to the {ns} namespace and the {tool} dashboards.",
    "The {noun} pipeline {verbs} {nouns} in batches of {n}.",
    "Hot keys in {cache} cause uneven CPU across shards and a higher {metric}.",
    "Most {adj} {nouns} disappear after the {noun} is rebuilt, but file a ticket anyway.",
    "Postmortems for {self} are written within five working days and linked from this page.",
    "Traffic from {region} is served locally; other regions fall back to the primary in {region2}.",
    "Each {noun} carries a tenant id, and {db} is partitioned by tenant.",
    "Timeouts toward {dep} are set to {ms} with one retry, which keeps tail latency bounded.",
    "The canary receives {pct} of traffic for {dur} before the rollout continues.",
    "Capacity planning uses the weekly peak of {metric} plus {pct} of headroom.",
    "Deploy freezes apply to {self} during the end-of-month {noun} run.",
    "Logs are shipped to {tool} and kept for {n} days; debug logging must not stay on in {env}.",
    "Secrets for {db} are rotated by {tool} every {n} days without a restart.",
    "A slow {noun} on {db} holds locks that block writers and inflate {metric}.",
    "The {dashboard} dashboard shows {metric}, {metric2} and saturation side by side.",
    "Backups of {db} are taken every {dur} and restore drills run each quarter.",
    "Messages on {topic} are keyed by tenant, so ordering holds per tenant only.",
    "{Dep} calls {self} synchronously, so our {metric} directly shows up in their latency.",
    "The garbage collector of the {lang} runtime pauses for longer when the heap is close to its limit.",
    "Retry storms after an outage are damped by jitter and the circuit breaker toward {dep}.",
    "A {adj} {noun} rarely needs a code change; configuration and capacity are the usual suspects.",
    "The migration from {db2} to {db} finished last year, but some {nouns} still carry old ids.",
    "Health checks hit the readiness endpoint, which verifies {db}, {cache} and {queue} connectivity.",
    "Incident channels for {self} are named after the date and archived after the review.",
    "We shard {nouns} by hash of the tenant id across {n} partitions.",
    "Writes are acknowledged after the {noun} is durable in {db} and queued on {queue}.",
]
STEPS = [
    "Open the {dashboard} dashboard in {tool} and confirm that {metric} is really elevated.",
    "Check the recent deploys of {self} in {tool}; roll back if one landed in the last {dur}.",
    "Look at the {k8s} events in the {ns} namespace for evictions and restarts.",
    "Compare {metric} with {metric2} to tell load from a {adj} {noun}.",
    "Check the {metric} of {dep}; if it is degraded, page its owners instead.",
    "Scale the deployment to {n} replicas and watch {metric} for {dur}.",
    "Pause the {queue} consumers and let the backlog drain.",
    "Acknowledge the page in PagerDuty and post a status update in the incident channel.",
    "Find the slowest queries on {db} and kill the ones running longer than {dur}.",
    "Flush the affected keys from {cache}, never the whole cache.",
    "Verify that {nouns} are flowing again and the dead letter queue stops growing.",
    "Silence the {alert} alert in Alertmanager for {dur} while you work.",
    "Raise the connection pool size only if {db} has spare connections.",
    "Tail the logs of one pod and look for {adj} {nouns} or stack traces.",
    "Replay the failed {nouns} from the dead letter queue in small batches.",
    "Promote the read replica of {db} if the primary does not recover within {dur}.",
    "Drain and cordon the node if only pods on one node are affected.",
    "Confirm with {team} before changing any {noun} settings in {env}.",
    "Disable the feature flag for the {noun} path in {tool}.",
    "Write down timestamps of every action for the postmortem.",
    "Restart the pods one at a time and wait for the readiness probe to pass.",
    "Check that the certificate for {dep} has not expired.",
    "Run the reconciliation job for the affected tenants.",
    "Verify the {metric_id} series in Prometheus is back to its baseline.",
    "Open a ticket for the {adj} {noun} and link the trace from {tool}.",
    "Hand over to the next on-call engineer with the current state and open questions.",
    "Increase the {queue} partition count only after talking to {team}.",
    "Re-enable traffic from {region} once error rates are normal for {dur}.",
    "Check disk usage on the {db} volumes and expand them before they reach {pct}.",
    "Update the status page if customers see {adj} {nouns} for more than {dur}.",
]
BASH = [
    "kubectl -n {ns} get pods -l app={name} -o wide",
    "kubectl -n {ns} rollout status deployment/{name}",
    "kubectl -n {ns} rollout undo deployment/{name}",
    "kubectl -n {ns} scale deployment/{name} --replicas={n}",
    "kubectl -n {ns} logs deploy/{name} --since={m}m | grep -i error | tail -n 50",
    "kubectl -n {ns} describe hpa {name}",
    "kubectl -n {ns} top pods -l app={name}",
    "kubectl drain {node} --ignore-daemonsets --delete-emptydir-data",
    "helm -n {ns} history {name}",
    "helm -n {ns} rollback {name} {n}",
    "kafka-consumer-groups --bootstrap-server kafka.{region}.internal:9092 --describe --group {name}",
    "redis-cli -h {cachehost} --latency-history -i 5",
    "redis-cli -h {cachehost} INFO memory | grep used_memory_human",
    "curl -fsS https://{name}.{region}.internal/healthz",
    "curl -s http://localhost:9090/metrics | grep {metric_id}",
    "psql \"$DATABASE_URL\" -c 'SELECT count(*) FROM {table};'",
    "vault kv get secret/{ns}/{name}/db",
    "argocd app sync {name}-{env}",
    "terraform -chdir=infra/{name} plan",
]
SQL = [
    ["SELECT {col}, count(*)", "FROM {table}", "WHERE created_at > now() - interval '{m} minutes'",
     "GROUP BY {col}", "ORDER BY 2 DESC;"],
    ["SELECT pid, state, now() - query_start AS age, left(query, 80)", "FROM pg_stat_activity",
     "WHERE datname = '{dbname}' AND state <> 'idle'", "ORDER BY age DESC", "LIMIT 20;"],
    ["EXPLAIN (ANALYZE, BUFFERS)", "SELECT *", "FROM {table}", "WHERE tenant_id = $1 AND {col} = '{status}'",
     "LIMIT 100;"],
    ["CREATE INDEX CONCURRENTLY IF NOT EXISTS {table}_{col}_idx", "ON {table} ({col});"],
    ["UPDATE {table}", "SET status = 'pending', attempt = attempt + 1",
     "WHERE status = '{status}' AND updated_at < now() - interval '{m} minutes';"],
    ["DELETE FROM {table}", "WHERE created_at < now() - interval '{n} days'", "AND status = 'done';"],
    ["SELECT pg_cancel_backend(pid)", "FROM pg_stat_activity",
     "WHERE datname = '{dbname}' AND now() - query_start > interval '{m} minutes';"],
    ["SELECT relname, n_dead_tup, last_autovacuum", "FROM pg_stat_user_tables",
     "ORDER BY n_dead_tup DESC", "LIMIT 10;"],
    ["SELECT tenant_id, max({col}) AS latest", "FROM {table}", "GROUP BY tenant_id",
     "HAVING max({col}) < now() - interval '{n} hours';"],
]


# --------------------------------------------------------------------------- helpers

_SLUG_DROP = re.compile(r"[^\w\s-]")
_SLUG_SEP = re.compile(r"[-\s]+")


def slugify(text: str) -> str:
    """The default slug of Python-Markdown's ``toc`` extension (what MkDocs uses)."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = _SLUG_DROP.sub("", text).strip().lower()
    return _SLUG_SEP.sub("-", text)


def plural(noun: str) -> str:
    head, _, last = noun.rpartition(" ")
    if last.isupper():
        p = last + "s"
    elif last.endswith("y") and last[-2:-1] not in "aeiou":
        p = last[:-1] + "ies"
    elif last.endswith(("s", "x", "ch", "sh")):
        p = last + "es"
    else:
        p = last + "s"
    return f"{head} {p}" if head else p


def title_of(slug: str) -> str:
    return " ".join(w.upper() if w in ("api", "ui", "sdk") else w.capitalize() for w in slug.split("-"))


def zipf_cum(n: int, s: float = 1.0, boost: dict[int, float] | None = None) -> list[float]:
    weights = [1.0 / (r + 1) ** s for r in range(n)]
    if boost:
        for i, f in boost.items():
            weights[i] *= f
    return list(itertools.accumulate(weights))


class Picker:
    """Weighted choice from a fixed list by cumulative weights (Zipf-like by default)."""

    __slots__ = ("items", "cum", "total")

    def __init__(self, items: Sequence[str], cum: list[float] | None = None) -> None:
        self.items = list(items)
        self.cum = cum if cum is not None else zipf_cum(len(items))
        self.total = self.cum[-1]

    def __call__(self, rng: Random) -> str:
        return self.items[bisect(self.cum, rng.random() * self.total)]


P_ADJ = Picker(ADJS)
P_VERB = Picker(VERBS_3, zipf_cum(len(VERBS_3), 0.7))
P_METRIC = Picker(METRICS)
P_METRIC_ID = Picker(METRIC_IDS)
P_ALERT = Picker(ALERTS)
P_TOOL = Picker(TOOLS)
P_K8S = Picker(K8S)
P_DB = Picker(DATABASES)
P_CACHE = Picker(CACHES)
P_QUEUE = Picker(QUEUES)
P_LANG = Picker(LANGS)
P_ENV = Picker(ENVS, zipf_cum(len(ENVS), 1.5))
P_REGION = Picker(REGIONS)
P_DUR = Picker(DURS, zipf_cum(len(DURS), 0.5))
P_TEAM = Picker([f"team-{k:02d}" for k in range(N_TEAMS)], zipf_cum(N_TEAMS, 0.6))
P_A = Picker(WORDS_A, zipf_cum(len(WORDS_A), 0.3))
P_B = Picker(WORDS_B, zipf_cum(len(WORDS_B), 0.5))


class Ctx:
    """Per-site state the template slots draw from; ``rng`` is swapped per page body."""

    def __init__(self, seed: int, index: int, sites: int, width: int) -> None:
        r = Random(f"{seed}:site:{index}")
        self.rng = r
        self.index = index
        self.a, self.b, self.name = site_name(seed, index, width)
        self.self_slug = f"{self.a}-{self.b}"
        self.title = title_of(self.self_slug)
        self.team = P_TEAM(r)
        self.db = P_DB(r)
        self.db2 = P_DB(r)
        if self.db2 == self.db:
            self.db2 = DATABASES[(DATABASES.index(self.db) + 1) % len(DATABASES)]
        self.cache = P_CACHE(r)
        self.queue = P_QUEUE(r)
        self.lang = P_LANG(r)
        self.region = P_REGION(r)
        self.region2 = REGIONS[(REGIONS.index(self.region) + 1 + r.randrange(len(REGIONS) - 1)) % len(REGIONS)]
        self.ns = self.a
        dep_ids = [r.randrange(sites) for _ in range(r.randint(2, 4))] if sites > 1 else [index]
        self.deps = [site_name(seed, j, width)[:2] for j in dep_ids if j != index] or [(self.a, self.b)]
        au = self.a.replace("-", "_")
        self.tables = [f"{au}_{t}" for t in r.sample(TABLE_SUFFIXES, 3)]
        self.dbname = au
        self.topic = f"{self.a}.{self.b}.events"
        self.dashboard = f"{self.title} overview"
        focus = {i: r.uniform(6.0, 20.0) for i in r.sample(range(len(NOUNS)), 8)}
        self.nouns = Picker(NOUNS, zipf_cum(len(NOUNS), 1.0, focus))
        # Page files other than index.md.
        self.n_pages = 2 + (index % 2)
        self.extra_pages = r.sample(EXTRA_PAGES, 2)

    # Slot helpers: each returns a string; ``maybe`` keeps the site's own stack dominant.
    def pick_db(self) -> str:
        return self.db if self.rng.random() < 0.8 else P_DB(self.rng)

    def pick_cache(self) -> str:
        return self.cache if self.rng.random() < 0.8 else P_CACHE(self.rng)

    def pick_queue(self) -> str:
        return self.queue if self.rng.random() < 0.8 else P_QUEUE(self.rng)

    def pick_dep(self) -> str:
        a, b = self.deps[self.rng.randrange(len(self.deps))]
        return f"{a}-{b}"

    def pick_dep_title(self) -> str:
        a, b = self.deps[self.rng.randrange(len(self.deps))]
        return title_of(f"{a}-{b}")


def site_name(seed: int, index: int, width: int) -> tuple[str, str, str]:
    """(word a, word b, unique name) of site ``index``; independent of the site's other content."""
    r = Random(f"{seed}:name:{index}")
    a = P_A(r)
    b = P_B(r)
    if b == a or a.endswith(b):
        b = "service"
    return a, b, f"{a}-{b}-{index:0{width}d}"


def _code(s: str) -> str:
    return f"`{s}`"


SLOTS: dict[str, Callable[[Ctx], str]] = {
    "self": lambda c: _code(c.self_slug),
    "self_title": lambda c: c.title,
    "dep": lambda c: _code(c.pick_dep()),
    "dep_title": lambda c: c.pick_dep_title(),
    "noun": lambda c: c.nouns(c.rng),
    "nouns": lambda c: plural(c.nouns(c.rng)),
    "adj": lambda c: P_ADJ(c.rng),
    "verbs": lambda c: P_VERB(c.rng),
    "metric": lambda c: P_METRIC(c.rng),
    "metric2": lambda c: P_METRIC(c.rng),
    "metric_id": lambda c: _code(P_METRIC_ID(c.rng)),
    "alert": lambda c: P_ALERT(c.rng),
    "tool": lambda c: P_TOOL(c.rng),
    "k8s": lambda c: P_K8S(c.rng),
    "k8s_plain": lambda c: P_K8S(c.rng),
    "db": lambda c: c.pick_db(),
    "db2": lambda c: c.db2,
    "cache": lambda c: c.pick_cache(),
    "queue": lambda c: c.pick_queue(),
    "lang": lambda c: c.lang,
    "env": lambda c: P_ENV(c.rng),
    "region": lambda c: c.region,
    "region2": lambda c: c.region2,
    "team": lambda c: c.team,
    "dur": lambda c: P_DUR(c.rng),
    "ms": lambda c: f"{c.rng.choice((50, 100, 200, 250, 300, 500, 800, 1200, 2000))} ms",
    "n": lambda c: str(c.rng.choice((2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 32, 50, 100))),
    "pct": lambda c: f"{c.rng.choice((5, 10, 20, 25, 30, 40, 50, 70, 80, 90, 95, 99))}%",
    "dashboard": lambda c: c.dashboard,
    "table": lambda c: _code(c.tables[c.rng.randrange(3)]),
    "table_title": lambda c: c.tables[c.rng.randrange(3)].replace("_", " "),
    "topic": lambda c: _code(c.topic),
    "ns": lambda c: _code(c.ns),
}

_SLOT_RE = re.compile(r"\{(\w+)\}")
Part = str | Callable[[Ctx], str]


def _cap(fn: Callable[[Ctx], str]) -> Callable[[Ctx], str]:
    def capped(c: Ctx) -> str:
        s = fn(c)
        return s[:1].upper() + s[1:]
    return capped


def compile_template(t: str) -> list[Part]:
    parts: list[Part] = []
    pos = 0
    for m in _SLOT_RE.finditer(t):
        if m.start() > pos:
            parts.append(t[pos:m.start()])
        key = m.group(1)
        fn = SLOTS[key[0].lower() + key[1:]]
        parts.append(_cap(fn) if key[0].isupper() else fn)
        pos = m.end()
    if pos < len(t):
        parts.append(t[pos:])
    return parts


def render(parts: list[Part], c: Ctx) -> str:
    return "".join([p if p.__class__ is str else p(c) for p in parts])  # type: ignore[operator]


C_PROSE = [compile_template(t) for t in PROSE]
C_STEPS = [compile_template(t) for t in STEPS]
C_HEADINGS = {k: [compile_template(t) for t in v] for k, v in HEADINGS.items()}
P_PROSE = Picker([str(i) for i in range(len(PROSE))], zipf_cum(len(PROSE), 0.4))
P_STEPS = Picker([str(i) for i in range(len(STEPS))], zipf_cum(len(STEPS), 0.4))


def code_vars(c: Ctx) -> dict[str, str]:
    r = c.rng
    return {
        "ns": c.ns, "name": c.name, "n": str(r.randint(2, 12)), "m": str(r.choice((5, 10, 15, 30, 60))),
        "region": c.region, "cachehost": f"{c.cache.lower()}-{c.a}.{c.region}.internal",
        "metric_id": P_METRIC_ID(r), "table": c.tables[r.randrange(3)], "env": P_ENV(r),
        "node": f"ip-10-{r.randint(0, 255)}-{r.randint(0, 255)}-{r.randint(1, 254)}",
        "col": COLUMNS[r.randrange(len(COLUMNS))], "status": STATUSES[r.randrange(len(STATUSES))],
        "dbname": c.dbname,
    }


def code_block(c: Ctx) -> tuple[str, int]:
    r = c.rng
    v = code_vars(c)
    if r.random() < 0.6:
        lines = [BASH[i].format(**v) for i in r.sample(range(len(BASH)), r.randint(2, 4))]
        lang = "bash"
    else:
        lines = [ln.format(**v) for ln in SQL[r.randrange(len(SQL))]]
        lang = "sql"
    body = "\n".join(lines)
    return f"```{lang}\n{body}\n```", len(body.split())


# --------------------------------------------------------------------------- sections and pages

@dataclass
class Section:
    heading: str
    anchor: str
    sentences: list[str] = field(default_factory=list)  # prose only, for queries
    body: str = ""


@dataclass
class Page:
    stem: str
    nav_title: str
    h1: str
    sections: list[Section]

    @property
    def file(self) -> str:
        return f"{self.stem}.md"

    @property
    def url(self) -> str:
        return "" if self.stem == "index" else f"{self.stem}/"

    def markdown(self) -> str:
        out = [f"# {self.h1}\n"]
        for s in self.sections:
            out.append(f"\n## {s.heading}\n\n{s.body}\n")
        return "".join(out)


_ARTICLE = re.compile(r"\b([Aa]) (?=[aeiou]|[AEIO][a-z]|[AEIOFHLMNRSX][A-Z0-9]+\b)")


def fix_articles(s: str) -> str:
    """``a`` -> ``an`` before a vowel or a vowel-sounding acronym (``an SLO``)."""
    return _ARTICLE.sub(r"\1n ", s)


def sentence(c: Ctx, picker: Picker, templates: list[list[Part]], used: set[str]) -> str:
    """One rendered template, avoiding templates already ``used`` in this section."""
    r = c.rng
    key = picker(r)
    for _ in range(6):
        if key not in used:
            break
        key = picker(r)
    used.add(key)
    s = fix_articles(render(templates[int(key)], c))
    return s[:1].upper() + s[1:]


def gen_body(c: Ctx, sec: Section) -> None:
    """Fill ``sec.body`` (2-5 blocks, ~80-200 words) and ``sec.sentences`` with ``c.rng``."""
    r = c.rng
    n_blocks = r.randint(2, 5)
    target = r.randint(80, 180)
    code_at = r.randint(1, n_blocks - 1) if r.random() < 0.45 else -1
    blocks: list[str | list[str]] = []
    sentences: list[str] = []
    used_prose: set[str] = set()
    used_steps: set[str] = set()
    words = 0
    last_prose: list[str] | None = None
    prev_steps = False
    for bi in range(n_blocks):
        budget = max(12, (target - words) // (n_blocks - bi))
        if bi == code_at:
            text, w = code_block(c)
            blocks.append(text)
            words += w
            last_prose, prev_steps = None, False
        elif bi > 0 and not prev_steps and r.random() < 0.4:
            items: list[str] = []
            got = 0
            while len(items) < 2 or (got < budget and len(items) < 6):
                st = sentence(c, P_STEPS, C_STEPS, used_steps)
                items.append(st)
                got += len(st.split())
            sentences.extend(items)
            blocks.append("\n".join(f"{i}. {st}" for i, st in enumerate(items, 1)))
            words += got
            last_prose, prev_steps = None, True
        else:
            para: list[str] = []
            got = 0
            while not para or got < budget:
                st = sentence(c, P_PROSE, C_PROSE, used_prose)
                para.append(st)
                got += len(st.split())
            sentences.extend(para)
            blocks.append(para)  # joined below
            words += got
            last_prose, prev_steps = para, False
    while words < 80:
        st = sentence(c, P_PROSE, C_PROSE, used_prose)
        sentences.append(st)
        if last_prose is None:
            last_prose = [st]
            blocks.append(last_prose)
        else:
            last_prose.append(st)
        words += len(st.split())
    sec.body = "\n\n".join(b if isinstance(b, str) else " ".join(b) for b in blocks)
    sec.sentences = sentences


def gen_structure(c: Ctx, n_sections: int) -> list[Page]:
    """Pages, titles and unique headings of a site (uses the site rng, not the body rngs)."""
    r = c.rng
    n_pages = min(c.n_pages, n_sections)
    stems = ["index"] + c.extra_pages[: n_pages - 1]
    counts = [1] * n_pages
    for _ in range(n_sections - n_pages):
        counts[r.randrange(n_pages)] += 1
    pages: list[Page] = []
    for stem, count in zip(stems, counts):
        if stem == "index":
            nav, h1 = "Overview", c.title
        else:
            nav, suffix = PAGES[stem]
            h1 = f"{c.title} {suffix}"
        used = {slugify(h1)}
        secs: list[Section] = []
        templates = C_HEADINGS[stem]
        for k in range(count):
            heading = ""
            for _attempt in range(30):
                heading = fix_articles(render(templates[r.randrange(len(templates))], c))
                heading = heading[:1].upper() + heading[1:]
                if slugify(heading) not in used:
                    break
            slug = slugify(heading)
            n = 2
            while slug in used:
                heading = f"{heading} part {n}"
                slug = slugify(heading)
                n += 1
            used.add(slug)
            secs.append(Section(heading=heading, anchor=slug))
        pages.append(Page(stem=stem, nav_title=nav, h1=h1, sections=secs))
    return pages


def gen_site(seed: int, index: int, sites: int, width: int, n_sections: int,
             rewrite: tuple[str, int] | None = None) -> tuple[Ctx, list[Page]]:
    """Build one site. ``rewrite=(stem, rev)`` regenerates that page's bodies with revision ``rev``."""
    c = Ctx(seed, index, sites, width)
    pages = gen_structure(c, n_sections)
    for p in pages:
        rev = rewrite[1] if rewrite and rewrite[0] == p.stem else 0
        c.rng = Random(f"{seed}:body:{index}:{p.stem}" + (f":rev{rev}" if rev else ""))
        for s in p.sections:
            gen_body(c, s)
    return c, pages


# --------------------------------------------------------------------------- files

def q(s: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(s)


def component_yaml(c: Ctx) -> str:
    return (
        "apiVersion: backstage.io/v1alpha1\n"
        "kind: Component\n"
        "metadata:\n"
        f"  name: {c.name}\n"
        f"  title: {q(c.title)}\n"
        f"  description: {q(f'{c.title}: {c.lang} service on {c.db}, {c.cache} and {c.queue}.')}\n"
        "  annotations:\n"
        "    backstage.io/techdocs-ref: \"dir:.\"\n"
        "spec:\n"
        "  type: service\n"
        "  lifecycle: production\n"
        f"  owner: {c.team}\n"
    )


def mkdocs_yaml(c: Ctx, pages: list[Page]) -> str:
    nav = "".join(f"  - {q(p.nav_title)}: {p.file}\n" for p in pages)
    return (
        f"site_name: {q(c.title)}\n"
        f"site_description: {q(f'Technical documentation for {c.name}')}\n"
        f"nav:\n{nav}"
        "plugins:\n"
        "  - techdocs-core\n"
    )


def org_yaml() -> str:
    docs = []
    for k in range(N_TEAMS):
        docs.append(
            "apiVersion: backstage.io/v1alpha1\n"
            "kind: Group\n"
            "metadata:\n"
            f"  name: team-{k:02d}\n"
            f"  title: {q(f'Team {k:02d}')}\n"
            "spec:\n"
            "  type: team\n"
            "  children: []\n"
        )
    return "---\n".join(docs)


def location_yaml(names: list[str]) -> str:
    targets = "".join(f"    - ./sites/{n}/catalog-info.yaml\n" for n in names)
    return (
        "apiVersion: backstage.io/v1alpha1\n"
        "kind: Location\n"
        "metadata:\n"
        "  name: docs-bench\n"
        "  description: Synthetic TechDocs corpus for benchmarks (bench/gen_docs.py)\n"
        "spec:\n"
        "  targets:\n"
        "    - ./org.yaml\n"
        f"{targets}"
    )


class Writer:
    """Writes files, skipping identical content; counts bytes and remembers what changed."""

    def __init__(self) -> None:
        self.bytes = 0
        self.changed: list[str] = []
        self.made: set[str] = set()

    def write(self, path: str, text: str) -> None:
        data = text.encode("utf-8")
        self.bytes += len(data)
        try:
            with open(path, "rb") as f:
                if f.read() == data:
                    return
        except FileNotFoundError:
            d = os.path.dirname(path)
            if d not in self.made:
                os.makedirs(d, exist_ok=True)
                self.made.add(d)
        with open(path, "wb") as f:
            f.write(data)
        self.changed.append(path)


def write_site(w: Writer, out: str, c: Ctx, pages: list[Page]) -> None:
    root = os.path.join(out, "sites", c.name)
    w.write(os.path.join(root, "catalog-info.yaml"), component_yaml(c))
    w.write(os.path.join(root, "mkdocs.yml"), mkdocs_yaml(c, pages))
    for p in pages:
        w.write(os.path.join(root, "docs", p.file), p.markdown())


# --------------------------------------------------------------------------- queries

_CODE_SPAN = re.compile(r"`[^`]*`")
_WORD = re.compile(r"(?<![\w`-])[A-Za-z]{3,}(?![\w`-])")
_PAIR = re.compile(r"(?<![\w`-])(?=([A-Za-z]{3,}) ([A-Za-z]{3,})(?![\w`-]))")


def content_words(text: str) -> list[str]:
    return [w for w in (m.lower() for m in _WORD.findall(_CODE_SPAN.sub(" ", text))) if w not in STOP]


def typo(word: str, r: Random) -> str:
    """Delete one interior letter or swap two adjacent, different interior letters."""
    swaps = [j for j in range(1, len(word) - 2) if word[j] != word[j + 1]]
    if swaps and r.random() < 0.5:
        j = r.choice(swaps)
        return word[:j] + word[j + 1] + word[j] + word[j + 2:]
    j = r.randrange(1, len(word) - 1)
    return word[:j] + word[j + 1:]


def _vocabulary() -> frozenset[str]:
    """Every word the generator can emit (all text comes from these lists and templates)."""
    texts: list[str] = []
    for lst in (WORDS_A, WORDS_B, NOUNS, ADJS, VERBS_3, METRICS, METRIC_IDS, ALERTS, TOOLS, K8S,
                DATABASES, CACHES, QUEUES, LANGS, ENVS, REGIONS, DURS, TABLE_SUFFIXES, COLUMNS,
                STATUSES, PROSE, STEPS, BASH, [ln for t in SQL for ln in t], list(STOP)):
        texts.extend(lst)
    for stem, (nav, suffix) in PAGES.items():
        texts += [stem, nav, suffix]
    texts += [t for v in HEADINGS.values() for t in v]
    words = {w.lower() for t in texts for w in re.findall(r"[A-Za-z]+", t)}
    words |= {w.lower() for n in NOUNS for w in re.findall(r"[A-Za-z]+", plural(n))}
    return frozenset(words | {"an", "overview", "part", "team", "bash", "sql", "ip"})


VOCAB = _vocabulary()


def make_query(kind: str, sec: Section, r: Random) -> tuple[str, str]:
    """A query of ``kind`` drawn from ``sec``; returns (query, kind actually produced)."""
    sources = [sec.heading] + sec.sentences
    if kind == "phrase":
        pairs = []
        for s in sources:
            for m in _PAIR.finditer(_CODE_SPAN.sub(" ", s)):
                a, b = m.group(1).lower(), m.group(2).lower()
                if a not in STOP and b not in STOP:
                    pairs.append(f"{a} {b}")
        if pairs:
            return f'"{r.choice(pairs)}"', "phrase"
        kind = "plain"
    if kind == "prefix":
        cands = []
        for s in sources:
            ws = content_words(s)
            cands.extend((ws, i) for i, w in enumerate(ws) if len(w) >= 6)
        if cands:
            ws, i = r.choice(cands)
            w = ws[i]
            cut = w[: r.randint(5, min(7, len(w) - 1))]
            lead = ws[max(0, i - r.randint(0, 2)):i]
            return " ".join(lead + [cut]), "prefix"
        kind = "plain"
    # plain / typo: 40% from the heading, else from one body sentence
    for _ in range(20):
        src = sec.heading if (r.random() < 0.4 or not sec.sentences) else r.choice(sec.sentences)
        ws = content_words(src)
        if not ws:
            continue
        k = min(len(ws), r.choice((1, 2, 2, 3, 3, 4)))
        start = r.randrange(len(ws) - k + 1)
        window = ws[start:start + k]
        if kind == "typo":
            long_ = [i for i, w in enumerate(window) if len(w) >= 5]
            if not long_:
                continue
            i = r.choice(long_)
            bad = ""
            for _ in range(10):  # a typo must not be a real word of the corpus ("writers" -> "writes")
                bad = typo(window[i], r)
                if bad not in VOCAB:
                    break
            else:
                continue
            window = window[:i] + [bad] + window[i + 1:]
        return " ".join(window), kind
    ws = content_words(" ".join(sources)) or ["service"]
    return ws[0], "plain"


def query_plan(seed: int, total_sections: int) -> tuple[list[int], list[str]]:
    r = Random(f"{seed}:queries")
    if total_sections >= N_QUERIES:
        targets = r.sample(range(total_sections), N_QUERIES)
    else:
        targets = [r.randrange(total_sections) for _ in range(N_QUERIES)]
    kinds = ["typo"] * 200 + ["phrase"] * 100 + ["prefix"] * 100
    kinds += ["plain"] * (N_QUERIES - len(kinds))
    r.shuffle(kinds)
    return targets, kinds


# --------------------------------------------------------------------------- main

def generate(out: str, sites: int, n_sections: int, seed: int) -> None:
    t0 = time.perf_counter()
    width = max(5, len(str(sites - 1)))
    targets, kinds = query_plan(seed, sites * n_sections)
    wanted: dict[int, list[int]] = {}
    for slot, gid in enumerate(targets):
        wanted.setdefault(gid, []).append(slot)
    picked: dict[int, tuple[str, Page, Section]] = {}
    w = Writer()
    names: list[str] = []
    n_pages = 0
    for i in range(sites):
        c, pages = gen_site(seed, i, sites, width, n_sections)
        write_site(w, out, c, pages)
        names.append(c.name)
        n_pages += len(pages)
        gid = i * n_sections
        for p in pages:
            for s in p.sections:
                if gid in wanted:
                    picked[gid] = (c.name, p, s)
                gid += 1
    w.write(os.path.join(out, "org.yaml"), org_yaml())
    w.write(os.path.join(out, "catalog-info.yaml"), location_yaml(names))
    qr = Random(f"{seed}:query-text")
    queries = []
    for slot, gid in enumerate(targets):
        name, page, sec = picked[gid]
        text, kind = make_query(kinds[slot], sec, qr)
        queries.append({"q": text, "entity": f"component:default/{name}",
                        "location": f"{page.url}#{sec.anchor}", "kind": kind})
    w.write(os.path.join(out, "queries.json"), json.dumps(queries, indent=1) + "\n")
    secs = sites * n_sections
    print(f"sites={sites} pages={n_pages} sections={secs} heading_entries={secs + n_pages} "
          f"index_entries={secs + 2 * n_pages} files_written={len(w.changed)} bytes={w.bytes} "
          f"seconds={time.perf_counter() - t0:.2f} out={out}")


def regenerate_one(out: str, sites: int, n_sections: int, seed: int, index: int, rev: int) -> None:
    t0 = time.perf_counter()
    width = max(5, len(str(sites - 1)))
    c, pages = gen_site(seed, index, sites, width, n_sections)
    stem = pages[Random(f"{seed}:only:{index}").randrange(len(pages))].stem  # same page for every rev
    c, pages = gen_site(seed, index, sites, width, n_sections, rewrite=(stem, rev))
    w = Writer()
    write_site(w, out, c, pages)
    for path in w.changed:
        print(f"changed: {path}")
    page = next(p for p in pages if p.stem == stem)
    n_pages = len(pages)
    print(f"sites=1 (index {index}, {c.name}) pages={n_pages} sections={n_sections} "
          f"rewritten_page={page.file} rewritten_sections={len(page.sections)} rev={rev} "
          f"files_written={len(w.changed)} bytes={w.bytes} seconds={time.perf_counter() - t0:.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", type=int, default=5000, help="number of TechDocs sites (default 5000)")
    ap.add_argument("--sections", type=int, default=10, help="## sections per site (default 10)")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--only", type=int, metavar="N",
                    help="rewrite one page of site N only (incremental-change benchmark)")
    ap.add_argument("--rev", type=int, default=1, help="revision of the --only rewrite (default 1; 0 = original)")
    args = ap.parse_args(argv)
    if args.sites < 1 or args.sections < 1:
        ap.error("--sites and --sections must be >= 1")
    if args.only is not None:
        if not 0 <= args.only < args.sites:
            ap.error(f"--only must be in [0, {args.sites - 1}]")
        regenerate_one(args.out, args.sites, args.sections, args.seed, args.only, args.rev)
    else:
        generate(args.out, args.sites, args.sections, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
