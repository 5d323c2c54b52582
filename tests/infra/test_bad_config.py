"""Bad input gets a clear error naming the field, the file (or variable) and the allowed values,
exits non-zero, and leaves the previous dist/ exactly as it was."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.conftest import REPO, write_fake_credentials

#: minio.external's per-client Secrets, one flow-style line (issue 19: each client its own key).
S3_SECRETS = "secrets: {" + ", ".join(
    f"{client}: {{name: s3-{client.replace('_', '-')}}}"
    for client in ("buckets", "polaris", "dagster_pipeline", "dagster_webserver", "cube", "cubestore", "verify")
) + "}"

def gateway_case(**fields: str) -> str:
    """An ``ingress.gateway`` (issue 19 item 3) with ``fields`` replacing the valid ones ('' drops one)."""
    gateway = {
        "name": "shared-gateway",
        "namespace": "gateway-system",
        "data_plane": "{namespace: gateway-system, pod_labels: {gateway.networking.k8s.io/gateway-name: shared-gateway}}",
        "authentication": "gateway",
        **fields,
    }
    return "ingress:\n  gateway: {" + ", ".join(f"{k}: {v}" for k, v in gateway.items() if v != "") + "}\n"


CASES = {
    "wrong type": ("polaris:\n  port: eighty\n", ["polaris.port", "valid integer", "'eighty'"]),
    "unknown key": ("minio:\n  consol_port: 9001\n", ["minio.consol_port", "unknown key", "allowed keys:", "console_port"]),
    "unknown top-level key": ("namespce: floe\n", ["namespce", "allowed keys:", "namespace"]),
    "port out of range": ("jaeger:\n  ui_port: 70000\n", ["jaeger.ui_port", "less than or equal to 65535", "70000"]),
    "empty namespace": ("namespace: ''\n", ["namespace", "DNS-1123 label"]),
    "bad namespace": ("namespace: Lake_House\n", ["namespace", "DNS-1123 label", "'Lake_House'"]),
    "enum value": ("credentials:\n  source: vault\n", ["credentials.source", "'generated' or 'existing'", "'vault'"]),
    "latest tag": ("minio:\n  image:\n    repository: quay.io/minio/minio\n    tag: latest\n", ["minio.image.tag", "pinned"]),
    "pull policy": ("postgres:\n  image:\n    repository: postgres\n    tag: '18.1'\n    pull_policy: Sometimes\n", ["pull_policy", "'IfNotPresent', 'Always' or 'Never'"]),
    "limit below request": ("polaris:\n  resources:\n    memory_request: 2Gi\n    memory_limit: 1Gi\n", ["polaris.resources", "below memory_request"]),
    "bad quantity": ("marquez:\n  resources:\n    cpu_request: lots\n", ["marquez.resources.cpu_request", "not a CPU quantity"]),
    "same ports": ("minio:\n  api_port: 9000\n  console_port: 9000\n", ["minio", "must differ"]),
    "not yaml": ("polaris: [unclosed\n", ["not valid YAML"]),
    "not a mapping": ("- a\n- b\n", ["top level must be a mapping"]),
    # Persistent storage and external services (issue 11 item 1).
    "local profile asking for PVCs": ("postgres:\n  persistence:\n    size: 20Gi\n", ["postgres.persistence", "needs profile: cluster", "emptyDir"]),
    "storage class not a name": ("profile: cluster\nminio:\n  persistence:\n    storage_class: Fast_SSD\n", ["minio.persistence.storage_class", "DNS-1123 subdomain", "'Fast_SSD'"]),
    "storage size not a quantity": ("profile: cluster\npostgres:\n  persistence:\n    size: 20GB\n", ["postgres.persistence.size", "'20GB'"]),
    "storage size not canonical": ("profile: cluster\npostgres:\n  persistence:\n    size: 1024Mi\n", ["postgres.persistence.size", "canonical form '1Gi'"]),
    "unknown profile": ("profile: production\n", ["profile", "'local' or 'cluster'", "'production'"]),
    "external postgres without a Secret": (
        "postgres:\n  external:\n    host: db.example.com\n    databases:\n"
        "      dagster: {name: dagster}\n      marquez: {name: marquez, secret: {name: db-marquez}}\n      polaris: {name: polaris, secret: {name: db-polaris}}\n",
        ["postgres.external.databases.dagster.secret", "Field required"],
    ),
    "external postgres missing a database": (
        "postgres:\n  external:\n    host: db.example.com\n    cidr: 10.0.0.0/8\n    databases:\n      dagster: {name: dagster, secret: {name: db}}\n",
        ["postgres", "external.databases must declare exactly dagster, marquez, polaris", "missing: marquez, polaris"],
    ),
    "external postgres host with a scheme": (
        "postgres:\n  external:\n    host: postgres://db.example.com\n    databases: {}\n",
        ["postgres.external.host", "lowercase DNS name or an IPv4 address"],
    ),
    "external cidr with host bits": (
        "minio:\n  external:\n    endpoint: https://s3.example.com\n    region: eu-west-1\n    " + S3_SECRETS + "\n    cidr: 10.20.0.1/16\n",
        ["minio.external.cidr", "IPv4 CIDR"],
    ),
    "external S3 without a Secret": ("minio:\n  external:\n    endpoint: https://s3.example.com\n    region: eu-west-1\n", ["minio.external.secrets", "Field required"]),
    # Issue 19: each client of an external store has its own declared Secret; one shared key is gone.
    # Issue 19 item 2: guarded UIs.
    "ingress annotation key": (
        "ingress:\n  annotations:\n    'nginx.ingress.kubernetes.io/proxy body size': 100m\n",
        ["ingress.annotations", "the name must be 1-63 characters"],
    ),
    "ingress annotation sets auth twice": (
        "ingress:\n  auth: {type: basic, secret: ui-users}\n  annotations:\n    nginx.ingress.kubernetes.io/auth-url: https://x.example.com/auth\n",
        ["ingress", "nginx.ingress.kubernetes.io/auth-url come from ingress.auth"],
    ),
    "ingress auth type": (
        "ingress:\n  auth: {type: ldap, url: https://x.example.com}\n",
        ["ingress.auth", "'external', 'basic', 'none'", "'ldap'"],
    ),
    "enabled ingress without auth": (
        "ingress:\n  enabled: true\n  hosts:\n    dagster: dagster.example.com\n",
        ["ingress", "auth: required with an enabled Ingress", "{type: none}", "type: basic"],
    ),
    "ingress auth none with gateway": (
        gateway_case().replace("ingress:\n", "ingress:\n  auth: {type: none}\n"),
        ["ingress", "gateway.authentication (gateway | none)"],
    ),
    "ingress external auth without url": ("ingress:\n  auth: {type: external}\n", ["ingress.auth.external.url", "Field required"]),
    "ingress basic auth secret name": ("ingress:\n  auth: {type: basic, secret: UI_Users}\n", ["ingress.auth.basic.secret", "UI_Users"]),
    # Issue 19 item 3: the Gateway API instead of the Ingress.
    "gateway name": (gateway_case(name="Shared_Gateway"), ["ingress.gateway.name", "'Shared_Gateway'"]),
    "gateway namespace": (gateway_case(namespace="gateway.system"), ["ingress.gateway.namespace", "DNS-1123 label", "'gateway.system'"]),
    "gateway listener name": (gateway_case(section_name="'HTTPS listener'"), ["ingress.gateway.section_name", "'HTTPS listener'"]),
    "gateway without data plane": (gateway_case(data_plane=""), ["ingress.gateway.data_plane", "Field required"]),
    "gateway data plane without labels": (
        gateway_case(data_plane="{namespace: gateway-system, pod_labels: {}}"),
        ["ingress.gateway.data_plane.pod_labels", "at least 1 item"],
    ),
    "gateway data plane label value": (
        gateway_case(data_plane="{namespace: gateway-system, pod_labels: {app: 'envoy proxy'}}"),
        ["ingress.gateway.data_plane.pod_labels.app", "'envoy proxy'", "a label value is at most 63 characters"],
    ),
    "gateway data plane namespace": (
        gateway_case(data_plane="{namespace: Gateway, pod_labels: {app: envoy}}"),
        ["ingress.gateway.data_plane.namespace", "DNS-1123 label", "'Gateway'"],
    ),
    "gateway without authentication": (gateway_case(authentication=""), ["ingress.gateway.authentication", "Field required"]),
    "gateway authentication value": (gateway_case(authentication="oauth2"), ["ingress.gateway.authentication", "'gateway' or 'none'", "'oauth2'"]),
    "gateway with ingress-nginx auth": (
        gateway_case() + "  auth: {type: basic, secret: ui-users}\n",
        ["ingress", "auth: type basic is enforced by ingress-nginx", "no authentication filter", "gateway.authentication: gateway"],
    ),
    "gateway with ingress annotations": (
        gateway_case() + "  annotations: {nginx.ingress.kubernetes.io/proxy-body-size: 256m}\n",
        ["ingress", "annotations: nginx.ingress.kubernetes.io/proxy-body-size are for the ingress controller"],
    ),
    "gateway with an ingress class": (gateway_case() + "  class_name: nginx\n", ["ingress", "class_name: 'nginx' is an IngressClass"]),
    "gateway with ingress controller pods": (
        gateway_case() + "  controller: {namespace: traefik, pod_labels: {app: traefik}}\n",
        ["ingress", "controller: describes the ingress controller's pods", "gateway.data_plane"],
    ),
    "source ranges without a load balancer": (
        "cube:\n  sql_service:\n    type: NodePort\n    load_balancer_source_ranges: [10.0.0.0/8]\n",
        ["cube.sql_service", "load_balancer_source_ranges is only used with type LoadBalancer"],
    ),
    "source range not a cidr": (
        "cube:\n  sql_service:\n    type: LoadBalancer\n    load_balancer_source_ranges: [office]\n",
        ["cube.sql_service.load_balancer_source_ranges.0", "IPv4 CIDR"],
    ),
    "webserver read-only not a bool": ("dagster:\n  webserver_read_only: maybe\n", ["dagster.webserver_read_only", "valid boolean"]),
    # Issue 19 item 4: the API server's address is required for the k8s launcher and never open.
    "kubernetes api open to the world": (
        "dagster:\n  kubernetes_api:\n    cidrs: [0.0.0.0/0]\n",
        ["dagster.kubernetes_api.cidrs", "0.0.0.0/0 opens egress far beyond the API server", "endpointslices"],
    ),
    "k8s launcher without the api server": (
        "profile: cluster\ndagster:\n  run_launcher: k8s\n",
        ["dagster.kubernetes_api.cidrs", "run_launcher k8s needs the API server's address"],
    ),
    "external S3 missing a client's Secret": (
        "minio:\n  external:\n    endpoint: https://s3.example.com\n    region: eu-west-1\n    secrets: {buckets: {name: z}, polaris: {name: a}, dagster_pipeline: {name: b}, dagster_webserver: {name: c}, cubestore: {name: d}, verify: {name: e}}\n",
        ["minio.external.secrets.cube", "Field required"],
    ),
    "external S3 with one shared Secret": (
        "minio:\n  external:\n    endpoint: https://s3.example.com\n    region: eu-west-1\n    secret: {name: s3}\n    " + S3_SECRETS + "\n",
        ["minio.external.secret", "unknown key 'secret'"],
    ),
    "external S3 virtual-hosted style": (
        "minio:\n  external:\n    endpoint: https://s3.example.com\n    region: eu-west-1\n    " + S3_SECRETS + "\n    path_style: false\n",
        ["minio.external.path_style", "path-style"],
    ),
    "persistence and external both": (
        "profile: cluster\nminio:\n  persistence: {size: 10Gi}\n  external:\n    endpoint: https://s3.example.com\n    region: eu-west-1\n    cidr: public\n    " + S3_SECRETS + "\n",
        ["minio", "not both"],
    ),
    "zero replicas": ("polaris:\n  replicas: 0\n", ["polaris.replicas", "at least 1", "PodDisruptionBudget"]),
    "zero webserver replicas": ("dagster:\n  webserver_replicas: 0\n", ["dagster.webserver_replicas", "at least 1"]),
    "ingress without hosts": ("ingress:\n  enabled: true\n  class_name: nginx\n  auth: {type: none}\n", ["ingress", "hosts", "at least one host"]),
    "ingress host not a DNS name": ("ingress:\n  enabled: true\n  auth: {type: none}\n  hosts:\n    dagster: Dagster_UI\n", ["ingress.hosts.dagster", "'Dagster_UI'"]),
    "ingress host for a switched-off UI": ("jaeger:\n  enabled: false\ningress:\n  enabled: true\n  auth: {type: none}\n  hosts:\n    jaeger: traces.example.com\n", ["ingress.hosts.jaeger", "switched off"]),
    "node port without NodePort": ("cube:\n  sql_service:\n    node_port: 31432\n", ["cube.sql_service", "only used with type NodePort"]),
    "unreplicable service": ("jaeger:\n  replicas: 2\n", ["jaeger.replicas", "unknown key"]),
    # Day two (issue 18).
    "external postgres hostname without cidr": (
        "postgres:\n  external:\n    host: db.example.internal\n    databases:\n"
        + "".join(f"      {a}: {{name: {a}, secret: {{name: db}}}}\n" for a in ("dagster", "marquez", "polaris")),
        ["postgres.external", "cidr: required when the host is a DNS name", "'db.example.internal'", "'public'"],
    ),
    "external S3 hostname without cidr": (
        "minio:\n  external:\n    endpoint: https://minio.vpc.internal:9000\n    region: eu-west-1\n    " + S3_SECRETS + "\n",
        ["minio.external", "cidr: required when the host is a DNS name", "'minio.vpc.internal'"],
    ),
    "external postgres sslmode": (
        "postgres:\n  external:\n    host: 10.1.2.3\n    sslmode: verify-everything\n    databases: {}\n",
        ["postgres.external.sslmode", "'disable', 'allow', 'prefer' or 'require'", "'verify-everything'"],
    ),
    "run monitoring start timeout": ("dagster:\n  run_monitoring:\n    start_timeout_seconds: 5\n", ["dagster.run_monitoring.start_timeout_seconds", "greater than or equal to 30"]),
    "run retries out of range": ("dagster:\n  run_retries:\n    max_retries: -1\n", ["dagster.run_retries.max_retries", "greater than or equal to 0"]),
    "backup of an external server": (
        "postgres:\n  backup: {}\n  external:\n    host: 10.1.2.3\n    databases:\n"
        + "".join(f"      {a}: {{name: {a}, secret: {{name: db}}}}\n" for a in ("dagster", "marquez", "polaris")),
        ["postgres", "backup: backs up the in-cluster server only", "managed database"],
    ),
    "backup to an external store without its key": (
        "postgres:\n  backup: {}\nminio:\n  external:\n    endpoint: https://s3.example.com\n    region: eu-west-1\n    cidr: public\n    " + S3_SECRETS + "\n",
        ["minio.external.secrets.backup", "required with postgres.backup", "'floe-backups'"],
    ),
    "backup bucket shared": ("postgres:\n  backup:\n    bucket: warehouse\n", ["postgres.backup.bucket 'warehouse'", "own bucket"]),
    "backup schedule": ("postgres:\n  backup:\n    schedule: daily\n", ["postgres.backup.schedule", "5-field cron", "'daily'"]),
    "backup retention": ("postgres:\n  backup:\n    keep: 0\n", ["postgres.backup.keep", "greater than or equal to 1"]),
}


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_synth(config: Path, out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "main.py"), "--config", str(config), "--out", str(out)],
        cwd=config.parent,
        env={**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def previous_dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A good dist/ from a valid config: every bad run below must leave it byte-for-byte intact."""
    folder = tmp_path_factory.mktemp("bad-config")
    store = write_fake_credentials(folder)
    good = folder / "good.yaml"
    good.write_text(f"credentials:\n  store: {store}\n")
    out = folder / "dist"
    result = run_synth(good, out)
    assert result.returncode == 0, result.stderr
    return out, digest(out)


