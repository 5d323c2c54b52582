"""The Polaris init step against the SDK-validating fake Polaris (no real Polaris runs here)."""

from __future__ import annotations

import json
import threading

import pytest
from apache_polaris.sdk.management.models import CatalogPrivilege, CreateCatalogRequest
from bootstrap_support import (
    READER_ID,
    READER_SECRET,
    REALM,
    ROOT_ID,
    ROOT_SECRET,
    WRITER_ID,
    WRITER_SECRET,
    Progress,
    free_port,
    polaris_settings,
)
from fake_polaris import FakePolaris, Invalid, validate_body

from demo.bootstrap.polaris import READER_PRIVILEGES, init_polaris
from demo.bootstrap.waiting import BootstrapError

WRITE_PRIVILEGES = {
    p.value
    for p in CatalogPrivilege
    if any(word in p.value for word in ("CREATE", "DROP", "WRITE", "MANAGE", "ATTACH", "DETACH", "ASSIGN", "UPGRADE",
                                        "ADD_", "SET_", "REMOVE"))
}


def outcomes(steps) -> dict[tuple[str, str], str]:  # noqa: ANN001
    return {(step.kind, step.name): step.outcome for step in steps}


def test_first_run_creates_everything_in_order(fake_polaris: FakePolaris) -> None:
    steps = init_polaris(polaris_settings(fake_polaris.url), report=lambda _: None)

    assert fake_polaris.errors == []
    assert [step.kind for step in steps][:5] == ["catalog", "namespace", "namespace", "namespace", "principal"]
    kinds_in_order = list(dict.fromkeys(step.kind for step in steps))
    assert kinds_in_order == [
        "catalog", "namespace", "principal", "credentials of", "principal role", "catalog role", "grant", "assignment",
    ]
    assert {step.outcome for step in steps} == {"created", "reset", "added"}

    state = fake_polaris.state
    assert state.namespaces == {("floe", ("raw",)), ("floe", ("staging",)), ("floe", ("marts",))}
    # Credentials end equal to the Secret's, and they authenticate.
    assert state.principals["floe_writer"] == {"clientId": WRITER_ID, "clientSecret": WRITER_SECRET}
    assert state.principals["floe_reader"] == {"clientId": READER_ID, "clientSecret": READER_SECRET}
    assert fake_polaris.token_for(WRITER_ID, WRITER_SECRET) == 200
    assert fake_polaris.token_for(READER_ID, READER_SECRET) == 200
    # Least privilege: the writer manages content; the reader only reads.
    writer_grants = {g["privilege"] for g in state.grants[("floe", "floe_writer")]}
    reader_grants = {g["privilege"] for g in state.grants[("floe", "floe_reader")]}
    assert writer_grants == {"CATALOG_MANAGE_CONTENT"}
    assert reader_grants == {p.value for p in READER_PRIVILEGES}
    assert not reader_grants & WRITE_PRIVILEGES
    assert all(g["type"] == "catalog" for g in state.grants[("floe", "floe_reader")])
    assert state.catalog_roles_of_principal_role == {
        ("floe_writer", "floe"): {"floe_writer"},
        ("floe_reader", "floe"): {"floe_reader"},
    }
    assert state.principal_roles_of_principal == {"floe_writer": {"floe_writer"}, "floe_reader": {"floe_reader"}}


def test_catalog_has_no_keys_and_no_credential_vending(fake_polaris: FakePolaris) -> None:
    init_polaris(polaris_settings(fake_polaris.url), report=lambda _: None)

    catalog = fake_polaris.state.catalogs["floe"]
    assert catalog["properties"] == {"default-base-location": "s3://warehouse/"}
    assert catalog["storageConfigInfo"] == {
        "storageType": "S3",
        "allowedLocations": ["s3://warehouse/"],
        "endpoint": "http://localhost:9000",
        "endpointInternal": "http://floe-minio:9000",
        "pathStyleAccess": True,
        "region": "us-east-1",
        "stsUnavailable": True,
    }
    text = json.dumps(catalog).lower()
    for leak in ("access-key", "secret", "s3.access", WRITER_SECRET, READER_SECRET, ROOT_SECRET):
        assert leak.lower() not in text


def test_second_run_changes_nothing_and_never_resets(fake_polaris: FakePolaris) -> None:
    settings = polaris_settings(fake_polaris.url)
    init_polaris(settings, report=lambda _: None)
    before = json.dumps(fake_polaris.state.principals, sort_keys=True)
    first_run_calls = len(fake_polaris.calls)

    lines: list[str] = []
    steps = init_polaris(settings, report=lines.append)

    second = fake_polaris.calls[first_run_calls:]
    assert [c for c in second if c.mutating and c.status != 409] == []
    assert not any(c.path.endswith("/reset") for c in second)
    assert {step.outcome for step in steps} == {"exists", "present", "unchanged"}
    assert json.dumps(fake_polaris.state.principals, sort_keys=True) == before
    assert lines[-1].startswith("Polaris init done: 0 change(s)")
    assert fake_polaris.errors == []


