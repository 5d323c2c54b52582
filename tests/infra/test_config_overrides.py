"""A partial override changes only the fields it names (issue 16 item 1): every service keeps its own
defaults for the rest, through YAML and through FLOE__ variables, and limit >= request is checked on
the effective values. Config errors name their real source and exit 2 (item 5)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from floe.config import ConfigError, Resources, StackConfig, load_config
from floe.quantities import cpu_millicores, memory_bytes
from tests.infra.conftest import REPO, write_fake_credentials

FIELDS = ("cpu_request", "memory_request", "cpu_limit", "memory_limit")


def resource_paths(model: BaseModel, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Resources]:
    """Every Resources value reachable from the default config, by its path."""
    found: dict[tuple[str, ...], Resources] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, Resources):
            found[prefix + (name,)] = value
        elif isinstance(value, BaseModel):
            found.update(resource_paths(value, prefix + (name,)))
    return found


def resource_fields_declared(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every field typed Resources in the model classes (so a new one cannot escape the walk above)."""
    found: set[tuple[str, ...]] = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if annotation is Resources:
            found.add(prefix + (name,))
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found |= resource_fields_declared(annotation, prefix + (name,))
    return found


DEFAULTS = resource_paths(StackConfig())
CASES = [(path, field) for path in sorted(DEFAULTS) for field in FIELDS]


