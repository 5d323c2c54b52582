"""The access table's content, the Cube token, and the status screen's sections."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

from rich.console import Console

from floe.deploy import access, status
from floe.deploy.kubectl import Completed, Kubectl
from floe.deploy.manifests import Stack
from floe.deploy.ports import assign_ports
from tests.deploy.conftest import CREATED, FakeRunner, state


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_cube_token_is_a_valid_hs256_jwt() -> None:
    token = access.cube_token("fixture-secret", ttl_seconds=60, now=1_800_000_000)
    header, payload, signature = token.split(".")
    assert json.loads(_b64decode(header)) == {"alg": "HS256", "typ": "JWT"}
    assert json.loads(_b64decode(payload)) == {"iat": 1_800_000_000, "exp": 1_800_000_060}
    expected = hmac.new(b"fixture-secret", f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert _b64decode(signature) == expected
    assert access.cube_token("other-secret", 60, now=1_800_000_000) != token


def test_access_lines_use_forwarded_ports_and_secret_refs(stack: Stack) -> None:
    assignments = assign_ports(stack.port_forwards(), is_free=lambda p: p not in (4000, 15432))
    text = "\n".join(access.access_lines(stack, assignments))
    # 4000 and 15432 were busy: the examples use the ports actually forwarded.
    assert "http://localhost:4001/cubejs-api/v1/load" in text
    assert "psql -h 127.0.0.1 -p 15433" in text
    assert "kubectl get secret -n floe floe-cube-sql -o jsonpath='{.data.username}' | base64 -d" in text
    assert ".floe/credentials.json" in text and "floe-minio-root" in text
    assert '{ cube { orders { count status } } }' in text
    assert "SELECT orders.status AS status, MEASURE(orders.count) AS count FROM orders GROUP BY 1" in text
    sql = next(a for a in assignments if a.spec.service == "floe-cube-sql")
    assert sql.url == "postgresql://127.0.0.1:15433"


def test_example_members_exist_in_the_demo_cube_model() -> None:
    import yaml

    from tests.deploy.conftest import FIXTURES

    model = yaml.safe_load((FIXTURES.parents[2] / "demo/cube/model/orders.yml").read_text())
    cube = next(c for c in model["cubes"] if c["name"] == access.EXAMPLE_CUBE)
    assert access.EXAMPLE_MEASURE in [m["name"] for m in cube["measures"]]
    assert access.EXAMPLE_DIMENSION in [d["name"] for d in cube["dimensions"]]


def test_secret_value_decodes_and_names_missing_keys() -> None:
    secret = {"metadata": {"name": "floe-cube-api"}, "data": {"api-secret": base64.b64encode(b"s3cr3t-fixture").decode()}}
    assert access.secret_value(secret, "api-secret") == "s3cr3t-fixture"
    try:
        access.secret_value(secret, "nope")
    except KeyError as exc:
        assert "floe-cube-api has no key 'nope'" in str(exc)
    else:
        raise AssertionError("expected KeyError")


def render(renderable) -> str:
    console = Console(width=200, record=True)
    console.print(renderable)
    return console.export_text()


def test_status_screen_sections(stack: Stack) -> None:
    cluster = state("crash-loop")
    pods = {"items": [i for i in cluster["items"] if i["kind"] == "Pod"]}
    jobs = {"items": [i for i in state("job-backoff-exceeded")["items"] if i["kind"] == "Job"]}
    fake = FakeRunner(
        rules=[
            (lambda a: a[1:3] == ["get", "pods"], lambda a: Completed(tuple(a), 0, json.dumps(pods), "")),
            (lambda a: a[1:3] == ["get", "jobs"], lambda a: Completed(tuple(a), 0, json.dumps(jobs), "")),
            (lambda a: "exec" in a, lambda a: Completed(tuple(a), 0, 'INFO connecting\n{"customers": 120, "orders": null}\n', "")),
        ]
    )
    sections = status.gather(Kubectl(runner=fake), "floe", runs=lambda: (_ for _ in ()).throw(RuntimeError("no Dagster webserver")))
    text = render(status.render(sections))
    assert "floe-polaris-6b7c9d8f5d-x7k2q" in text and "CrashLoopBackOff" in text
    assert "Failed (BackoffLimitExceeded)" in text and "Complete" in text
    assert "Dagster runs: unavailable — no Dagster webserver" in text
    assert "customers" in text and "120" in text and "missing" in text
    exec_call = next(c for c in fake.calls if "exec" in c)
    assert exec_call == ["kubectl", "exec", "-n", "floe", "deploy/floe-dagster-user-code", "--", "python", "-m", "demo.ingest", "counts", "--json"]


def test_status_without_a_cluster_says_so_once() -> None:
    fake = FakeRunner(rules=[(lambda a: True, lambda a: Completed(tuple(a), 1, "", "The connection to the server 127.0.0.1:6443 was refused"))])
    sections = status.gather(Kubectl(runner=fake), "floe", runs=lambda: None)
    assert len(sections) == 1 and "was refused" in sections[0].unavailable


def test_pod_age_and_reason_columns() -> None:
    pods = {"items": [i for i in state("infra-progressing")["items"] if i["kind"] == "Pod"]}
    text = render(status.pods_table(pods, CREATED + timedelta(minutes=3, seconds=5)))
    assert "ContainerCreating" in text and "3m" in text
