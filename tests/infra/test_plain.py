"""The plain objects (constructs/k8s.py, constructs/plain.py) are what cdk8s-plus-27 and cdk8s make.

The constructs build their objects with constructs.k8s, cdk8s-plus-27's ``k8s`` names as plain
Python, and constructs.plain renders them and keeps each object's document, which the synth's passes
read (NetworkPolicies, the reconcile CronJob, placement, config checksums). Checked here:

- every object of both profiles, rebuilt from the same arguments with cdk8s-plus-27's generated
  classes, renders to the same JSON, key order included (so every struct and field name the
  constructs use exists there, with that type: its constructors type-check them);
- every kept document equals what cdk8s itself renders for its object, in cdk8s' order;
- the naming rule and the kinds of constructs.k8s against every struct and class of cdk8s-plus-27.

dist/ itself is held by the snapshot tests.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import cdk8s
import pytest
import yaml
from cdk8s_plus_27 import k8s as generated

from constructs import base, k8s, plain
from constructs.charts import build_app
from constructs.dagster import run_pod
from floe.config import StackConfig, load_config
from floe.synth import credentials_for
from tests.infra.conftest import REPO, make_config, write_fake_credentials


def cluster_config(folder: Path) -> StackConfig:
    data = load_config(REPO / "config" / "cluster.yaml", environ={}).model_dump(mode="json")
    data["credentials"]["store"] = str(write_fake_credentials(folder))
    data["placement"] = {
        "image_pull_secrets": ["registry"],
        "default": {"node_selector": {"pool": "floe"}, "tolerations": [{"key": "floe", "operator": "Exists", "effect": "NoSchedule"}]},
        "components": {"cube": {"priority_class_name": "floe-high"}},
    }
    return StackConfig.model_validate(data)


def as_generated(value: Any) -> Any:
    """A constructs.k8s value as the cdk8s-plus-27 object of the same name and fields."""
    if isinstance(value, k8s.Struct):
        return getattr(generated, type(value).__name__)(**{k: as_generated(v) for k, v in value._values.items()})
    if isinstance(value, k8s._Value):
        made = getattr(generated, type(value).__name__)
        return made.from_number(value.value) if isinstance(value.value, (int, float)) else made.from_string(value.value)
    if isinstance(value, dict):
        return {k: as_generated(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_generated(v) for v in value]
    return value


@pytest.fixture(scope="module", params=["local", "cluster-with-placement"])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[cdk8s.Chart]:
    folder = tmp_path_factory.mktemp(request.param)
    config = make_config(folder) if request.param == "local" else cluster_config(folder)
    app = cdk8s.App(outdir=str(folder / "dist"))
    return build_app(app, config, credentials_for(config, folder))


def test_every_object_renders_as_cdk8s_and_cdk8s_plus_27_render_it(built: list[cdk8s.Chart]) -> None:
    """Each object, made again from the same arguments with cdk8s-plus-27's generated class in a
    plain cdk8s chart of the same namespace and labels, with the same patches, is written by cdk8s
    exactly as constructs.plain renders it: same JSON, key order included."""
    app = cdk8s.App(outdir=str(Path(built[0].node.scope.outdir) / "regenerated"))
    checked = 0
    for chart in built:
        twin = cdk8s.Chart(app, chart.node.id, namespace=chart.namespace, labels=chart.labels, disable_resource_name_hashes=True)
        for obj, _ in plain.objects(chart):
            entry = getattr(obj, plain._ENTRY)
            made = getattr(generated, _class_name(entry))(twin, obj.node.path.replace("/", "-"), **{k: as_generated(v) for k, v in entry.props.items()})
            for op, path, value in entry.patches:
                made.add_json_patch(getattr(cdk8s.JsonPatch, op)(path, value))
            assert json.dumps(plain.render(obj, chart)) == json.dumps(made.to_json()), obj.node.path
            checked += 1
    assert checked > 60


def _class_name(entry: Any) -> str:
    return next(name for name, (version, kind) in k8s.KINDS.items() if (version, kind) == (entry.body["apiVersion"], entry.body["kind"]))


def test_every_kept_document_is_the_rendered_object(built: list[cdk8s.Chart]) -> None:
    """What the passes read (plain.objects) is what is written (the chart's JSON), in the same order,
    and every object of the stack is a plain one (none lives in node, none is read back from it)."""
    for chart in built:
        found = plain.objects(chart)
        assert [d for _, d in found] == chart.to_json(), chart.node.id
        assert found and all(isinstance(obj, plain.PlainApiObject) for obj, _ in found)
        assert [node.node.path for node in chart.node.find_all()] == [chart.node.path], "constructs in node"
    # What app.synth() writes, read back, is each chart's JSON.
    app = built[0].node.scope
    app.synth()
    for chart in built:
        written = Path(app.outdir) / f"{chart.node.id}.k8s.yaml"
        assert [d for d in yaml.safe_load_all(written.read_text()) if d] == chart.to_json(), chart.node.id


def test_structs_render_as_the_generated_manifest_does() -> None:
    """Field names (clusterIP, not clusterIp), field order, value objects, maps in their order:
    byte for byte what the generated ``manifest()`` gives (it is embedded in ConfigMaps as YAML)."""
    template = run_pod(StackConfig())
    expected = generated.KubePodTemplate.manifest(template=as_generated(template))["template"]
    assert json.dumps(plain.to_json(template)) == json.dumps(expected)
    service = k8s.ServiceSpec(
        cluster_ip="None",
        selector={"b": "2", "a": "1"},
        ports=[k8s.ServicePort(port=80, target_port=base.int_or_string(8080), name="http")],
    )
    assert json.dumps(plain.to_json(service)) == json.dumps(generated.KubeService.manifest(spec=as_generated(service))["spec"])


def test_the_field_name_rule_holds_for_every_generated_struct() -> None:
    """constructs.k8s.field_name against the Kubernetes name in each generated property's docstring."""
    schema_field = re.compile(r":schema: \S+#(\S+)")
    checked = 0
    for name, cls in vars(generated).items():
        mapping = getattr(cls, "__jsii_name_mapping__", None) if inspect.isclass(cls) else None
        if mapping is None or name.startswith("JsonSchemaProps"):
            continue  # JSONSchemaProps ($ref, x-kubernetes-*): not supported by constructs.k8s
        for python_name, jsii_name in mapping.items():
            found = schema_field.search(getattr(cls, python_name).__doc__ or "")
            assert k8s.field_name(python_name) == (found.group(1) if found else jsii_name), f"{name}.{python_name}"
            checked += 1
    assert checked > 1000


@pytest.mark.parametrize("name", sorted(k8s.KINDS))
def test_kinds_are_the_generated_classes(name: str) -> None:
    gvk = getattr(generated, name).GVK
    assert k8s.KINDS[name] == (gvk.api_version, gvk.kind)


def test_an_object_made_elsewhere_is_read_from_cdk8s(tmp_path: Path) -> None:
    """Objects made in node, in a PlainChart, are written after its plain objects, and patched in cdk8s too."""
    app = cdk8s.App(outdir=str(tmp_path))
    chart = plain.PlainChart(app, "chart")
    plain.api_object(k8s.KubeConfigMap, chart, "kept", metadata=k8s.ObjectMeta(name="kept"), data={"a": "1"})
    generated.KubeConfigMap(chart, "direct", metadata=generated.ObjectMeta(name="direct"), data={"b": "2"})
    cdk8s.ApiObject(chart, "raw", api_version="v1", kind="ConfigMap", metadata=cdk8s.ApiObjectMetadata(name="raw"))
    plain.api_object(k8s.KubeConfigMap, plain.PlainConstruct(chart, "group"), "later", metadata=k8s.ObjectMeta(name="later"))
    found = plain.objects(chart)
    assert [d["metadata"]["name"] for _, d in found] == ["kept", "later", "direct", "raw"]

    def written() -> list[dict]:
        app.synth()
        return [d for d in yaml.safe_load_all((tmp_path / "chart.k8s.yaml").read_text()) if d]

    assert [d for _, d in found] == written()
    # A patch reaches the kept document, and cdk8s too for an object cdk8s renders.
    plain.patch(found[0][0], ("add", "/data/c", "3"), ("replace", "/metadata/name", "renamed"))
    plain.patch(found[2][0], ("add", "/data/d", "4"))
    assert [d for _, d in plain.objects(chart)] == written()
    assert written()[0] == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "renamed"}, "data": {"a": "1", "c": "3"}}
    assert found[2][0].to_json()["data"] == {"b": "2", "d": "4"}


