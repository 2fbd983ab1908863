"""A small org with Software Templates, for the permission and ``create`` tests: engineering has a
sub-team platform-team; sre stands alone; ana is in platform-team, bob in sre, carl in no team."""

from __future__ import annotations

from pathlib import Path

from callboard.scaffolder.permissions import rules_from_config

ORG = """\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: engineering}
spec: {type: department, children: [platform-team]}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: platform-team}
spec: {type: team, parent: engineering, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: sre}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: ana}
spec: {profile: {email: ana@acme.example}, memberOf: [platform-team]}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: bob}
spec: {profile: {email: bob@acme.example}, memberOf: [sre]}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: carl}
spec: {profile: {email: carl@acme.example}, memberOf: []}
"""


def template(name: str, title: str, description: str, tags: list[str]) -> str:
    return f"""\
---
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: {name}
  title: {title}
  description: {description}
  tags: [{", ".join(tags)}]
spec:
  owner: platform-team
  type: service
  parameters:
    - title: About it
      required: [name]
      properties:
        name: {{type: string, title: Name}}
  steps:
    - id: log
      name: Say hello
      action: debug:log
      input: {{message: "hello ${{{{ parameters.name }}}}"}}
  output:
    links:
      - title: Repository
        url: https://git.example/acme/${{{{ parameters.name }}}}
"""


TEMPLATES = (
    template("python-service", "Python service", "A FastAPI service with CI, Dockerfile, tests and TechDocs",
             ["python", "service", "recommended"])
    + template("docs-site", "Documentation site", "A TechDocs documentation site built with MkDocs",
               ["docs", "techdocs"])
    + template("postgres-db", "PostgreSQL database", "A managed PostgreSQL database with backups",
               ["database", "production"])
)

#: python-service (tag python): engineering and its sub-teams; postgres-db: sre only; docs-site: everyone
RULES = rules_from_config([
    {"tags": ["python"], "groups": ["engineering"]},
    {"templates": ["template:default/postgres-db"], "groups": ["group:default/sre"]},
])


def write_org(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "catalog-info.yaml").write_text(ORG + TEMPLATES)
    return root
