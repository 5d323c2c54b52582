"""The PostgreSQL connection budget (issue 18 item 6): every client's pool is sized explicitly, and
their sum at the configured replicas fits max_connections with headroom — checked on the config
(floe/connections.py, NullPool clients included) and on the objects ("connection-pools" check)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from floe import connections
from floe.config import StackConfig, load_config
from floe.manifest_checks import check_manifests
from floe.synth import SynthResult, synthesize
from tests.infra.conftest import REPO, write_fake_credentials
from tests.support.manifests import container, find

NAMESPACE = "floe"


def cluster_data() -> dict:
    return load_config(REPO / "config" / "cluster.yaml", environ={}).model_dump(mode="json")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    folder = tmp_path_factory.mktemp("connections")
    data = cluster_data()
    data["credentials"]["store"] = str(write_fake_credentials(folder))
    return synthesize(StackConfig.model_validate(data), folder / "dist", root=folder)


def test_both_profiles_fit_with_headroom() -> None:
    for config in (StackConfig(), StackConfig.model_validate(cluster_data())):
        total = sum(c.total for c in connections.clients(config))
        assert total <= connections.limit(config) == 100 - 3 - 10, connections.table(config)
    cluster = StackConfig.model_validate(cluster_data())
    names = {c.name for c in connections.clients(cluster)}
    assert {"polaris", "marquez", "dagster-webserver", "dagster-daemon", "dagster-user-code", "dagster-run", "reconcile", "postgres-backup"} <= names


def test_the_pools_reach_the_objects(cluster: SynthResult) -> None:
    docs = cluster.documents
    assert container(docs, "StatefulSet", "floe-postgres")["args"] == ["postgres", "-c", "max_connections=100"]
    polaris = {e["name"]: e.get("value") for e in container(docs, "Deployment", "floe-polaris")["env"]}
    assert polaris["QUARKUS_DATASOURCE_JDBC_MAX_SIZE"] == "8"
    marquez = yaml.safe_load(find(docs, "ConfigMap", "floe-marquez-config")["data"]["marquez.yml"])["db"]
    assert (marquez["maxSize"], marquez["minSize"], marquez["initialSize"]) == (8, 2, 2)
    web = container(docs, "Deployment", "floe-dagster-webserver")["command"]
    assert web[web.index("--db-pool-max-overflow") + 1] == "2"
    pools, server_max = connections.pools_in_objects(docs)
    assert server_max == 100 and sorted(size * pods for _, size, pods in pools) == [16, 16, 18]
    assert check_manifests(docs, namespace=NAMESPACE, only=["connection-pools"]) == []


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"marquez": {"replicas": 4, "db_pool_size": 20}}, ["marquez.db_pool_size", "marquez: 20 x 4 = 80"]),
        # Dropwizard's own default (100 per replica), as before issue 18.
        ({"marquez": {"db_pool_size": 100}}, ["marquez: 100 x 2 = 200"]),
        ({"dagster": {"webserver_db_pool_max_overflow": 20}}, ["dagster-webserver: 63 x 2 = 126"]),
        ({"postgres": {"max_connections": 60}}, ["max_connections 60"]),
        ({"postgres": {"connection_headroom": 40}}, ["connection_headroom 40"]),
    ],
)
def test_mutation_a_budget_over_max_connections_is_a_config_error(change: dict, fields: list[str]) -> None:
    data = cluster_data()
    for section, values in change.items():
        data[section] = {**data[section], **values}
    with pytest.raises(ValueError, match="postgres.max_connections: the PostgreSQL clients may open") as error:
        StackConfig.model_validate(data)
    for fragment in fields:
        assert fragment in str(error.value)
    # The remedy the message names works: a larger server.
    data["postgres"]["max_connections"] = 1000
    StackConfig.model_validate(data)


@pytest.mark.parametrize("mutation", ["polaris pool unset", "marquez pool unset", "webserver overflow unset", "marquez pool too large"])
def test_mutation_connection_pools_check(cluster: SynthResult, mutation: str) -> None:
    docs = copy.deepcopy(cluster.documents)
    if mutation == "polaris pool unset":
        c = container(docs, "Deployment", "floe-polaris")
        c["env"] = [e for e in c["env"] if e["name"] != "QUARKUS_DATASOURCE_JDBC_MAX_SIZE"]
        expected = "Deployment/floe-polaris/polaris"
    elif mutation.startswith("marquez"):
        cm = find(docs, "ConfigMap", "floe-marquez-config")
        parsed = yaml.safe_load(cm["data"]["marquez.yml"])
        if mutation == "marquez pool unset":
            del parsed["db"]["maxSize"]
            expected = "Deployment/floe-marquez"
        else:
            parsed["db"]["maxSize"] = 100
            expected = "postgres"
        cm["data"]["marquez.yml"] = yaml.safe_dump(parsed)
    else:
        c = container(docs, "Deployment", "floe-dagster-webserver")
        i = c["command"].index("--db-pool-max-overflow")
        del c["command"][i : i + 2]
        expected = "Deployment/floe-dagster-webserver/webserver"
    found = {v.obj for v in check_manifests(docs, namespace=NAMESPACE, only=["connection-pools"])}
    assert expected in found, found


def test_local_profile_fits_too(tmp_path: Path) -> None:
    config = StackConfig(credentials={"source": "existing"})
    assert connections.budget_problem(config) is None
    assert [c.name for c in connections.clients(config) if c.name.startswith("rolling")] == []  # one replica each
