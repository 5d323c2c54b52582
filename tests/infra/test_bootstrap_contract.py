"""The bootstrap Jobs and the code they run agree: each Job's environment, resolved from dist/
(Secret values included), validates as the settings class its command reads."""

from __future__ import annotations

import yaml

from demo.bootstrap.settings import BucketSettings, PolarisInitSettings
from floe.synth import SynthResult
from tests.support.manifests import container, expand_args, find, resolve_env


def test_bucket_job_env_is_what_the_bucket_step_reads(default_synth: SynthResult) -> None:
    docs = default_synth.documents
    c = container(docs, "Job", "floe-minio-buckets")
    assert c["command"] == ["python", "-m", "demo.bootstrap", "buckets"]
    settings = BucketSettings(_env_file=None, **_as_fields(BucketSettings, resolve_env(c, docs)))
    assert settings.buckets == ("warehouse", "cubestore", "dagster-logs")
    assert settings.s3_endpoint == "http://floe-minio:9000"
    minio = resolve_env(container(docs, "Deployment", "floe-minio"), docs)
    assert settings.s3_admin_access_key_id == minio["MINIO_ROOT_USER"]
    assert settings.s3_admin_secret_access_key.get_secret_value() == minio["MINIO_ROOT_PASSWORD"]


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
    keys = {minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"]}
    init = resolve_env(container(docs, "Job", "floe-polaris-init"), docs)
    assert not keys & set(init.values()), "the Polaris init Job receives an S3 key"
    polaris = resolve_env(container(docs, "Deployment", "floe-polaris"), docs)
    holding_keys = {name for name, value in polaris.items() if value in keys}
    assert holding_keys == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


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
    unknown = [k for k in env if k.startswith("FLOE_") and k not in by_env]
    assert not unknown, f"{settings_class.__name__} does not read {unknown}"
    return {by_env[k]: v for k, v in env.items() if k in by_env}
