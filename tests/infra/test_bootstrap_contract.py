"""The bootstrap Jobs and the code they run agree: each Job's environment, resolved from dist/
(Secret values included), validates as the settings class its command reads."""

from __future__ import annotations

import os

import pytest
import yaml

from demo.bootstrap.identities import CLIENTS
from demo.bootstrap.settings import BucketSettings, PolarisInitSettings
from floe.synth import SynthResult
from tests.support.manifests import container, expand_args, find, resolve_env


def bucket_settings(docs: list[dict], monkeypatch: pytest.MonkeyPatch) -> BucketSettings:
    """The bucket Job's settings, read from its resolved env the way the step reads it (nested
    FLOE_S3_IDENTITIES__<CLIENT>__<FIELD> variables included)."""
    env = resolve_env(container(docs, "Job", "floe-minio-buckets"), docs)
    _as_fields(BucketSettings, env)  # no FLOE_ variable the class does not read
    for name in [n for n in os.environ if n.startswith("FLOE_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return BucketSettings(_env_file=None)


def test_bucket_job_env_is_what_the_bucket_step_reads(default_synth: SynthResult, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = default_synth.documents
    c = container(docs, "Job", "floe-minio-buckets")
    assert c["command"] == ["python", "-m", "demo.bootstrap", "buckets"]
    settings = bucket_settings(docs, monkeypatch)
    assert settings.buckets == ("warehouse", "cubestore", "dagster-logs")
    assert settings.s3_endpoint == "http://floe-minio:9000"
    minio = resolve_env(container(docs, "Deployment", "floe-minio"), docs)
    assert settings.s3_admin_access_key_id == minio["MINIO_ROOT_USER"]
    assert settings.s3_admin_secret_access_key.get_secret_value() == minio["MINIO_ROOT_PASSWORD"]
    # One user per client, with exactly the grants of demo/bootstrap/identities.py.
    # (the backup client only with postgres.backup, which the local profile leaves off)
    assert set(settings.s3_identities) == set(CLIENTS) - {"backup"}
    assert settings.s3_identities["cube"].grants == {"warehouse": "read"}
    assert settings.s3_identities["cubestore"].grants == {"cubestore": "readwrite"}
    assert settings.s3_identities["dagster_webserver"].grants == {"dagster-logs": "read"}
    assert settings.s3_identities["dagster_pipeline"].grants == {"warehouse": "readwrite", "dagster-logs": "readwrite"}
    assert settings.policy_name("dagster_pipeline") == "floe-dagster-pipeline"


#: (kind, object, container) -> (client, access-key variable, secret variable): each pod's S3 key is
#: the one its client's MinIO user is created with.
CLIENT_KEYS = {
    ("Deployment", "floe-polaris", None): ("polaris", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    ("Deployment", "floe-dagster-user-code", None): ("dagster_pipeline", "FLOE_S3_ACCESS_KEY_ID", "FLOE_S3_SECRET_ACCESS_KEY"),
    ("Deployment", "floe-dagster-webserver", None): ("dagster_webserver", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    ("Deployment", "floe-dagster-daemon", None): ("dagster_webserver", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    ("Deployment", "floe-cube", None): ("cube", "FLOE_S3_ACCESS_KEY_ID", "FLOE_S3_SECRET_ACCESS_KEY"),
    ("Deployment", "floe-cube-refresh-worker", None): ("cube", "FLOE_S3_ACCESS_KEY_ID", "FLOE_S3_SECRET_ACCESS_KEY"),
    ("Deployment", "floe-cubestore-router", None): ("cubestore", "CUBESTORE_MINIO_ACCESS_KEY_ID", "CUBESTORE_MINIO_SECRET_ACCESS_KEY"),
    ("StatefulSet", "floe-cubestore-worker", None): ("cubestore", "CUBESTORE_MINIO_ACCESS_KEY_ID", "CUBESTORE_MINIO_SECRET_ACCESS_KEY"),
    ("Job", "floe-verify", None): ("verify", "FLOE_S3_ACCESS_KEY_ID", "FLOE_S3_SECRET_ACCESS_KEY"),
}


def test_each_pod_uses_its_clients_key(default_synth: SynthResult, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = default_synth.documents
    identities = bucket_settings(docs, monkeypatch).s3_identities
    for (kind, name, _), (client, key_var, secret_var) in CLIENT_KEYS.items():
        env = resolve_env(container(docs, kind, name), docs, fields={"metadata.name": f"{name}-0"})
        assert env[key_var] == identities[client].access_key_id, (name, client)
        assert env[secret_var] == identities[client].secret_access_key.get_secret_value(), (name, client)
    # The user-code pod's boto3 (run logs) uses the pipeline's key too.
    user_code = resolve_env(container(docs, "Deployment", "floe-dagster-user-code"), docs)
    assert user_code["AWS_ACCESS_KEY_ID"] == identities["dagster_pipeline"].access_key_id


def test_polaris_init_env_is_what_the_polaris_step_reads(default_synth: SynthResult) -> None:
    docs = default_synth.documents
    c = container(docs, "Job", "floe-polaris-init")
    env = resolve_env(c, docs)
    settings = PolarisInitSettings(_env_file=None, **_as_fields(PolarisInitSettings, env))
    assert settings.polaris_url == "http://floe-polaris:8181"
    assert settings.catalog_base_location == "s3://warehouse/"
    assert settings.namespaces == ("raw", "staging", "marts")
    assert settings.writer_client_id != settings.reader_client_id
    # Root credentials: the same values the admin tool bootstraps the realm with.
    bootstrap = container(docs, "Deployment", "floe-polaris", "bootstrap-realm")
    args = expand_args(bootstrap, resolve_env(bootstrap, docs))
    realm, client_id, secret = args[args.index("-c") + 1].split(",")
    assert (realm, client_id, secret) == (
        settings.polaris_realm,
        settings.polaris_root_client_id,
        settings.polaris_root_client_secret.get_secret_value(),
    )
    assert args[:3] == ["bootstrap", "-r", settings.polaris_realm]


def test_s3_keys_stay_out_of_the_catalog(default_synth: SynthResult) -> None:
    """The init Job, which writes the catalog's properties, never sees an S3 key (so none can end
    up in properties served to every client); Polaris itself gets them only as AWS SDK env, since
    with nothing vended it writes table metadata to MinIO itself."""
    docs = default_synth.documents
    minio = resolve_env(container(docs, "Deployment", "floe-minio"), docs)
    buckets = resolve_env(container(docs, "Job", "floe-minio-buckets"), docs)
    keys = {minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"]} | {
        value for name, value in buckets.items() if name.endswith(("__ACCESS_KEY_ID", "__SECRET_ACCESS_KEY"))
    }
    init = resolve_env(container(docs, "Job", "floe-polaris-init"), docs)
    assert not keys & set(init.values()), "the Polaris init Job receives an S3 key"
    polaris = resolve_env(container(docs, "Deployment", "floe-polaris"), docs)
    holding_keys = {name for name, value in polaris.items() if value in keys}
    assert holding_keys == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    # ... and only its own (not the root key).
    assert polaris["AWS_ACCESS_KEY_ID"] == buckets["FLOE_S3_IDENTITIES__POLARIS__ACCESS_KEY_ID"]


def test_polaris_persists_in_postgres(default_synth: SynthResult) -> None:
    docs = default_synth.documents
    env = resolve_env(container(docs, "Deployment", "floe-polaris"), docs)
    assert env["POLARIS_PERSISTENCE_TYPE"] == "relational-jdbc"
    assert env["QUARKUS_DATASOURCE_JDBC_URL"] == "jdbc:postgresql://floe-postgres:5432/polaris"
    assert env["QUARKUS_DATASOURCE_USERNAME"] == "polaris"
    postgres = resolve_env(container(docs, "Deployment", "floe-postgres"), docs)
    assert env["QUARKUS_DATASOURCE_PASSWORD"] == postgres["FLOE_DB_POLARIS_PASSWORD"]
    assert "POLARIS_PERSISTENCE_AUTO_BOOTSTRAP_TYPES" not in env  # not idempotent on JDBC: the admin tool bootstraps


def test_marquez_config_has_no_baked_credentials_or_search(default_synth: SynthResult) -> None:
    docs = default_synth.documents
    config = yaml.safe_load(find(docs, "ConfigMap", "floe-marquez-config")["data"]["marquez.yml"])
    assert "search" not in config
    assert config["db"]["user"] == "${POSTGRES_USER}" and config["db"]["password"] == "${POSTGRES_PASSWORD}"
    assert config["db"]["url"] == "jdbc:postgresql://floe-postgres:5432/marquez"
    env = resolve_env(container(docs, "Deployment", "floe-marquez"), docs)
    assert env["MARQUEZ_CONFIG"] == "/etc/marquez/marquez.yml"
    mounts = {m["mountPath"] for m in container(docs, "Deployment", "floe-marquez")["volumeMounts"]}
    assert "/etc/marquez" in mounts


def test_jaeger_store_is_bounded(default_synth: SynthResult) -> None:
    docs = default_synth.documents
    config = yaml.safe_load(find(docs, "ConfigMap", "floe-jaeger-config")["data"]["config.yaml"])
    backends = config["extensions"]["jaeger_storage"]["backends"]
    assert [b["memory"]["max_traces"] for b in backends.values()] == [2_000]
    assert config["exporters"]["jaeger_storage_exporter"]["trace_storage"] in backends
    c = container(docs, "Deployment", "floe-jaeger")
    assert c["args"] == ["--config", "/etc/jaeger/config.yaml"]
    # Go heap soft limit at 90 % of the container's 512Mi limit.
    assert {"name": "GOMEMLIMIT", "value": "460MiB"} in c["env"]


def test_plan_services_and_ports(default_synth: SynthResult) -> None:
    """The port-forward list of the plan, plus the in-cluster endpoints every client uses."""
    services = {d["metadata"]["name"]: d for d in default_synth.documents if d["kind"] == "Service"}
    expected = {
        "floe-postgres": 5432, "floe-minio": 9000, "floe-minio-console": 9001, "floe-polaris": 8181,
        "floe-jaeger": 16686, "floe-marquez": 5000, "floe-marquez-web": 3000,
    }
    for name, port in expected.items():
        assert port in {p["port"] for p in services[name]["spec"]["ports"]}, name
    forwards = {n: s["metadata"].get("annotations", {}).get("floe.dev/port-forward") for n, s in services.items()}
    assert forwards["floe-marquez"] == "5001" and forwards["floe-minio-console"] == "9001"
    assert forwards["floe-jaeger"] == "16686" and forwards["floe-marquez-web"] == "3001"


def _as_fields(settings_class: type, env: dict[str, str]) -> dict[str, str]:
    """env var -> settings field, failing on a FLOE_ variable the class does not read (a typo)."""
    by_env = {settings_class.env_name(f): f for f in settings_class.model_fields}
    # A nested variable (FLOE_S3_IDENTITIES__CUBE__GRANTS) belongs to its top-level field.
    unknown = [k for k in env if k.startswith("FLOE_") and k.split("__")[0] not in by_env]
    assert not unknown, f"{settings_class.__name__} does not read {unknown}"
    return {by_env[k]: v for k, v in env.items() if k in by_env}
