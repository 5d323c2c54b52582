"""The stack's Kubernetes objects, kept and rendered in Python: the synth's fast path.

Every jsii call is a round trip to the node process that runs cdk8s, and node re-renders every
object it holds. So the stack's objects and the constructs that group them live here, in Python,
not in node: a :class:`PlainConstruct` (Postgres, Dagster, ...) and a :class:`PlainApiObject` (made
by :func:`api_object` from a :mod:`constructs.k8s` kind: cdk8s-plus-27's ``k8s`` names as plain
Python) are plain Python objects in a tree of their own under each :class:`PlainChart`, which is a
real cdk8s ``Chart``. cdk8s adds nothing to them that the stack uses (every object is named, name
hashes are off, no value is a token), so node never sees them one by one: when ``app.synth()``
writes a chart, it calls the chart's ``to_json`` back once, and gets every document rendered here
(:func:`render`) as the generated ``toJson_*`` functions render them (Kubernetes' field names such
as ``clusterIP``, fields in schema order, ``IntOrString``/``Quantity`` as their values), with the
JSON patches applied to it later (:func:`patch`).

A :class:`PlainApp` writes the files itself when every chart holds only plain objects (the stack's
case): node would turn each chart's JSON into YAML with the ``yaml`` package, after jsii had carried
every value of it across and walked it again, a quarter of a second of node for nothing cdk8s adds.
:func:`yaml_text` writes the same documents with PyYAML's libyaml emitter (YAML 1.1, as cdk8s writes
it); the file names are cdk8s' own. An app with anything made in node is written by cdk8s, as before.
tests/infra/test_plain.py compares both writers' files, document by document, for both profiles.

The passes that read the finished objects (the NetworkPolicies, the reconcile CronJob, placement,
config checksums) read these documents (:func:`objects`, :func:`documents`).
tests/infra/test_plain.py makes every object of both profiles again with cdk8s-plus-27 in a
plain cdk8s chart and compares what cdk8s writes with :func:`render`, byte for byte.

An object made in node (a raw ``cdk8s.ApiObject``, a generated ``cdk8s_plus_27.k8s`` class, an L2
construct, an ``Include``), in a chart or in a cdk8s ``Construct`` of it, is still found and read
from node, one ``to_json`` each, and written after the chart's plain objects: correct, just not fast.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cdk8s import ApiObject, App, Chart, JsonPatch, Names

from constructs import Construct

from constructs import k8s

#: The Kubernetes field a generated property stands for, from its docstring
#: (``:schema: io.k8s.api.core.v1.ServiceSpec#clusterIP``): jsii's own name is camel-cased
#: (``clusterIp``), and the generated ``toJson_*`` functions write the schema's name.
_SCHEMA_FIELD = re.compile(r":schema: \S+#(\S+)")


@functools.cache
def _field_names(struct_type: type) -> tuple[tuple[str, str], ...]:
    """(python name, Kubernetes name) of a generated struct's fields, in the order ``toJson_*`` writes
    them: ``metadata`` first, then by name (the schema's order: its properties are sorted)."""
    names = []
    for python_name, jsii_name in struct_type.__jsii_name_mapping__.items():
        doc = getattr(struct_type, python_name).__doc__
        if doc is None:
            raise RuntimeError(
                f"{struct_type.__name__}.{python_name} has no docstring (python -OO?): the Kubernetes field name comes from it"
            )
        found = _SCHEMA_FIELD.search(doc)
        names.append((python_name, found.group(1) if found else jsii_name))
    return tuple(sorted(names, key=lambda n: (n[1] != "metadata", n[1])))


@functools.cache
def _struct_fields(struct_type: type, python_names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """The fields set on a :class:`constructs.k8s.Struct`, in the order ``toJson_*`` writes them."""
    names = [(py, k8s.field_name(py)) for py in python_names]
    first = "metadata" if struct_type.__name__.startswith("Kube") else None  # KubeXxxProps: metadata first
    return tuple(sorted(names, key=lambda n: (n[1] != first, n[1])))


def to_json(value: Any) -> Any:
    """``value`` as cdk8s renders it: structs by their Kubernetes field names with unset fields left
    out, maps and lists item by item (in their order), value objects as their value."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, k8s.Struct):
        return {name: to_json(value._values[py]) for py, name in _struct_fields(type(value), tuple(value._values))}
    if isinstance(value, k8s._Value):
        return value.value
    struct_type = type(value)
    if hasattr(struct_type, "__jsii_name_mapping__"):
        values = value._values
        return {name: to_json(values[py]) for py, name in _field_names(struct_type) if values.get(py) is not None}
    if hasattr(value, "__jsii_ref__") and hasattr(struct_type, "value"):
        return value.value  # a jsii value object (cdk8s_plus_27.k8s.Quantity): one round trip
    raise TypeError(f"cannot render {struct_type.__name__} as Kubernetes JSON")


@functools.cache
def _group_version_kind(kind_type: type) -> tuple[str, str]:
    gvk = kind_type.GVK  # one round trip per generated class
    return gvk.api_version, gvk.kind


@functools.cache
def _props_type(kind_type: type) -> type:
    """``KubeDeploymentProps`` for ``KubeDeployment``: the struct of its fields, with their names."""
    return getattr(sys.modules[kind_type.__module__], f"{kind_type.__name__}Props")


@dataclass
class _Entry:
    api_object: Any  # a PlainApiObject, or an ApiObject made in node
    body: dict[str, Any]  # apiVersion, kind, metadata (as given) and the rest, rendered
    #: A PlainApiObject (made from a constructs.k8s kind): rendered from this document.
    own: bool = False
    #: The keyword arguments it was made with (tests/infra/test_plain.py renders them with cdk8s-plus-27).
    props: dict[str, Any] = field(default_factory=dict)
    #: Its chart, once :func:`objects` has seen it (else looked up when needed).
    chart: Chart | None = None
    patches: list[tuple[str, str, Any]] = field(default_factory=list)


#: The attribute holding an object's entry (on the Python side of the object: it lives as long as it).
_ENTRY = "_floe_plain_entry"


class PlainNode:
    """A plain construct's place in the tree, what cdk8s' ``node`` gives: id, scope, path, children."""

    def __init__(self, host: Any, scope: Any, id: str) -> None:
        self.host, self.scope, self.id = host, scope, id
        self.children: list[Any] = []

    @property
    def path(self) -> str:
        return f"{self.scope.node.path}/{self.id}"

    def find_all(self) -> list[Any]:
        """This construct and everything under it, parents first, children in the order they were added."""
        found = [self.host]
        for child in self.children:
            found.extend(child.node.find_all() if isinstance(child, PlainConstruct) else [child])
        return found


def _attach(host: Any, scope: Any, id: str) -> tuple[PlainNode, Chart]:
    """Add ``host`` to the plain tree under ``scope`` (a PlainChart or a PlainConstruct); its node and chart."""
    if isinstance(scope, PlainConstruct):
        siblings, chart = scope.node.children, scope.chart
    else:
        siblings = getattr(scope, "_floe_children", None)
        if siblings is None:
            raise TypeError(
                f"{type(host).__name__} {id!r}: its scope must be a constructs.plain.PlainChart or PlainConstruct "
                f"(it lives in Python, beside the cdk8s tree), not {type(scope).__name__}"
            )
        chart = scope
    if any(sibling.node.id == id for sibling in siblings):
        raise ValueError(f"there is already a construct named {id!r} in {scope.node.path}")
    siblings.append(host)
    return PlainNode(host, scope, id), chart


class PlainConstruct:
    """A construct that only groups objects (Postgres, Dagster, ...): Python only, in the plain tree
    under a :class:`PlainChart` (no node object: it would only cost round trips)."""

    def __init__(self, scope: Scope, id: str) -> None:
        self.node, self.chart = _attach(self, scope, id)


class PlainApiObject:
    """A Kubernetes object of a :class:`PlainChart`, kept and rendered here (:func:`render`): node
    never sees it but in its chart's JSON. Patch it with :func:`patch` (recorded in its document)."""

    def __init__(self, scope: Scope, id: str, entry_of: Any) -> None:
        self.node, self.chart = _attach(self, scope, id)
        setattr(self, _ENTRY, entry_of(self))

    @property
    def api_version(self) -> str:
        return getattr(self, _ENTRY).body["apiVersion"]

    @property
    def kind(self) -> str:
        return getattr(self, _ENTRY).body["kind"]

    @property
    def name(self) -> str:
        return _document(getattr(self, _ENTRY), self.chart)["metadata"]["name"]

    def to_json(self) -> Any:
        return render(self, self.chart)


class PlainChart(Chart):
    """A ``cdk8s.Chart`` whose JSON (what ``app.synth()`` writes) is rendered here: the objects of
    its plain tree from their documents, then any object made in node, by cdk8s. One call back into
    Python per chart, where cdk8s would render (resolve, sort, patch) each object in node.
    :func:`prepare` renders the charts ahead of ``app.synth()`` (build_app calls it last)."""

    def __init__(self, scope: Construct, id: str, **props: Any) -> None:
        super().__init__(scope, id, **props)
        #: The plain tree's top: PlainConstructs and PlainApiObjects, in the order they were added.
        self._floe_children: list[Any] = []
        #: The chart's node in cdk8s, kept: each read of ``.node`` is a round trip (objects() needs it).
        self._floe_node = self.node

    def to_json(self) -> list[Any]:
        prepared = getattr(self, "_floe_prepared", None)
        if prepared is not None and prepared[0] == _generation[0]:
            return prepared[1]
        return self.render()

    def render(self) -> list[Any]:
        return [_ordered(doc) if _own(obj) else doc for obj, doc in objects(self)]

    def plain_only(self) -> bool:
        """Nothing of the chart lives in node (one round trip): its plain tree is all it holds."""
        return len(self._floe_node.find_all()) == 1


#: What a plain construct or object is made in.
Scope = PlainChart | PlainConstruct


#: cdk8s' default file extension (AppProps.outputFileExtension), for the files a PlainApp writes.
FILE_EXTENSION = ".k8s.yaml"


class PlainApp(App):
    """A cdk8s ``App`` (one file per chart, cdk8s' default) whose :meth:`synth` writes the files of its
    :class:`PlainChart` s in Python, named as cdk8s names them, when no chart holds anything made in
    node; otherwise cdk8s writes them all, as any App."""

    def __init__(self, *, outdir: str) -> None:
        super().__init__(outdir=outdir)
        self._floe_outdir = Path(outdir)
        #: The documents of each file the last synth wrote in Python, by file name (none if cdk8s wrote).
        self.written: dict[str, list[Any]] = {}

    def synth(self) -> None:
        self.written = {}
        charts = list(self.charts)
        if not all(isinstance(chart, PlainChart) and chart.plain_only() for chart in charts):
            super().synth()
            return
        self._floe_outdir.mkdir(parents=True, exist_ok=True)
        for chart in charts:
            # cdk8s' SimpleChartNamer (no chart depends on another): the chart id if it is a DNS label.
            name = f"{Names.to_dns_label(chart)}{FILE_EXTENSION}"
            self.written[name] = chart.to_json()
            (self._floe_outdir / name).write_text(yaml_text(self.written[name]), encoding="utf-8")


class _ManifestDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """PyYAML's safe dumper (on libyaml where PyYAML has it, as its wheels do), writing a string of
    several lines as a literal block (``|``), as cdk8s' writer does: ConfigMaps hold scripts and
    config files, read in dist/ and in review. (libyaml falls back to a quoted string for one it
    cannot write as a block: a tab, a trailing space before a line break.)"""


#: Plain strings other readers take for something else, which PyYAML's YAML 1.1 resolver leaves
#: plain: the 1.1 booleans ``y``/``n`` (go-yaml v2, so kubectl, reads them as booleans), numbers of
#: the 1.1 spec PyYAML's resolver does not match (``1e3``, ``08``, ``0:30``: cdk8s' writer quotes
#: them) and Go's number syntax (``0o17``, ``1_000``: go-yaml parses a plain scalar with strconv).
_ALSO_QUOTED = re.compile(
    r"[yYnN]"
    r"|[-+]?[0-9_]*\.?[0-9_]*(?:[eE][-+]?[0-9]+)?"  # 1.1 ints and floats, an empty mantissa too
    r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?"  # 1.1 sexagesimal
)


def _taken_for_a_number(value: str) -> bool:
    if _ALSO_QUOTED.fullmatch(value):
        return True
    digits = value.replace("_", "")
    for parse in (float, lambda v: int(v, 0)):
        try:
            parse(digits)
        except ValueError:
            continue
        return True
    return False


@functools.cache  # a manifest repeats its keys and many values: each string is looked at once
def _style(value: str) -> str | None:
    if "\n" in value:
        return "|"
    if value and _taken_for_a_number(value):
        return "'"
    return None  # plain, unless PyYAML's own resolver reads it as another type (then quoted)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=_style(value))


_ManifestDumper.add_representer(str, _represent_str)


def yaml_text(documents: list[Any]) -> str:
    """``documents`` as one multi-document YAML text, as cdk8s' ``Yaml.stringify`` joins them: keys
    in their order, no line folded, YAML 1.1 (PyYAML quotes ``yes``, ``on``, ``0775`` and the like,
    which a 1.1 reader would otherwise not read as strings)."""
    return "---\n".join(
        yaml.dump(doc, Dumper=_ManifestDumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=-1)
        for doc in documents
    )


def chart_of(scope: Scope) -> Chart:
    return scope.chart if isinstance(scope, PlainConstruct) else scope


def prepare(charts: Iterable[Chart]) -> None:
    """Render each :class:`PlainChart` now; its ``to_json`` returns that until an object is added
    or patched through this module (anything else must come before: build_app calls this last)."""
    for chart in charts:
        if isinstance(chart, PlainChart):
            chart._floe_prepared = (_generation[0], chart.render())


#: Bumped by every object made and every patch applied here (invalidates prepared charts).
_generation = [0]


def _own(obj: Any) -> bool:
    entry = getattr(obj, _ENTRY, None)
    return entry is not None and entry.own


def render(obj: ApiObject, chart: Chart) -> dict[str, Any]:
    """The manifest cdk8s writes for a :class:`PlainApiObject`: apiVersion, kind and metadata (with
    the chart's namespace and labels) first, then the other fields by name, every map's keys sorted
    (cdk8s sorts an object's fields; the generated ``Kube*`` classes did as well)."""
    return _ordered(_document(getattr(obj, _ENTRY), chart))


def _ordered(doc: dict[str, Any]) -> dict[str, Any]:
    """A plain object's document (:func:`_document`) in the order cdk8s writes it (:func:`render`)."""
    head = {key: _sorted(doc[key]) for key in ("apiVersion", "kind", "metadata") if key in doc}
    return {**head, **{key: _sorted(doc[key]) for key in sorted(doc) if key not in head}}


def api_object(kind_type: Any, scope: Any, id: str, **props: Any) -> Any:
    """Add the object ``kind_type(scope, id, **props)`` to ``scope`` and keep its document.

    ``kind_type`` is a :class:`constructs.k8s.KubeKind` (``k8s.KubeDeployment``): the object is a
    :class:`PlainApiObject` in ``scope`` (a PlainChart or PlainConstruct), no jsii call at all, its
    fields rendered here. A generated ``cdk8s_plus_27.k8s`` class works too, in a scope of node's
    (made as it is, in node; its document rendered here from its props)."""
    if isinstance(kind_type, k8s.KubeKind):
        api_version, kind = kind_type.api_version, kind_type.kind
        fields = {k8s.field_name(field): to_json(value) for field, value in props.items() if value is not None}
        metadata = fields.get("metadata") or {}
        unknown = set(metadata) - _METADATA_FIELDS
        if unknown:
            raise ValueError(f"{kind} {metadata.get('name')}: metadata fields {sorted(unknown)} are not supported here")
        if not metadata.get("name"):
            # cdk8s would derive one from the construct path; the stack names every object itself.
            raise ValueError(f"{kind} {id!r}: metadata.name is required")
        body = {"apiVersion": api_version, "kind": kind, **fields}
        obj = PlainApiObject(scope, id, lambda made: _Entry(made, body, own=True, props=props))
        _generation[0] += 1
        return obj
    obj = kind_type(scope, id, **props)
    api_version, kind = _group_version_kind(kind_type)
    body = {"apiVersion": api_version, "kind": kind, **to_json(_props_type(kind_type)(**props))}
    setattr(obj, _ENTRY, _Entry(obj, body))
    _generation[0] += 1
    return obj


#: What ``metadata`` may hold for a plain ApiObject (cdk8s' ApiObjectMetadata, as the constructs use it).
_METADATA_FIELDS = {"name", "namespace", "labels", "annotations"}


def _sorted(value: Any) -> Any:
    """``value`` with every map's keys sorted, as cdk8s sorts an object's own fields; a patched value
    is sorted too, as the generated ``Kube*`` classes wrote it (tests/infra/test_plain.py compares)."""
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def patch(obj: ApiObject, *operations: tuple[str, str, Any]) -> None:
    """Apply JSON patch ``(op, path, value)`` operations (``add``, ``replace``) to ``obj``: recorded in
    its document, which a :class:`PlainApiObject` is rendered from; any other object gets them in
    cdk8s as well."""
    entry = getattr(obj, _ENTRY, None)
    if entry is None or not entry.own:
        obj.add_json_patch(*(getattr(JsonPatch, op)(path, value) for op, path, value in operations))
    if entry is not None:
        entry.patches.extend(operations)
    _generation[0] += 1


@functools.cache
def _chart_defaults(chart: Chart) -> tuple[str | None, dict[str, str]]:
    return chart.namespace, dict(chart.labels or {})


def _without_empty(value: Any) -> Any:
    """cdk8s' metadata rendering: no empty maps or lists, nothing unset."""
    if isinstance(value, dict):
        kept = {k: _without_empty(v) for k, v in value.items()}
        kept = {k: v for k, v in kept.items() if v is not None}
        return kept or None
    if isinstance(value, list):
        return [_without_empty(v) for v in value] or None
    return value


def _document(entry: _Entry, chart: Chart) -> dict[str, Any]:
    """The object's manifest as cdk8s renders it (key order aside): its metadata given the chart's
    namespace and labels as cdk8s does, then its patches applied."""
    namespace, chart_labels = _chart_defaults(chart)
    doc = _copy(entry.body)
    given = doc.get("metadata") or {}
    metadata = {
        "name": given.get("name") or entry.api_object.name,
        **given,
        "namespace": given.get("namespace") or namespace,
        "labels": {**chart_labels, **(given.get("labels") or {})},
    }
    doc["metadata"] = _without_empty(metadata) or {}
    for op, path, value in entry.patches:
        _apply(doc, op, path, _copy(value))
    return doc


def _copy(value: Any) -> Any:
    """A copy of JSON data (what ``copy.deepcopy`` does, without its bookkeeping: a fifth of the time)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _apply(doc: dict[str, Any], op: str, path: str, value: Any) -> None:
    *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
    target: Any = doc
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if op not in ("add", "replace"):
        raise ValueError(f"JSON patch operation {op!r} is not mirrored")
    if isinstance(target, list):
        if op == "add":
            target.insert(len(target) if last == "-" else int(last), value)
        else:
            target[int(last)] = value
    else:
        if op == "replace" and last not in target:
            raise KeyError(f"replace of missing {path}")
        target[last] = value


def objects(chart: Chart) -> list[tuple[Any, dict[str, Any]]]:
    """Every object of ``chart`` and its document, in the order the chart's file holds them: its
    plain tree's (nested constructs too, parents first, in the order they were added), then any made
    in node (read from cdk8s, in its order)."""
    found = []
    for child in getattr(chart, "_floe_children", ()):
        for node in child.node.find_all() if isinstance(child, PlainConstruct) else [child]:
            entry = getattr(node, _ENTRY, None)
            if entry is not None:
                found.append((node, _document(entry, chart)))
    # One round trip: just the chart itself, unless objects were made in node.
    for node in (getattr(chart, "_floe_node", None) or chart.node).find_all():
        if _is_api_object(type(node)):
            entry = getattr(node, _ENTRY, None)
            if entry is not None:
                entry.chart = chart
                found.append((node, _document(entry, chart)))
            else:
                found.append((node, node.to_json()))
    return found


@functools.cache
def _is_api_object(node_type: type) -> bool:
    # Once per class: isinstance against a jsii class walks its protocols (a millisecond a call).
    return issubclass(node_type, ApiObject)


def documents(charts: Iterable[Chart]) -> list[dict[str, Any]]:
    """The documents of every object of ``charts``, chart by chart (what ``chart.to_json()`` gives)."""
    return [doc for chart in charts for _, doc in objects(chart)]
