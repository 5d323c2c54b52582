"""What client-side ``kubectl apply`` sends: the three-way strategic merge patch, ported from upstream.

kubectl (k8s.io/kubectl pkg/cmd/apply/patcher.go) calls apimachinery's
``strategicpatch.CreateThreeWayMergePatch(original, modified, current, lookupPatchMeta)`` and prints
``unchanged`` only when the patch is ``{}``. This module is a faithful Python port of the diff half
of k8s.io/apimachinery pkg/util/strategicpatch/patch.go (``diffMaps``, ``handleMapDiff``,
``handleSliceDiff``, ``diffLists``, ``diffListsOfMaps``, ``diffListsOfScalars``, ``hasAdditionalNewField``,
``updatePatchIfMissing``), including what a whole-list comparison misses:

- ``$retainKeys``: a field whose patch strategy includes ``retainKeys`` (DeploymentSpec.strategy,
  PodSpec.volumes' elements) gets the directive when the live object holds a key the new one does not
  — such as the ``rollingUpdate`` the API server defaults into ``strategy: {type: RollingUpdate}`` —
  even when nothing else differs;
- ``$setElementOrder``: a merge list whose live order differs;
- merge keys: lists of maps are diffed element by element (``name``, ``mountPath``, ``port`` ...).

The patch metadata (``x-kubernetes-patch-strategy``, ``x-kubernetes-patch-merge-key``) comes from the
same OpenAPI definitions kubectl reads from the server (here: kubernetes-validate's copy of them).
``$patch`` directives inside original objects are not handled (apply never has them).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import kubernetes_validate

RETAIN_KEYS = "$retainKeys"
SET_ELEMENT_ORDER = "$setElementOrder"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"


@functools.lru_cache(maxsize=None)
def _definitions(version: str) -> dict[str, Any]:
    folder = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{version}-local-strict"
    return json.loads((folder / "_definitions.json").read_text())["$defs"]


def _resolve(schema: dict | None, version: str) -> dict | None:
    while schema is not None and "$ref" in schema:
        schema = _definitions(version).get(schema["$ref"].rsplit("/", 1)[-1], {}) | {k: v for k, v in schema.items() if k != "$ref"}
    return schema


def root_schema(kind: str, api_version: str, version: str = "1.27.0") -> dict | None:
    group, _, ver = api_version.rpartition("/")
    for definition in _definitions(version).values():
        for gvk in definition.get("x-kubernetes-group-version-kind") or []:
            if (gvk.get("group", ""), gvk["version"], gvk["kind"]) == (group, ver, kind):
                return definition
    return None


class _Field:
    """The patch metadata of one field (``LookupPatchMetadataForStruct``/``ForSlice``)."""

    def __init__(self, parent: dict | None, key: str, version: str) -> None:
        prop = _resolve(((parent or {}).get("properties") or {}).get(key), version) if parent else None
        if prop is None and parent and isinstance(parent.get("additionalProperties"), dict):
            prop = _resolve(parent["additionalProperties"], version)
        strategies = [s for s in ((prop or {}).get("x-kubernetes-patch-strategy") or "").split(",") if s]
        self.retain_keys = "retainKeys" in strategies
        rest = [s for s in strategies if s != "retainKeys"]
        self.strategy = rest[0] if rest else ""
        self.merge_key = (prop or {}).get("x-kubernetes-patch-merge-key", "")
        self.schema = prop
        self.item_schema = _resolve((prop or {}).get("items"), version) if prop else None


def _sort_scalars(values: list) -> list:
    return sorted(values, key=lambda v: f"{v}")


def diff_maps(original: dict, modified: dict, schema: dict | None, options: dict, version: str) -> dict:
    """``diffMaps``: options keys ``set_element_order``, ``ignore_changes_and_additions``,
    ``ignore_deletions``, ``build_retain_keys``."""
    patch: dict = {}
    retain: list = []
    for key, modified_value in modified.items():
        if options.get("build_retain_keys") and modified_value is not None:
            retain.append(key)
        if key not in original:
            if not options.get("ignore_changes_and_additions"):
                patch[key] = modified_value
            continue
        original_value = original[key]
        if type(original_value) is not type(modified_value):
            if not options.get("ignore_changes_and_additions"):
                patch[key] = modified_value
            continue
        if isinstance(original_value, dict):
            _handle_map_diff(key, original_value, modified_value, patch, schema, options, version)
        elif isinstance(original_value, list):
            _handle_slice_diff(key, original_value, modified_value, patch, schema, options, version)
        elif not options.get("ignore_changes_and_additions") and original_value != modified_value:
            patch[key] = modified_value
    if not options.get("ignore_deletions"):  # updatePatchIfMissing
        for key in original:
            if key not in modified:
                patch[key] = None
    if retain and (patch or _has_additional_new_field(original, modified)):
        patch[RETAIN_KEYS] = _sort_scalars(retain)
    return patch


def _has_additional_new_field(original: dict, modified: dict) -> bool:
    return any(value is not None and key not in modified for key, value in original.items())


def _handle_map_diff(key: str, original: dict, modified: dict, patch: dict, schema: dict | None, options: dict, version: str) -> None:
    field = _Field(schema, key, version)
    options = {**options, "build_retain_keys": field.retain_keys}
    if field.strategy == "replace":
        if not options.get("ignore_changes_and_additions"):
            patch[key] = modified
        return
    value = diff_maps(original, modified, field.schema, options, version)
    if value:
        patch[key] = value


def _handle_slice_diff(key: str, original: list, modified: list, patch: dict, schema: dict | None, options: dict, version: str) -> None:
    field = _Field(schema, key, version)
    if field.strategy != "merge":
        if not options.get("ignore_changes_and_additions") and original != modified:
            patch[key] = modified
        return
    options = {**options, "build_retain_keys": field.retain_keys}
    add, delete, order = _diff_lists(original, modified, field.item_schema, field.merge_key, options, version)
    if add:
        patch[key] = add
    if delete:
        patch[f"{DELETE_FROM_PRIMITIVE_LIST}/{key}"] = delete
    if order:
        patch[f"{SET_ELEMENT_ORDER}/{key}"] = order


def _diff_lists(original: list, modified: list, item_schema: dict | None, merge_key: str, options: dict, version: str) -> tuple[list, list, list]:
    if not original:
        if not modified or options.get("ignore_changes_and_additions"):
            return [], [], []
        return modified, [], []
    if isinstance((original or modified)[0], dict):
        patch_list, delete_list = _diff_lists_of_maps(original, modified, item_schema, merge_key, options, version)
        order_same = len(original) == len(modified) and all(o.get(merge_key) == m.get(merge_key) for o, m in zip(original, modified))
        patch_list = patch_list + delete_list
        order: list = []
        if options.get("set_element_order") and (
            (not options.get("ignore_changes_and_additions") and (patch_list or not order_same))
            or (not options.get("ignore_deletions") and patch_list)
        ):
            order = [{merge_key: m[merge_key]} for m in modified]
        return patch_list, [], order
    add, delete = _diff_lists_of_scalars(original, modified, options)
    order = []
    if options.get("set_element_order") and (
        (not options.get("ignore_deletions") and delete) or (not options.get("ignore_changes_and_additions") and original != modified)
    ):
        order = modified
    return add, delete, order


def _diff_lists_of_scalars(original: list, modified: list, options: dict) -> tuple[list, list]:
    o, m = {f"{v}": v for v in original}, {f"{v}": v for v in modified}
    add = [] if options.get("ignore_changes_and_additions") else [m[k] for k in sorted(m.keys() - o.keys())]
    delete = [] if options.get("ignore_deletions") else [o[k] for k in sorted(o.keys() - m.keys())]
    return add, delete


def _diff_lists_of_maps(original: list, modified: list, item_schema: dict | None, merge_key: str, options: dict, version: str) -> tuple[list, list]:
    patch: list = []
    deletions: list = []
    originals = {f"{o[merge_key]}": o for o in original}
    modifieds = {f"{m[merge_key]}": m for m in modified}
    for name in sorted(originals.keys() | modifieds.keys()):
        o, m = originals.get(name), modifieds.get(name)
        if o is not None and m is not None:
            value = diff_maps(o, m, item_schema, options, version)
            if value:
                value[merge_key] = m[merge_key]
                patch.append(value)
        elif m is not None:
            if not options.get("ignore_changes_and_additions"):
                patch.append(m)
        elif not options.get("ignore_deletions"):
            deletions.append({merge_key: o[merge_key], "$patch": "delete"})
    return patch, deletions


def three_way_patch(original: dict | None, modified: dict, current: dict, version: str = "1.27.0") -> dict:
    """``CreateThreeWayMergePatch``: the changes from ``current`` (live) to ``modified`` (the new file,
    additions and changes only) merged with the deletions from ``original`` (last applied) to
    ``modified``. Empty means kubectl prints ``unchanged``."""
    schema = root_schema(modified["kind"], modified["apiVersion"], version)
    delta = diff_maps(current, modified, schema, {"ignore_deletions": True, "set_element_order": True}, version)
    deletions = diff_maps(original or {}, modified, schema, {"ignore_changes_and_additions": True, "set_element_order": True}, version)
    return _merge(deletions, delta)


def _merge(a: dict, b: dict) -> dict:
    """Both halves together, for the report (mergeMap without directives: the halves never share a leaf)."""
    result = dict(a)
    for key, value in b.items():
        result[key] = _merge(result[key], value) if isinstance(result.get(key), dict) and isinstance(value, dict) else value
    return result