def _nested(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    for part in reversed(path):
        value = {part: value}
    return value


def _get(config: StackConfig, path: tuple[str, ...]) -> Resources:
    node: Any = config
    for part in path:
        node = getattr(node, part)
    return node


def _new_value(defaults: Resources, field: str) -> str:
    """A value different from the default that keeps limit >= request with the other three defaults."""
    if field == "cpu_limit":
        return f"{cpu_millicores(defaults.cpu_limit) * 2}m"
    if field == "memory_limit":
        return f"{memory_bytes(defaults.memory_limit) * 2 // 2**20}Mi"
    if field == "cpu_request":
        return f"{cpu_millicores(defaults.cpu_limit)}m"
    return f"{memory_bytes(defaults.memory_limit) // 2**20}Mi"


@pytest.fixture
def profile(tmp_path: Path):
    def write(data: dict[str, Any]) -> Path:
        path = tmp_path / "profile.yaml"
        path.write_text(yaml.safe_dump({"namespace": "floe", **data}))
        return path

    return write


def test_the_walk_covers_every_resources_field() -> None:
    assert len(DEFAULTS) >= 15
    assert set(DEFAULTS) == resource_fields_declared(StackConfig)
    # The defaults differ between services: a generic Resources() would be a visible change.
    assert len({r.model_dump_json() for r in DEFAULTS.values()}) > 5


@pytest.mark.parametrize("source", ["yaml", "env"])
@pytest.mark.parametrize(("path", "field"), CASES, ids=[".".join(p) + "." + f for p, f in CASES])
def test_partial_override_changes_only_the_named_field(profile, source: str, path: tuple[str, ...], field: str) -> None:
    defaults = DEFAULTS[path]
    value = _new_value(defaults, field)
    if source == "yaml":
        loaded = load_config(profile(_nested(path, {field: value})), environ={})
    else:
        variable = "FLOE__" + "__".join(p.upper() for p in (*path, field))
        loaded = load_config(profile({}), environ={variable: value})
    got = _get(loaded, path)
    assert getattr(got, field) == value
    for other in FIELDS:
        if other != field:
            assert getattr(got, other) == getattr(defaults, other), f"{'.'.join(path)}.{other} lost its default"
    # Nothing else in the config moved.
    assert {p: r for p, r in resource_paths(loaded).items() if p != path} == {p: r for p, r in DEFAULTS.items() if p != path}


def test_readme_example_keeps_polaris_other_three_values(profile) -> None:
    loaded = load_config(profile({}), environ={"FLOE__POLARIS__RESOURCES__MEMORY_LIMIT": "2Gi"})
    assert loaded.polaris.resources == Resources(cpu_request="250m", memory_request="384Mi", cpu_limit="1", memory_limit="2Gi")
    loaded = load_config(profile({"dagster": {"user_code_resources": {"memory_limit": "3Gi"}}}), environ={})
    assert loaded.dagster.user_code_resources == Resources(cpu_request="250m", memory_request="384Mi", cpu_limit="2", memory_limit="3Gi")


@pytest.mark.parametrize("path", sorted(DEFAULTS), ids=[".".join(p) for p in sorted(DEFAULTS)])
@pytest.mark.parametrize("source", ["yaml", "env"])
def test_limit_is_checked_against_the_services_own_request(profile, source: str, path: tuple[str, ...]) -> None:
    defaults = DEFAULTS[path]
    below = f"{memory_bytes(defaults.memory_request) // 2**20 - 1}Mi"
    variable = "FLOE__" + "__".join(p.upper() for p in (*path, "memory_limit"))
    with pytest.raises(ConfigError) as caught:
        if source == "yaml":
            load_config(profile(_nested(path, {"memory_limit": below})), environ={})
        else:
            load_config(profile({}), environ={variable: below})
    message = str(caught.value)
    assert f"memory_limit {below} is below memory_request {defaults.memory_request}" in message
    assert ".".join(path) in message
    if source == "env":  # the section-level error names the variable, not the file
        assert f"environment variable {variable}: {'.'.join(path)}" in message
    else:
        assert "environment variable" not in message and "profile.yaml: " + ".".join(path) in message


def test_polaris_limit_between_generic_and_own_request(profile) -> None:
    """The issue's case: 300Mi is above the generic 256Mi request but below Polaris' 384Mi."""
    with pytest.raises(ConfigError, match="memory_limit 300Mi is below memory_request 384Mi"):
        load_config(profile({"polaris": {"resources": {"memory_limit": "300Mi"}}}), environ={})
    # Raising the request with it is accepted.
    loaded = load_config(profile({"polaris": {"resources": {"memory_limit": "300Mi", "memory_request": "200Mi"}}}), environ={})
    assert loaded.polaris.resources.cpu_limit == "1"


def test_yaml_and_env_combine_field_by_field(profile) -> None:
    loaded = load_config(profile({"polaris": {"resources": {"cpu_limit": "2"}}}), environ={"FLOE__POLARIS__RESOURCES__MEMORY_LIMIT": "2Gi"})
    assert loaded.polaris.resources == Resources(cpu_request="250m", memory_request="384Mi", cpu_limit="2", memory_limit="2Gi")


def test_plain_mappings_are_replaced_not_merged(profile) -> None:
    """Only sections merge into their defaults; a mapping value (ingress hosts) is what was written."""
    loaded = load_config(profile({"ingress": {"enabled": True, "auth": {"type": "none"}, "hosts": {"dagster": "dagster.example.com"}}}), environ={})
    assert loaded.ingress.hosts.given() == {"dagster": "dagster.example.com"}


# --- item 5: every config error exits 2 with a message naming its real source --------------------

def run_synth(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    # No FLOE_* from the caller, and no JSII_SILENCE_*: main.py must keep jsii quiet by itself.
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("FLOE", "JSII_SILENCE"))}
    return subprocess.run([sys.executable, str(REPO / "main.py"), *args], cwd=cwd, env={**environ, "COLUMNS": "200", **env},
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("make_config", "expected"),
    [
        (lambda d: d, ["is a directory, not a file", "config/local.yaml"]),
        (lambda d: (d / "empty.yaml", (d / "empty.yaml").write_text("")) and d / "empty.yaml", ["is empty", "namespace: floe"]),
        (lambda d: (d / "comments.yaml", (d / "comments.yaml").write_text("# nothing yet\n")) and d / "comments.yaml", ["is empty"]),
        (lambda d: (d / "bin.yaml", (d / "bin.yaml").write_bytes(b"\xff\xfe\x00")) and d / "bin.yaml", ["not UTF-8"]),
    ],
    ids=["directory", "empty", "only comments", "binary"],
)
def test_unreadable_profiles_exit_2_with_a_message(tmp_path: Path, make_config, expected: list[str]) -> None:
    config = make_config(tmp_path)
    out = tmp_path / "dist"
    result = run_synth(["--config", str(config), "--out", str(out)], tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    for fragment in expected:
        assert fragment in message, message
    assert not out.exists()


def test_config_path_from_the_environment_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\(named by FLOE_CONFIG\) is a directory"):
        load_config(None, environ={"FLOE_CONFIG": str(tmp_path)})


def test_env_error_under_a_good_file_names_the_variable_end_to_end(tmp_path: Path) -> None:
    store = write_fake_credentials(tmp_path)
    config = tmp_path / "good.yaml"
    config.write_text(f"credentials:\n  store: {store}\n")
    result = run_synth(["--config", str(config), "--out", str(tmp_path / "dist"), "--quiet"], tmp_path,
                       FLOE__POLARIS__RESOURCES__MEMORY_LIMIT="100Mi")
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "environment variable FLOE__POLARIS__RESOURCES__MEMORY_LIMIT: polaris.resources" in message
    assert "below memory_request 384Mi" in message
    assert f"{config}: polaris" not in message


@pytest.mark.parametrize("quiet", [True, False], ids=["quiet", "summary"])
def test_readme_example_reaches_the_manifest(tmp_path: Path, quiet: bool) -> None:
    """`FLOE__POLARIS__RESOURCES__MEMORY_LIMIT=2Gi python main.py`: Polaris' container in dist/ keeps
    its other three values; no jsii banner even without the variable that silences it."""
    store = write_fake_credentials(tmp_path)
    config = tmp_path / "good.yaml"
    config.write_text(f"credentials:\n  store: {store}\n")
    out = tmp_path / "dist"
    environ = {"FLOE__POLARIS__RESOURCES__MEMORY_LIMIT": "2Gi"}
    result = run_synth(["--config", str(config), "--out", str(out), *(["--quiet"] if quiet else [])], tmp_path, **environ)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # no jsii end-of-life banner, with or without --quiet
    assert (result.stdout == "") if quiet else ("all checks passed" in result.stdout and "end-of-life" not in result.stdout)
    docs = [d for p in sorted(out.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]
    polaris = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("polaris"))
    container = polaris["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {"requests": {"cpu": "250m", "memory": "384Mi"}, "limits": {"cpu": "1", "memory": "2Gi"}}


def test_marts_snapshot_retention_reaches_the_pipeline_env() -> None:
    """dagster.marts_snapshot_retention_s is what the pipeline's LakehouseSettings reads, and both
    default to the same value (the config's default is the one a cluster gets)."""
    from constructs.dagster import lakehouse_env
    from demo.lakehouse.settings import LakehouseSettings

    assert StackConfig().dagster.marts_snapshot_retention_s == LakehouseSettings.model_fields["marts_snapshot_retention_s"].default
    config = StackConfig.model_validate({"dagster": {"marts_snapshot_retention_s": 42}})
    env = {v.name: v.value for v in lakehouse_env(config)}
    assert env[LakehouseSettings.env_name("marts_snapshot_retention_s")] == "42"