def run_main(config: Path, out: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> subprocess.CompletedProcess[str]:
    """main.py's ``main()`` in this process, as :func:`run_synth` runs it in its own: same arguments,
    directory and terminal width; its return value is the process' exit code (``sys.exit(main())``).
    A config refused before the synth never imports cdk8s, so this skips only the process start and
    the jsii start main.py begins before reading the config (~0.8 s a case);
    test_main_py_refuses_as_main_does shows the two print the same."""
    from floe.synth import main

    monkeypatch.chdir(config.parent)
    monkeypatch.setenv("COLUMNS", "200")
    capsys.readouterr()
    code = main(["--config", str(config), "--out", str(out)])
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(["main.py"], code, captured.out, captured.err)


def bad_config(out: Path, case: str) -> Path:
    config = out.parent / f"bad-{case.replace(' ', '-')}.yaml"
    config.write_text(CASES[case][0])
    return config


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_config_is_refused_clearly(
    previous_dist: tuple[Path, dict[str, str]], case: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    out, before = previous_dist
    _, expected = CASES[case]
    config = bad_config(out, case)
    result = run_main(config, out, monkeypatch, capsys)
    assert result.returncode == 2, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert str(config) in message or "YAML" in message
    for fragment in expected:
        assert fragment in message, f"{fragment!r} missing from: {message}"
    assert digest(out) == before


@pytest.mark.parametrize("case", ["wrong type", "not yaml", "external postgres missing a database"])
def test_main_py_refuses_as_main_does(
    previous_dist: tuple[Path, dict[str, str]], case: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """``python main.py`` (its own process, node starting beside it) exits 2 with exactly what ``main()``
    prints in-process, and leaves dist/ as it was."""
    out, before = previous_dist
    config = bad_config(out, case)
    process = run_synth(config, out)
    assert process.returncode == 2 and process.stdout == ""
    in_process = run_main(config, out, monkeypatch, capsys)
    assert (in_process.returncode, in_process.stdout, in_process.stderr) == (2, "", process.stderr)
    assert digest(out) == before


def test_env_override_error_names_the_variable(previous_dist: tuple[Path, dict[str, str]]) -> None:
    out, before = previous_dist
    config = out.parent / "good.yaml"
    result = run_synth(config, out, FLOE__POLARIS__PORT="0")
    message = " ".join(result.stderr.split())
    assert result.returncode == 2
    assert "environment variable FLOE__POLARIS__PORT" in message and "polaris.port" in message
    assert digest(out) == before


def test_env_override_applies(tmp_path: Path) -> None:
    from floe.config import load_config

    config = tmp_path / "c.yaml"
    config.write_text("namespace: floe\n")
    loaded = load_config(config, environ={"FLOE__JAEGER__ENABLED": "false", "FLOE__POLARIS__RESOURCES__MEMORY_LIMIT": "2Gi"})
    assert loaded.jaeger.enabled is False and loaded.polaris.resources.memory_limit == "2Gi"
    assert loaded.endpoints.otlp_http_url is None


def test_config_file_from_environment(tmp_path: Path) -> None:
    from floe.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="not found"):
        load_config(None, environ={"FLOE_CONFIG": str(tmp_path / "missing.yaml")})


def test_missing_config_file(previous_dist: tuple[Path, dict[str, str]]) -> None:
    out, before = previous_dist
    result = run_synth(out.parent / "nope.yaml", out)
    assert result.returncode == 2 and "not found" in result.stderr
    assert digest(out) == before
