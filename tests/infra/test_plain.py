"""The plain objects (constructs/k8s.py, constructs/plain.py) are what cdk8s-plus-27 and cdk8s make.

The constructs build their objects with constructs.k8s, cdk8s-plus-27's ``k8s`` names as plain
Python, and constructs.plain renders them and keeps each object's document, which the synth's passes
read (NetworkPolicies, the reconcile CronJob, placement, config checksums). Checked here:

- every object of both profiles, rebuilt from the same arguments with cdk8s-plus-27's generated
  classes, renders to the same JSON, key order included (so every struct and field name the
  constructs use exists there, with that type: its constructors type-check them);
- every kept document equals what cdk8s itself renders for its object, in cdk8s' order;
- the files a PlainApp writes hold the documents cdk8s' own writer writes, quoted where it quotes;
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
from floe.synth import SynthResult, credentials_for, load_documents, load_file
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
    app = plain.PlainApp(outdir=str(folder / "dist"))
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
    # What app.synth() writes (in Python: a PlainApp), read back, is each chart's JSON.
    app = built[0].node.scope
    app.synth()
    assert set(app.written) == {f"{chart.node.id}.k8s.yaml" for chart in built}
    for chart in built:
        written = Path(app.outdir) / f"{chart.node.id}.k8s.yaml"
        assert [d for d in yaml.safe_load_all(written.read_text()) if d] == chart.to_json(), chart.node.id


def test_a_plain_app_writes_what_cdk8s_writes(built: list[cdk8s.Chart]) -> None:
    """The same app written by cdk8s' own writer (App.synth in node: the ``yaml`` package, YAML 1.1):
    the same files, read back as the same documents, and every string cdk8s quotes (so a YAML 1.1
    reader such as kubectl's takes it for a string) quoted or a block in ours too."""
    app = built[0].node.scope
    out = Path(app.outdir)
    app.synth()
    ours = {path.name: path.read_text() for path in out.glob("*.k8s.yaml")}
    for path in out.glob("*.k8s.yaml"):
        path.unlink()
    cdk8s.App.synth(app)  # cdk8s' own synth of the same app
    theirs = {path.name: path.read_text() for path in out.glob("*.k8s.yaml")}
    assert sorted(ours) == sorted(theirs) == sorted(f"{chart.node.id}.k8s.yaml" for chart in built)
    scalars = 0
    for name, text in theirs.items():
        assert list(yaml.safe_load_all(ours[name])) == list(yaml.safe_load_all(text)), name
        for mine, cdk8s_node in zip(_scalars(ours[name]), _scalars(text), strict=True):
            assert mine.value == cdk8s_node.value
            if cdk8s_node.style in ("'", '"'):
                assert mine.style in ("'", '"', "|"), (name, mine.value)
            scalars += 1
    assert scalars > 3000


def _scalars(text: str) -> list[yaml.ScalarNode]:
    """Every scalar of a YAML text's documents as written (with the style it was written in), in order."""
    found: list[yaml.ScalarNode] = []

    def walk(node: yaml.Node) -> None:
        if isinstance(node, yaml.ScalarNode):
            found.append(node)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                walk(key)
                walk(value)

    for document in yaml.compose_all(text, Loader=yaml.SafeLoader):
        walk(document)
    return found


#: Strings a reader may take for something else: YAML 1.1's booleans, nulls, numbers (decimal,
#: octal, hex, binary, sexagesimal, floats, infinities), timestamps, merge and value keys, Go's number
#: syntax (go-yaml parses a plain scalar with strconv: kubectl), indicators, leading and trailing space.
AMBIGUOUS = [
    "yes", "Yes", "YES", "no", "NO", "on", "On", "ON", "off", "Off", "true", "True", "FALSE", "y", "Y", "n", "N",
    "null", "Null", "NULL", "~", "", "0", "12", "-1", "+1", "-0", "00", "0775", "08", "09", "0o17", "0b101",
    "0x1F", "-0x1F", "1_000", "1:20", "190:20:30", "0:0", "-1:20", "1.", ".5", "-.5", "1.5", "1e3", "1E3",
    "1e+3", "1e-3", "1.5e3", "e3", ".inf", "-.Inf", ".NaN", "Infinity", "NaN", "nan", "2001-12-14",
    "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5", "=", "<<", "*a", "&b", "!c", "%d", "@e",
    "`f", "{g", "[h", "'i", '"j', ">k", "|l", "?", "-", "- x", "a: b", "#x", "o #p", "q:", ",n", " lead",
    "trail ", "\tt", "é ü", "1.2.3", "v1", "0xZZ", "1,000", "*/2 * * * *",
    "two\nlines\n", "no final break\nhere", "  indented\nfirst line\n", "kept\n\n", "trailing \nspace\n", "tab\tinside\n",
]


def test_strings_a_reader_could_take_for_something_else_are_quoted() -> None:
    """Each string, written by yaml_text, reads back as itself; where cdk8s' writer quotes it, ours
    quotes it too (or writes a block); Go's number forms are quoted even where cdk8s leaves them."""
    documents = [{"values": AMBIGUOUS, **{value: "key" for value in AMBIGUOUS}}]
    ours = plain.yaml_text(documents)
    assert list(yaml.safe_load_all(ours)) == documents
    theirs = cdk8s.Yaml.stringify(*documents)
    quoted_by_cdk8s = {n.value for n in _scalars(theirs) if n.style in ("'", '"')}
    styles = {n.value: n.style for n in _scalars(ours)}
    for value in AMBIGUOUS:
        if value in quoted_by_cdk8s:
            assert styles[value] in ("'", '"', "|"), value
    for value in ("0o17", "1_000", "0b101", "0x1F", "1e3", "y", "N"):
        assert styles[value] in ("'", '"'), value
    # No line folded (cdk8s writes with lineWidth 0): a long value stays on its line, as given.
    long = "a long description, " * 20 + "and its end"
    assert plain.yaml_text([{"long": long, "list": [long]}]).splitlines() == [f"long: {long}", "list:", f"- {long}"]


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
    """Objects made in node, in a PlainChart, are written after its plain objects, and patched in cdk8s
    too; a PlainApp leaves writing such a chart to cdk8s."""
    app = plain.PlainApp(outdir=str(tmp_path))
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
    assert app.written == {}  # cdk8s wrote the file
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


def test_the_synth_checks_what_its_files_hold(default_synth: SynthResult) -> None:
    """floe/synth.py checks the documents the PlainApp wrote without reading its files back: they are
    what the files hold, file by file, the verification Job's (moved to verify/) included."""
    assert default_synth.file_documents == {
        path.relative_to(default_synth.out_dir).as_posix(): load_file(path) for path in default_synth.files
    }
    assert default_synth.documents == load_documents(default_synth.out_dir)
    assert "verify/verify.k8s.yaml" in default_synth.file_documents
