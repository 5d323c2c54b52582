"""State that survives (issue 11 item 1): the cluster profile's PostgreSQL and MinIO keep their data
on PersistentVolumeClaims, or the stack is wired to existing, external services instead.

- config/cluster.yaml synthesizes PostgreSQL and MinIO as StatefulSets with volumeClaimTemplates
  (typed class and size), and passes every manifest check; the local profile still has no claim.
- The ``volumes`` check allows volumeClaimTemplates only on the StatefulSets the profile gives
  persistent storage; the ``endpoints`` check accepts exactly the declared external endpoints; the
  ``references`` check accepts exactly the declared external Secrets.
- With ``postgres.external`` and ``minio.external`` nothing of the in-cluster services is synthesized
  (no workload, Service, init script or Secret), every client reaches the external endpoint through
  ``config.endpoints``, and the NetworkPolicies open egress to it (its CIDR, on its port) and to
  no in-cluster pod that no longer exists.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from constructs.network import EXTERNAL_SERVICE_PREFIX, NOT_INTERNET, derive
from demo.bootstrap.identities import CLIENTS
from floe.config import StackConfig, load_config
from floe.manifest_checks import CHECKS, check_manifests
from floe.synth import SynthResult, check_options, synthesize
from tests.infra.conftest import REPO, write_fake_credentials
from floe.manifest_checks import pod_template

NAMESPACE = "floe"
DB_HOST, DB_CIDR = "floe-db.example.internal", "10.20.0.0/16"
S3_HOST = "s3.eu-west-1.amazonaws.com"
#: The external-services variant: an existing PostgreSQL in a private range (CIDR declared) and a
#: public S3 endpoint (cidr public: non-private addresses on 443).
EXTERNAL = {
    "postgres": {
        "external": {
            "host": DB_HOST,
            "port": 6432,
            "cidr": DB_CIDR,
            "databases": {
                app: {"name": f"floe_{app}", "secret": {"name": f"ext-db-{app}", "username_key": "user", "password_key": "pass"}}
                for app in ("dagster", "marquez", "polaris")
            },
        }
    },
    "minio": {
        "external": {
            "endpoint": f"https://{S3_HOST}",
            "region": "eu-west-1",
            "cidr": "public",
            # One declared Secret per client (issue 19): the store's root key is never asked for.
            "secrets": {
                client: {"name": f"ext-s3-{client.replace('_', '-')}", "access_key_id_key": "id", "secret_access_key_key": "key"}
                # (no backup: postgres.backup is refused with an external PostgreSQL)
                for client in ("buckets", *CLIENTS) if client != "backup"
            },
        }
    },
}
EXTERNAL_SECRETS = {f"ext-s3-{c.replace('_', '-')}" for c in ("buckets", *CLIENTS) if c != "backup"} | {"ext-db-dagster", "ext-db-marquez", "ext-db-polaris"}


def cluster_config(folder: Path, **sections: dict) -> StackConfig:
    """config/cluster.yaml with fake credentials, and ``sections`` replacing whole sections' keys."""
    data = load_config(REPO / "config" / "cluster.yaml", environ={}).model_dump(mode="json", exclude_unset=False)
    data["credentials"]["store"] = str(write_fake_credentials(folder))
    for section, values in sections.items():
        data[section] = {**data[section], "persistence": None, **values}
    if "external" in sections.get("postgres", {}):
        data["postgres"]["backup"] = None  # backups are the managed database's own
    if "external" in sections.get("minio", {}) and data.get("ingress"):
        data["ingress"]["hosts"]["minio_console"] = None  # no MinIO, no console to expose
    return StackConfig.model_validate(data)


@pytest.fixture(scope="module")
def persistent(tmp_path_factory: pytest.TempPathFactory) -> tuple[StackConfig, SynthResult]:
    folder = tmp_path_factory.mktemp("cluster-persistent")
    config = cluster_config(folder)
    return config, synthesize(config, folder / "dist", root=folder)


