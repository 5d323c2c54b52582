"""Every GraphQL document the verifier, the docs and the deploy tool's access table send, validated
against the upstream schemas — not against our stand-ins:

* Cube: the schema Cube 1.7.43's own ``makeSchema`` (@cubejs-backend/api-gateway from npm) builds from
  demo/cube/model, validated by graphql-js, the copy Cube's gateway runs (tests/support/cube_graphql.py).
  The previous verifier's camelCase document is refused there exactly as the real server refused it.
* Dagster: dagster-graphql 1.13's own schema (``dagster_graphql.schema.create_schema``), validated by
  graphql-core, which is what the webserver runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import graphql
import pytest

from demo.orchestration import trigger
from demo.verify import checks
from floe.deploy import dagster as deploy_dagster
from floe.deploy import data as deploy_data
from tests.support.cube_graphql import cube_graphql

REPO = Path(__file__).resolve().parents[2]
#: GraphQL bodies of curl examples in the docs: -d '{"query":"..."}'
CURL_BODY = re.compile(r"""-d '(\{"query":.*?\})'""")


def old_verifier_document(cube: str, members: list[str]) -> str:
    """What the verifier sent before issue 14: camelCase fields."""
    def camel(member: str) -> str:
        head, *rest = member.split(".", 1)[1].split("_")
        return head + "".join(w.capitalize() for w in rest)

    return f"{{ cube {{ {cube} {{ {' '.join(camel(m) for m in members)} }} }} }}"


def doc_documents() -> dict[str, str]:
    found = {}
    for path in sorted((REPO / "docs").glob("*.md")) + [REPO / "README.md"]:
        for i, body in enumerate(CURL_BODY.findall(path.read_text())):
            found[f"{path.name}#{i}"] = json.loads(body)["query"]
    return found


def test_the_verifiers_documents_are_valid_for_cubes_own_schema() -> None:
    answer = cube_graphql(checks.CUBE_GRAPHQL_DOCUMENTS)
    assert set(answer.errors) == {"orders", "customers", "products"}
    assert answer.errors == {name: [] for name in answer.errors}


def test_the_old_camel_case_document_is_refused_by_cubes_own_schema() -> None:
    """The must-show of issue 14: the previous verifier's document, sent to the schema Cube builds."""
    old = {cube: old_verifier_document(cube, q["measures"]) for cube, q in checks.CUBE_QUERIES.items()}
    errors = cube_graphql(old).errors
    assert errors["orders"] == ['Cannot query field "totalAmount" on type "OrdersMembers". Did you mean "total_amount"?']
    assert errors["customers"] == ['Cannot query field "totalLifetimeValue" on type "CustomersMembers". '
                                   'Did you mean "total_lifetime_value", "lifetime_value", or "average_lifetime_value"?']
    assert errors["products"] == ['Cannot query field "unitsSold" on type "ProductsMembers". Did you mean "units_sold"?']


def test_the_docs_graphql_examples_are_valid_for_cubes_own_schema(tmp_path: Path) -> None:
    documents = doc_documents()
    assert {"semantic.md#0", "quickstart.md#0"} <= set(documents), documents
    example = next(line for line in access_example_lines(tmp_path) if "/cubejs-api/graphql" in line)
    documents["access-table"] = json.loads(CURL_BODY.search(example)[1])["query"]
    errors = cube_graphql(documents).errors
    assert errors == {name: [] for name in documents}, errors


def access_example_lines(folder: Path) -> list[str]:
    """The access table's lines as `make deploy-local-full` prints them (from a synthesized dist/)."""
    from floe.deploy import access
    from floe.deploy.manifests import Stack
    from floe.deploy.ports import assign_ports
    from tests.infra.conftest import synth

    synth(folder)
    stack = Stack.load(folder / "dist")
    return access.access_lines(stack, assign_ports(stack.port_forwards(), is_free=lambda _p: True))


@pytest.fixture(scope="module")
def dagster_schema() -> graphql.GraphQLSchema:
    from dagster_graphql.schema import create_schema

    return create_schema().graphql_schema


DAGSTER_DOCUMENTS = {
    "verify.WORKSPACE": checks.WORKSPACE,
    "verify.AUTOMATION": checks.AUTOMATION,
    "verify.LAST_RUNS": checks.LAST_RUNS,
    "trigger.LAUNCH_RUN": trigger.LAUNCH_RUN,
    "trigger.RUN_STATUS": trigger.RUN_STATUS,
    "deploy.RECENT_RUNS_QUERY": deploy_dagster.RECENT_RUNS_QUERY,
    **{f"deploy.data.{name}": text for name, text in deploy_data.DOCUMENTS.items()},
}


@pytest.mark.parametrize("name", sorted(DAGSTER_DOCUMENTS))
def test_dagster_documents_are_valid_for_dagster_graphqls_schema(dagster_schema: graphql.GraphQLSchema, name: str) -> None:
    assert graphql.validate(dagster_schema, graphql.parse(DAGSTER_DOCUMENTS[name])) == []


def test_dagster_validation_catches_a_wrong_field(dagster_schema: graphql.GraphQLSchema) -> None:
    wrong = checks.LAST_RUNS.replace("runId status", "runId state")
    [error] = graphql.validate(dagster_schema, graphql.parse(wrong))
    assert error.message.startswith("Cannot query field 'state' on type 'Run'.")
