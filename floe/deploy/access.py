"""The access table printed after a deploy: every UI/API, where the credentials are, example queries.

URLs come from the Services' port-forward annotations; credential locations from the containers'
``secretKeyRef``s in ``dist/`` — nothing here repeats a port or a Secret name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from floe.deploy.manifests import Stack, pod_spec
from floe.deploy.ports import Assignment

CREDENTIALS_STORE = ".floe/credentials.json"  # floe.config.CredentialsConfig.store default
# A cube, measure and dimension of the demo's Cube model (demo/cube/model/orders.yml) for the examples.
EXAMPLE_CUBE = "orders"
EXAMPLE_MEASURE = "count"
EXAMPLE_DIMENSION = "status"
CUBE_SQL_PORT_NAME = "sql"


@dataclass(frozen=True)
class SecretRef:
    env: str
    secret: str
    key: str


def secret_refs(stack: Stack, env_names: Sequence[str]) -> dict[str, SecretRef]:
    """Where each of ``env_names`` comes from (first container that sets it from a Secret)."""
    found: dict[str, SecretRef] = {}
    for obj in stack.objects():
        spec = pod_spec(obj) or {}
        for container in spec.get("containers") or []:
            for env in container.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if env.get("name") in env_names and ref and env["name"] not in found:
                    found[env["name"]] = SecretRef(env["name"], ref["name"], ref["key"])
    return found


def kubectl_secret_command(namespace: str, ref: SecretRef) -> str:
    # kubectl jsonpath: dashes are fine in a field name (dots would need escaping; Secret keys here have none).
    return f"kubectl get secret -n {namespace} {ref.secret} -o jsonpath='{{.data.{ref.key}}}' | base64 -d"


def cube_token(secret: str, ttl_seconds: int = 24 * 3600, now: float | None = None) -> str:
    """An HS256 JWT signed with CUBEJS_API_SECRET: what Cube's REST/GraphQL APIs expect in the
    Authorization header (Cube docs, 'Authentication & Authorization': JWT with HS256 by default)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    issued = int(now if now is not None else time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = b64(json.dumps({"iat": issued, "exp": issued + ttl_seconds}, separators=(",", ":")).encode())
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def _find(assignments: Sequence[Assignment], service_part: str, port: int | None = None) -> Assignment | None:
    for a in assignments:
        if service_part in a.spec.service and (port is None or a.spec.service_port == port):
            return a
    return None


def access_lines(stack: Stack, assignments: Sequence[Assignment]) -> list[str]:
    """The text after the table: credentials and example queries, with the ports actually forwarded."""
    ns = stack.namespace
    lines = [
        f"Credentials: generated at first synth into {CREDENTIALS_STORE} (git-ignored); in the cluster as Secrets "
        f"{', '.join(stack.secrets()) or '(none in dist/)'} — read one with "
        f"`kubectl get secret -n {ns} <name> -o jsonpath='{{.data}}'` (values are base64).",
    ]
    refs = secret_refs(stack, ["CUBEJS_API_SECRET", "CUBEJS_SQL_USER", "CUBEJS_SQL_PASSWORD"])
    api = next((a for a in assignments if a.spec.service_port == 4000), None) or _find(assignments, "cube")
    sql = next((a for a in assignments if a.spec.port_name == CUBE_SQL_PORT_NAME and "cube" in a.spec.service), None) or next(
        (a for a in assignments if a.spec.service_port == 15432), None
    )
    measure, dimension = f"{EXAMPLE_CUBE}.{EXAMPLE_MEASURE}", f"{EXAMPLE_CUBE}.{EXAMPLE_DIMENSION}"
    query = json.dumps({"measures": [measure], "dimensions": [dimension]}, separators=(",", ":"))
    sql_query = f"SELECT {dimension} AS {EXAMPLE_DIMENSION}, MEASURE({measure}) AS {EXAMPLE_MEASURE} FROM {EXAMPLE_CUBE} GROUP BY 1"
    if api:
        # Cube REST API docs: the JWT goes in the Authorization header as is; GraphQL is <base path>/graphql.
        lines += [
            "",
            "Cube REST API (token: `python -m floe.deploy cube-token`, signed with CUBEJS_API_SECRET):",
            "  TOKEN=$(.venv/bin/python -m floe.deploy cube-token)",
            f"  curl -s -H \"Authorization: $TOKEN\" -G {api.url}/cubejs-api/v1/load --data-urlencode 'query={query}'",
            "Cube GraphQL API:",
            f"  curl -s -H \"Authorization: $TOKEN\" -H 'Content-Type: application/json' {api.url}/cubejs-api/graphql "
            f"-d '{{\"query\":\"{{ cube {{ {EXAMPLE_CUBE} {{ {EXAMPLE_MEASURE} {EXAMPLE_DIMENSION} }} }} }}\"}}'",
        ]
    if sql:
        # Cube Core SQL API docs (cube.dev/docs/product/apis-integrations/sql-api): `psql -h … -p 15432 -U user cube`,
        # measures queried as MEASURE(cube.measure).
        user = refs.get("CUBEJS_SQL_USER")
        password = refs.get("CUBEJS_SQL_PASSWORD")
        user_cmd = f"$({kubectl_secret_command(ns, user)})" if user else "<CUBEJS_SQL_USER>"
        pw_cmd = f"$({kubectl_secret_command(ns, password)})" if password else "<CUBEJS_SQL_PASSWORD>"
        lines += [
            "Cube SQL API (Postgres wire protocol):",
            f"  PGPASSWORD={pw_cmd} psql -h 127.0.0.1 -p {sql.local_port} -U {user_cmd} -d cube "
            f"-c '{sql_query}'",
            "  python: psycopg2.connect(host='127.0.0.1', port="
            f"{sql.local_port}, user=USER, password=PASSWORD, dbname='cube')"
            f" then cursor.execute('{sql_query}')",
        ]
    return lines


def secret_value(secret_json: dict[str, Any], key: str) -> str:
    data = secret_json.get("data") or {}
    if key not in data:
        raise KeyError(f"Secret {secret_json.get('metadata', {}).get('name')} has no key {key!r} (keys: {sorted(data)})")
    return base64.b64decode(data[key]).decode()