@pytest.fixture(scope="module")
def external(tmp_path_factory: pytest.TempPathFactory) -> tuple[StackConfig, SynthResult]:
    folder = tmp_path_factory.mktemp("cluster-external")
    config = cluster_config(folder, **EXTERNAL)
    return config, synthesize(config, folder / "dist", root=folder)


def objects(result: SynthResult, kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in result.documents if d["kind"] == kind}


def containers(doc: dict) -> list[dict]:
    spec = pod_template(doc)["spec"]
    return [*(spec.get("initContainers") or []), *spec["containers"]]


def env_of(result: SynthResult) -> list[tuple[str, dict]]:
    """(owner, env entry) of every container of every pod template."""
    return [
        (f"{d['kind']}/{d['metadata']['name']}", var)
        for d in result.documents
        if d["kind"] in ("Deployment", "StatefulSet", "Job", "CronJob")
        for c in containers(d)
        for var in c.get("env") or []
    ]


# --- the profile ---------------------------------------------------------------------------------


def test_profiles_are_typed(local_profile: StackConfig) -> None:
    assert local_profile.profile == "local"
    assert local_profile.postgres.persistence is None and local_profile.minio.persistence is None
    cluster = load_config(REPO / "config" / "cluster.yaml", environ={})
    assert cluster.profile == "cluster"
    assert cluster.postgres.persistence is not None and cluster.minio.persistence is not None
    # Selected like any other profile: FLOE_CONFIG (or --config).
    assert load_config(None, environ={"FLOE_CONFIG": str(REPO / "config" / "cluster.yaml")}).profile == "cluster"


# --- in-cluster, persistent ----------------------------------------------------------------------


def test_persistent_profile_passes_every_check(persistent: tuple[StackConfig, SynthResult]) -> None:
    config, result = persistent
    options = check_options(config, generated=True)
    assert options["persistent_workloads"] == {"floe-postgres", "floe-minio"}
    assert check_manifests(result.documents, **options) == []


@pytest.mark.parametrize("name, mount", [("floe-postgres", "/var/lib/postgresql"), ("floe-minio", "/data")])
def test_state_lives_on_claims(persistent: tuple[StackConfig, SynthResult], name: str, mount: str) -> None:
    config, result = persistent
    assert name not in objects(result, "Deployment")
    stateful = objects(result, "StatefulSet")[name]
    section = config.postgres if name == "floe-postgres" else config.minio
    [claim] = stateful["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == section.persistence.size
    assert claim["spec"].get("storageClassName") == section.persistence.storage_class
    # Immutable template: nothing in it that an image upgrade would change.
    assert "app.kubernetes.io/version" not in claim["metadata"]["labels"]
    pod = stateful["spec"]["template"]["spec"]
    assert "data" not in {v["name"] for v in pod["volumes"]}  # the claim, not an emptyDir
    assert {"name": "data", "mountPath": mount} in containers(stateful)[-1]["volumeMounts"]
    governing = objects(result, "Service")[stateful["spec"]["serviceName"]]
    assert governing["spec"]["clusterIP"] == "None"
    # Clients keep using the ClusterIP Service of the same name.
    assert objects(result, "Service")[name]["spec"].get("clusterIP") != "None"


def test_local_profile_has_no_claim(default_synth: SynthResult) -> None:
    text = yaml.safe_dump_all(default_synth.documents)
    assert "volumeClaimTemplates" not in text and "PersistentVolumeClaim" not in text and "persistentVolumeClaim" not in text


def test_volumes_check_allows_claims_only_where_the_profile_asks(persistent: tuple[StackConfig, SynthResult]) -> None:
    config, result = persistent
    options = check_options(config, generated=True)
    # The same manifests checked as if the profile asked for nothing: both StatefulSets refused.
    refused = check_manifests(result.documents, **{**options, "persistent_workloads": set(), "only": ["volumes"]})
    assert sorted(v.obj for v in refused) == ["StatefulSet/floe-minio", "StatefulSet/floe-postgres"]
    assert all("profile asks for no persistent storage" in v.message for v in refused)
    # Claims on another StatefulSet (Cube Store's workers) are refused too.
    docs = copy.deepcopy(result.documents)
    worker = next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "floe-cubestore-worker")
    worker["spec"]["volumeClaimTemplates"] = copy.deepcopy(objects(result, "StatefulSet")["floe-postgres"]["spec"]["volumeClaimTemplates"])
    found = check_manifests(docs, **{**options, "only": ["volumes"]})
    assert [v.obj for v in found] == ["StatefulSet/floe-cubestore-worker"]
    # A non-canonical size would show as a diff on every apply; a stand-alone claim stays refused.
    docs = copy.deepcopy(result.documents)
    postgres = next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "floe-postgres")
    postgres["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] = "20480Mi"
    docs.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "x", "namespace": NAMESPACE}})
    messages = [v.message for v in check_manifests(docs, **{**options, "only": ["volumes"]})]
    assert any("storage is '20480Mi'; the API server stores '20Gi'" in m for m in messages), messages
    assert any("PersistentVolumeClaims are not used" in m for m in messages), messages
    # The profile asks, but the StatefulSet lost its claims.
    postgres["spec"].pop("volumeClaimTemplates")
    messages = [v.message for v in check_manifests(docs, **{**options, "only": ["volumes"]})]
    assert any("no StatefulSet of that name has volumeClaimTemplates" in m for m in messages), messages


