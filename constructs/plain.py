"""The stack's Kubernetes objects rendered in Python, beside the cdk8s tree: the synth's fast path.

Every jsii call is a round trip to the node process that runs cdk8s, and node re-renders every
object it holds. The constructs build their objects from :mod:`constructs.k8s` (cdk8s-plus-27's
``k8s`` names as plain Python); :func:`api_object` adds each to the tree as a
:class:`PlainApiObject` (one jsii call: apiVersion, kind, metadata) and keeps its document here,
rendered by :func:`to_json` as the generated ``toJson_*`` functions render it (Kubernetes' field
names such as ``clusterIP``, fields in schema order, ``IntOrString``/``Quantity`` as their values),
with the JSON patches applied to it later (:func:`patch`).

The passes that read the finished objects (the NetworkPolicies, the reconcile CronJob, placement,
config checksums) read these documents (:func:`objects`, :func:`documents`); each chart of the stack is a
:class:`PlainChart`, whose JSON (what ``app.synth()`` writes, in cdk8s' order, with cdk8s' key
order) is rendered here in one call back per chart. cdk8s still holds every object and writes every
file. tests/infra/test_plain.py makes every object of both profiles again with cdk8s-plus-27 in a
plain cdk8s chart and compares what cdk8s writes with :func:`render`, byte for byte.

An object made some other way (a raw ``cdk8s.ApiObject``, a generated ``cdk8s_plus_27.k8s`` class,
an L2 construct, an ``Include``) is still found and read from node, one ``to_json`` each: correct,
just not fast.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cdk8s import ApiObject, ApiObjectMetadata, Chart, JsonPatch
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
    api_object: ApiObject
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


class PlainApiObject(ApiObject):
    """A cdk8s ``ApiObject`` whose manifest is rendered here, in Python (:func:`render`).

    cdk8s knows its apiVersion, kind and metadata; the rest stays in Python. A :class:`PlainChart`
    renders all of its objects in one call back into Python when cdk8s writes it; in any other chart
    (``cdk8s.Testing.chart()``) cdk8s asks each object for its ``to_json``, served from here too.
    Patch it with :func:`patch` (recorded in its document)."""

    def to_json(self) -> Any:
        entry: _Entry = getattr(self, _ENTRY)
        return render(entry.api_object, entry.chart if entry.chart is not None else Chart.of(self))

    def add_json_patch(self, *ops: JsonPatch) -> None:
        raise TypeError(f"{self.kind} {self.name}: patch it with constructs.plain.patch (its manifest is rendered in Python)")


class PlainChart(Chart):
    """A ``cdk8s.Chart`` whose JSON (what ``app.synth()`` writes) is rendered here: its
    :class:`PlainApiObject` from their documents, any other object by cdk8s. One call back into
    Python per chart, where cdk8s would render (resolve, sort, patch) each object in node.
    :func:`prepare` renders the charts ahead of ``app.synth()`` (build_app calls it last)."""

    def to_json(self) -> list[Any]:
        prepared = getattr(self, "_floe_prepared", None)
        if prepared is not None and prepared[0] == _generation[0]:
            return prepared[1]
        return self.render()

    def render(self) -> list[Any]:
        return [render(obj, self) if _own(obj) else doc for obj, doc in objects(self)]


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
    doc = _document(getattr(obj, _ENTRY), chart)
    head = {key: _sorted(doc[key]) for key in ("apiVersion", "kind", "metadata") if key in doc}
    return {**head, **{key: _sorted(doc[key]) for key in sorted(doc) if key not in head}}


def api_object(kind_type: Any, scope: Construct, id: str, **props: Any) -> ApiObject:
    """Add the object ``kind_type(scope, id, **props)`` to ``scope`` and keep its document.

    ``kind_type`` is a :class:`constructs.k8s.KubeKind` (``k8s.KubeDeployment``): the object is a
    :class:`PlainApiObject`, one jsii call to make, its fields rendered here. A generated
    ``cdk8s_plus_27.k8s`` class works too (made as it is, in node; its document rendered here from
    its props)."""
    if isinstance(kind_type, k8s.KubeKind):
        api_version, kind = kind_type.api_version, kind_type.kind
        fields = {k8s.field_name(field): to_json(value) for field, value in props.items() if value is not None}
        metadata = fields.get("metadata") or {}
        unknown = set(metadata) - _METADATA_FIELDS
        if unknown:
            raise ValueError(f"{kind} {metadata.get('name')}: metadata fields {sorted(unknown)} are not supported here")
        obj = PlainApiObject(
            scope,
            id,
            api_version=api_version,
            kind=kind,
            metadata=ApiObjectMetadata(
                name=metadata.get("name"),
                namespace=metadata.get("namespace"),
                labels=metadata.get("labels"),
                annotations=metadata.get("annotations"),
            ),
        )
        setattr(obj, _ENTRY, _Entry(obj, {"apiVersion": api_version, "kind": kind, **fields}, own=True, props=props))
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
    """``value`` with every map's keys sorted, as cdk8s sorts an object's own fields (a patched value
    is written as given)."""
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


def objects(chart: Chart) -> list[tuple[ApiObject, dict[str, Any]]]:
    """Every ApiObject of ``chart`` (nested constructs too, in the order cdk8s writes them) and its
    document; objects not made by :func:`api_object` are read from cdk8s."""
    found = []
    for node in chart.node.find_all():
        entry = getattr(node, _ENTRY, None)
        if entry is not None:
            entry.chart = chart
            found.append((node, _document(entry, chart)))
        elif _is_api_object(type(node)):
            found.append((node, node.to_json()))
    return found


@functools.cache
def _is_api_object(node_type: type) -> bool:
    # Once per class: isinstance against a jsii class walks its protocols (a millisecond a call).
    return issubclass(node_type, ApiObject)


def documents(charts: Iterable[Chart]) -> list[dict[str, Any]]:
    """The documents of every object of ``charts``, chart by chart (what ``chart.to_json()`` gives)."""
    return [doc for chart in charts for _, doc in objects(chart)]