def test_rerun_resets_only_credentials_that_do_not_work(fake_polaris: FakePolaris) -> None:
    settings = polaris_settings(fake_polaris.url)
    init_polaris(settings, report=lambda _: None)
    # As if the first run crashed between create and reset: Polaris holds generated credentials.
    fake_polaris.state.principals["floe_writer"] = {"clientId": "1111111111111111", "clientSecret": "2" * 32}
    first_run_calls = len(fake_polaris.calls)

    steps = outcomes(init_polaris(settings, report=lambda _: None))

    resets = [c.path for c in fake_polaris.calls[first_run_calls:] if c.path.endswith("/reset")]
    assert resets == ["/api/management/v1/principals/floe_writer/reset"]
    assert steps[("credentials of", "floe_writer")] == "reset"
    assert steps[("credentials of", "floe_reader")] == "unchanged"
    assert fake_polaris.state.principals["floe_writer"] == {"clientId": WRITER_ID, "clientSecret": WRITER_SECRET}


def test_waits_for_polaris_to_listen_then_succeeds(progress: Progress) -> None:
    port = free_port()
    settings = polaris_settings(f"http://127.0.0.1:{port}")
    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["steps"] = init_polaris(settings, report=progress)
        except Exception as exc:  # noqa: BLE001 - handed to the test thread
            result["error"] = exc

    job = threading.Thread(target=run)
    job.start()
    progress.wait_for(lambda line: line.startswith("waiting for Polaris") and "ConnectError" in line)
    fake = FakePolaris(realm=REALM, root_client_id=ROOT_ID, root_client_secret=ROOT_SECRET, port=port).start()
    try:
        job.join(timeout=30)
        assert "error" not in result, result.get("error")
        assert fake.state.principals["floe_reader"]["clientId"] == READER_ID
        assert any(line.startswith(f"Polaris at http://127.0.0.1:{port}") and "is up" in line
                   for line in progress.lines)
    finally:
        fake.stop()


def test_retries_while_polaris_answers_503(fake_polaris: FakePolaris, progress: Progress) -> None:
    fake_polaris.unavailable_requests = 3

    init_polaris(polaris_settings(fake_polaris.url), report=progress)

    waits = [line for line in progress.lines if line.startswith("waiting for Polaris")]
    assert len(waits) == 3 and all("HTTP 503" in line for line in waits)
    assert "floe" in fake_polaris.state.catalogs


def test_wrong_root_secret_times_out_with_what_to_do(fake_polaris: FakePolaris) -> None:
    settings = polaris_settings(
        fake_polaris.url, polaris_root_client_secret="not-the-secret", wait_timeout_seconds=0.5
    )
    with pytest.raises(BootstrapError) as failure:
        init_polaris(settings, report=lambda _: None)
    message = str(failure.value)
    assert "root credentials rejected" in message
    assert "POLARIS_BOOTSTRAP_CREDENTIALS" in message and "FLOE_POLARIS_ROOT_CLIENT_SECRET" in message
    assert fake_polaris.mutations() == []


def test_polaris_refusing_custom_credentials_is_reported(fake_polaris: FakePolaris) -> None:
    """A Polaris whose reset ignores the requested values must not pass as success."""
    original = fake_polaris._reset

    def reset_ignoring_request(body, name):  # noqa: ANN001, ANN202
        status, payload = original({}, name)  # as if no clientId/clientSecret were sent
        return status, payload

    fake_polaris._reset = reset_ignoring_request  # type: ignore[method-assign]
    with pytest.raises(BootstrapError, match="did not take the Secret's credentials"):
        init_polaris(polaris_settings(fake_polaris.url), report=lambda _: None)


def test_catalog_drift_is_reported_not_overwritten(fake_polaris: FakePolaris) -> None:
    init_polaris(polaris_settings(fake_polaris.url), report=lambda _: None)
    lines: list[str] = []

    init_polaris(polaris_settings(fake_polaris.url, s3_endpoint="http://elsewhere:9000"), report=lines.append)

    warning = next(line for line in lines if line.startswith("WARNING: catalog floe"))
    assert "endpoint" in warning and "http://elsewhere:9000" in warning
    assert fake_polaris.state.catalogs["floe"]["storageConfigInfo"]["endpoint"] == "http://localhost:9000"


def test_fake_rejects_malformed_bodies() -> None:
    """The fake is only worth something if it can fail: unknown fields and wrong types are refused."""
    good = {
        "catalog": {
            "type": "INTERNAL",
            "name": "floe",
            "properties": {"default-base-location": "s3://warehouse/"},
            "storageConfigInfo": {"storageType": "S3", "allowedLocations": ["s3://warehouse/"]},
        }
    }
    validate_body(CreateCatalogRequest, good)
    unknown_field = json.loads(json.dumps(good))
    unknown_field["catalog"]["storageConfigInfo"]["accessKeyId"] = "AKIA..."
    wrong_type = json.loads(json.dumps(good))
    wrong_type["catalog"]["storageConfigInfo"]["stsUnavailable"] = "yes"
    bad_storage = json.loads(json.dumps(good))
    bad_storage["catalog"]["storageConfigInfo"]["storageType"] = "MINIO"
    missing = {"catalog": {"type": "INTERNAL", "name": "floe"}}
    for body in (unknown_field, wrong_type, bad_storage, missing, {"catalogue": good["catalog"]}):
        with pytest.raises(Invalid):
            validate_body(CreateCatalogRequest, body)