def test_persistent_profile_keeps_the_in_cluster_edges(persistent: tuple[StackConfig, SynthResult]) -> None:
    config, result = persistent
    edges = {(e.client, e.server, e.port) for e in derive(result.documents, NAMESPACE, config.endpoints.external).edges}
    assert ("floe-polaris", "floe-postgres", 5432) in edges and ("floe-cube", "floe-minio", 9000) in edges
    assert not any(s.startswith(EXTERNAL_SERVICE_PREFIX) for _, s, _ in edges)


# --- external services ---------------------------------------------------------------------------


def test_external_variant_passes_every_check(external: tuple[StackConfig, SynthResult]) -> None:
    config, result = external
    options = check_options(config, generated=True)
    assert options["external_endpoints"] == {(DB_HOST, 6432), (S3_HOST, 443)}
    assert options["external_secrets"] == EXTERNAL_SECRETS
    assert options["persistent_workloads"] == set()
    assert check_manifests(result.documents, **options) == []


def test_no_in_cluster_postgres_or_minio(external: tuple[StackConfig, SynthResult]) -> None:
    _, result = external
    names = {d["metadata"]["name"] for d in result.documents if d["kind"] != "Job"}
    for gone in ("floe-postgres", "floe-postgres-headless", "floe-postgres-init", "floe-minio", "floe-minio-console",
                 "floe-postgres-superuser", "floe-minio-root", "floe-db-dagster", "floe-db-marquez", "floe-db-polaris",
                 *(f"floe-s3-{c.replace('_', '-')}" for c in CLIENTS)):
        assert gone not in names
    text = json.dumps(result.documents)
    # No client names them, and nothing runs the in-cluster init script (it would need superuser).
    assert "floe-postgres" not in text and "floe-minio:" not in text and "floe-minio/" not in text
    assert "docker-entrypoint-initdb.d" not in text
    # The external Secrets are referenced, never synthesized.
    assert not EXTERNAL_SECRETS & set(objects(result, "Secret"))
    # The bucket Job still creates missing buckets on the external store.
    assert any(d["metadata"]["labels"]["app.kubernetes.io/name"] == "floe-minio-buckets" for d in result.documents if d["kind"] == "Job")