def test_a_plain_object_needs_a_plain_scope_and_a_name() -> None:
    """It lives in the Python tree under a PlainChart; cdk8s' own charts cannot hold it, and
    cdk8s' derived name (from the construct path) is not reproduced."""
    with pytest.raises(TypeError, match="PlainChart or PlainConstruct"):
        plain.api_object(k8s.KubeConfigMap, cdk8s.Testing.chart(), "kept", metadata=k8s.ObjectMeta(name="kept"))
    chart = plain.PlainChart(cdk8s.Testing.app(), "chart")
    with pytest.raises(ValueError, match="metadata.name is required"):
        plain.api_object(k8s.KubeConfigMap, chart, "unnamed", data={"a": "1"})
    plain.PlainConstruct(chart, "group")
    with pytest.raises(ValueError, match="already a construct named 'group'"):
        plain.PlainConstruct(chart, "group")


def test_a_prepared_chart_is_rendered_again_after_a_change(tmp_path: Path) -> None:
    app = cdk8s.App(outdir=str(tmp_path))
    chart = plain.PlainChart(app, "chart")
    made = plain.api_object(k8s.KubeConfigMap, chart, "map", metadata=k8s.ObjectMeta(name="map"), data={"a": "1"})
    plain.prepare([chart])
    plain.patch(made, ("add", "/data/b", "2"))
    assert chart.to_json()[0]["data"] == {"a": "1", "b": "2"}