def test_every_client_is_wired_to_the_external_endpoints(external: tuple[StackConfig, SynthResult]) -> None:
    config, result = external
    values = {(owner, var["name"]): var.get("value") for owner, var in env_of(result)}
    assert values[("Deployment/floe-polaris", "QUARKUS_DATASOURCE_JDBC_URL")] == f"jdbc:postgresql://{DB_HOST}:6432/floe_polaris"
    assert values[("Deployment/floe-dagster-daemon", "FLOE_DAGSTER_PG_HOST")] == DB_HOST
    assert values[("Deployment/floe-dagster-daemon", "FLOE_DAGSTER_PG_DB")] == "floe_dagster"
    marquez = yaml.safe_load(next(iter(objects(result, "ConfigMap")["floe-marquez-config"]["data"].values())))
    assert marquez["db"]["url"] == f"jdbc:postgresql://{DB_HOST}:6432/floe_marquez"
    assert values[("Deployment/floe-cubestore-router", "CUBESTORE_MINIO_SERVER_ENDPOINT")] == f"https://{S3_HOST}:443"
    assert values[("Deployment/floe-cubestore-router", "CUBESTORE_MINIO_REGION")] == "eu-west-1"
    # Every S3 endpoint and region in the stack is the external one, from config.endpoints.
    s3 = {v for (_, name), v in values.items() if name.endswith(("S3_ENDPOINT", "S3_ENDPOINT_INTERNAL", "MINIO_SERVER_ENDPOINT"))}
    assert s3 == {config.endpoints.s3_url}
    regions = {v for (_, name), v in values.items() if name.endswith(("S3_REGION", "MINIO_REGION", "AWS_REGION"))}
    assert regions == {"eu-west-1"}
    # Credentials come from the declared Secrets and keys only.
    refs = {(var["name"], var["valueFrom"]["secretKeyRef"]["name"], var["valueFrom"]["secretKeyRef"]["key"])
            for _, var in env_of(result) if "secretKeyRef" in (var.get("valueFrom") or {})}
    assert ("QUARKUS_DATASOURCE_USERNAME", "ext-db-polaris", "user") in refs
    assert ("QUARKUS_DATASOURCE_PASSWORD", "ext-db-polaris", "pass") in refs
    assert ("FLOE_DAGSTER_PG_PASSWORD", "ext-db-dagster", "pass") in refs
    # Each S3 client its own declared Secret (issue 19).
    by_object = {(obj, var["name"]): var["valueFrom"]["secretKeyRef"]["name"]
                 for obj, var in env_of(result) if "secretKeyRef" in (var.get("valueFrom") or {})}
    assert by_object[("Deployment/floe-polaris", "AWS_ACCESS_KEY_ID")] == "ext-s3-polaris"
    assert by_object[("Deployment/floe-cube", "FLOE_S3_ACCESS_KEY_ID")] == "ext-s3-cube"
    assert by_object[("Deployment/floe-cubestore-router", "CUBESTORE_MINIO_ACCESS_KEY_ID")] == "ext-s3-cubestore"
    assert by_object[("Deployment/floe-dagster-webserver", "AWS_ACCESS_KEY_ID")] == "ext-s3-dagster-webserver"
    assert by_object[("Deployment/floe-dagster-user-code", "FLOE_S3_ACCESS_KEY_ID")] == "ext-s3-dagster-pipeline"
    buckets_job = next(obj for obj, _ in by_object if obj.startswith("Job/floe-minio-buckets"))
    assert by_object[(buckets_job, "FLOE_S3_ADMIN_ACCESS_KEY_ID")] == "ext-s3-buckets"
    # Users and policies on an external store are its owner's: the bucket step only creates buckets.
    assert not any(name.startswith("FLOE_S3_IDENTITIES") for _, name in by_object)


def test_endpoints_check_accepts_only_declared_external_endpoints(external: tuple[StackConfig, SynthResult]) -> None:
    config, result = external
    options = {**check_options(config, generated=True), "only": ["endpoints"]}
    # Without the declaration, every external address is an error.
    undeclared = check_manifests(result.documents, **{**options, "external_endpoints": set()})
    assert undeclared and all("not a declared external endpoint" in v.message for v in undeclared)
    # A declared host on another port, and a host nobody declared, are errors.
    docs = copy.deepcopy(result.documents)
    polaris = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "floe-polaris")
    url = next(v for v in polaris["spec"]["template"]["spec"]["containers"][0]["env"] if v["name"] == "QUARKUS_DATASOURCE_JDBC_URL")
    url["value"] = f"jdbc:postgresql://{DB_HOST}:5432/floe_polaris"
    daemon = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "floe-dagster-daemon")
    daemon["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "EXTRA_URL", "value": "https://elsewhere.example.com:443"})
    messages = sorted(v.message for v in check_manifests(docs, **options))
    assert messages == [
        "container daemon env EXTRA_URL: elsewhere.example.com:443 is outside the cluster and not a declared external endpoint (postgres.external, minio.external)",
        f"container polaris env QUARKUS_DATASOURCE_JDBC_URL: {DB_HOST}:5432: the external service {DB_HOST} is declared on port(s) [6432], not 5432",
    ], messages


def test_references_check_accepts_only_declared_external_secrets(external: tuple[StackConfig, SynthResult]) -> None:
    config, result = external
    options = {**check_options(config, generated=True), "only": ["references"]}
    missing = check_manifests(result.documents, **{**options, "external_secrets": set()})
    assert {v.message.split("'")[1] for v in missing} == EXTERNAL_SECRETS
    docs = copy.deepcopy(result.documents)
    polaris = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "floe-polaris")
    user = next(v for v in polaris["spec"]["template"]["spec"]["containers"][0]["env"] if v["name"] == "QUARKUS_DATASOURCE_USERNAME")
    user["valueFrom"]["secretKeyRef"]["name"] = "ext-db-typo"
    assert [v.message for v in check_manifests(docs, **options)] == ["Secret 'ext-db-typo' is not in dist/"]


def test_network_policies_reach_the_external_services(external: tuple[StackConfig, SynthResult]) -> None:
    config, result = external
    graph = derive(result.documents, NAMESPACE, config.endpoints.external)
    edges = {(e.client, e.server, e.port) for e in graph.edges}
    pg, s3 = EXTERNAL_SERVICE_PREFIX + "postgres", EXTERNAL_SERVICE_PREFIX + "s3"
    # Every client of the database (the cluster profile's Dagster run pods too, where it has them).
    assert {c for c, s, _ in edges if s == pg} >= {
        "floe-polaris", "floe-marquez", "floe-dagster-daemon", "floe-dagster-webserver", "floe-dagster-user-code", "floe-reconcile",
    }
    assert {c for c, s, _ in edges if s == pg} <= {c for c, s, _ in edges} - {"floe-cube", "floe-cubestore-router", "floe-polaris-init"}
    assert ("floe-cubestore-router", s3, 443) in edges and ("floe-cube", s3, 443) in edges
    # Handed over: Polaris (not its init Job) talks to the store the init Job names.
    assert ("floe-polaris", s3, 443) in edges and not any(c == "floe-polaris-init" and s == s3 for c, s, _ in edges)
    assert {p for _, s, p in edges if s == pg} == {6432} and {p for _, s, p in edges if s == s3} == {443}
    policies = {d["metadata"]["name"]: d for d in result.documents if d["kind"] == "NetworkPolicy"}
    # No policy for, and no rule to, pods that do not exist.
    selected = _names(policies.values())
    assert "floe-polaris" in selected
    assert not {"floe-postgres", "floe-minio"} & (selected | set(policies))
    egress = policies["floe-polaris"]["spec"]["egress"]
    assert {"to": [{"ipBlock": {"cidr": DB_CIDR}}], "ports": [{"port": 6432, "protocol": "TCP"}]} in egress
    assert {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(NOT_INTERNET)}}], "ports": [{"port": 443, "protocol": "TCP"}]} in egress
    assert check_manifests(list(policies.values()), namespace=NAMESPACE, only=["schema", "names", "labels", "namespace"]) == []


def _names(policies) -> set[str]:  # noqa: ANN001 - NetworkPolicy dicts
    """Every app.kubernetes.io/name a policy selects, as its target or as a peer."""
    found: set[str] = set()
    stack = list(policies)
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "app.kubernetes.io/name" in (node.get("matchLabels") or {}):
                found.add(node["matchLabels"]["app.kubernetes.io/name"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def test_an_ip_host_gets_an_exact_rule(tmp_path: Path) -> None:
    config = cluster_config(tmp_path, postgres={"external": {**EXTERNAL["postgres"]["external"], "host": "10.20.30.40", "cidr": None}})
    [endpoint] = config.endpoints.external
    assert (endpoint.host, endpoint.cidr) == ("10.20.30.40", "10.20.30.40/32")


def test_every_check_ran(external: tuple[StackConfig, SynthResult]) -> None:
    """check_options covers the whole signature: every check is run by synth with it."""
    config, result = external
    for name in CHECKS:
        assert check_manifests(result.documents, **{**check_options(config, generated=True), "only": [name]}) == [], name


def test_sslmode_reaches_every_postgres_client(tmp_path: Path) -> None:
    """postgres.external.sslmode: JDBC URLs (Polaris, its admin tool, Marquez) carry it, every libpq
    client (Dagster's processes, probes, run pods, reconcile) gets PGSSLMODE; unset: nothing."""
    pg = {**EXTERNAL["postgres"]["external"], "sslmode": "require"}
    config = cluster_config(tmp_path, postgres={"external": pg}, minio=EXTERNAL["minio"])
    result = synthesize(config, tmp_path / "dist", root=tmp_path)
    docs = result.documents
    jdbc, libpq = set(), set()
    for doc in docs:
        if doc["kind"] not in ("Deployment", "StatefulSet", "Job", "CronJob", "PodTemplate"):
            continue
        spec = pod_template(doc)["spec"]
        for c in spec["containers"] + (spec.get("initContainers") or []):
            env = literal_env(c, docs)
            where = f"{doc['metadata']['name']}/{c['name']}"
            for value in env.values():
                if value.startswith("jdbc:postgresql://"):
                    assert value.endswith("?sslmode=require"), where
                    jdbc.add(where)
            if any(k.startswith("FLOE_DAGSTER_PG_") for k in env):
                assert env.get("PGSSLMODE") == "require", where
                libpq.add(where)
    assert {"floe-polaris/polaris", "floe-polaris/bootstrap-realm"} <= jdbc
    assert {"floe-dagster-daemon/daemon", "floe-dagster-webserver/webserver", "floe-dagster-user-code/user-code", "floe-reconcile/reconcile"} <= libpq
    assert find_config(docs, "floe-marquez-config")["db"]["url"].endswith("/floe_marquez?sslmode=require")
    assert next(d for d in docs if d["metadata"]["name"] == "floe-dagster-run-env")["data"]["PGSSLMODE"] == "require"
    # The endpoints check and the NetworkPolicies still see host and port.
    assert check_manifests(docs, **check_options(config, generated=True), only=["endpoints"]) == []
    (tmp_path / "plain").mkdir()
    plain = cluster_config(tmp_path / "plain", postgres={"external": EXTERNAL["postgres"]["external"]})
    assert plain.endpoints.jdbc_url("polaris") == f"jdbc:postgresql://{DB_HOST}:6432/floe_polaris"


def literal_env(c: dict, docs: list[dict]) -> dict[str, str]:
    """A container's env names, with literal values (envFrom ConfigMaps included); Secret values ''."""
    maps = {d["metadata"]["name"]: d.get("data") or {} for d in docs if d["kind"] == "ConfigMap"}
    env = {k: str(v) for source in c.get("envFrom") or [] for k, v in maps[source["configMapRef"]["name"]].items()}
    env.update({v["name"]: str(v.get("value", "")) for v in c.get("env") or []})
    return env


def find_config(docs: list[dict], name: str) -> dict:
    cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name)
    return yaml.safe_load(next(iter(cm["data"].values())))


def test_public_means_outside_the_private_ranges(tmp_path: Path) -> None:
    # The cluster profile backs PostgreSQL up to the external store: its backup client's Secret too.
    minio = {"external": {**EXTERNAL["minio"]["external"], "secrets": {
        **EXTERNAL["minio"]["external"]["secrets"],
        "backup": {"name": "ext-s3-backup", "access_key_id_key": "id", "secret_access_key_key": "key"},
    }}}
    config = cluster_config(tmp_path, minio=minio)
    [endpoint] = config.endpoints.external
    assert (endpoint.host, endpoint.cidr) == (S3_HOST, None)  # the NOT_INTERNET rule
