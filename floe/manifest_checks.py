"""Checks over the whole of ``dist/``: schema, wiring and policy — what a cluster would reject or
what would only break at run time, found before anything is applied.

Each check is a named function from a :class:`Manifests` index to violations, so synthesis refuses
to publish a broken ``dist/`` and each check has a mutation test proving it fires.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml

from floe import config_checksum, fast_yaml
from floe import pod_security
from floe import probe_costs
from floe.quantities import canonical_quantity, cpu_millicores, memory_bytes

def _latest_schema_version() -> str:
    """``kubernetes_validate.latest_version()`` without importing kubernetes_validate, which imports
    jsonschema and referencing: a tenth of a second of CPU in every synth, though a synth whose
    objects all passed before (see :class:`_SchemaVerdicts`) validates none. The same listing of the
    package's schema folders and the same ordering as upstream's ``all_versions()``
    (tests/infra/test_checks.py compares the two)."""
    from importlib.util import find_spec

    from packaging.version import Version

    spec = find_spec("kubernetes_validate")  # finds the package without running it
    assert spec is not None and spec.submodule_search_locations
    pattern = re.compile(r"^v([^-]*).*")
    folders = (Path(spec.submodule_search_locations[0]) / "kubernetes-json-schema").iterdir()
    return sorted((pattern.sub(r"\1", f.name) for f in folders if pattern.match(f.name)), key=Version)[-1]


#: Kubernetes versions every object is validated against: the one Docker Desktop's API was
#: generated from for our L1 classes, and the newest schema kubernetes-validate ships.
SCHEMA_VERSIONS = ("1.27.0", _latest_schema_version())
DETECTION_BUDGET_SECONDS = 30
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}
# PodTemplate: pods something else creates from a declared template (the k8s run launcher's run
# pods, constructs/dagster.py run_pod): checked like any pod, and read by the NetworkPolicy derivation.
POD_OWNER_KINDS = WORKLOAD_KINDS | {"Job", "CronJob", "PodTemplate"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"}

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
ENV_VAR_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
# scheme://host:port or jdbc:postgresql://host:port in any string value.
URL_HOSTPORT = re.compile(r"(?:[a-z][a-z0-9+.-]*:)?//(?P<host>[A-Za-z0-9.-]+):(?P<port>\d+)")
BARE_HOSTPORT = re.compile(r"^(?P<host>[a-z0-9][a-z0-9.-]*):(?P<port>\d+)$")
# bash's TCP check, as the wait-for-deps init containers use it: </dev/tcp/<host>/<port>
DEV_TCP = re.compile(r"/dev/tcp/(?P<host>[A-Za-z0-9.-]+)/(?P<port>\d+)")
LOCAL_HOSTS = {"localhost", "127.0.0.1", "0.0.0.0", "::1"}

# Kubernetes defaults when a probe leaves a field out.
PROBE_DEFAULTS = {"periodSeconds": 10, "failureThreshold": 3, "timeoutSeconds": 1}


@dataclass(frozen=True)
class Violation:
    check: str
    obj: str
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.obj}: {self.message}"


@dataclass
class Pod:
    """A pod template and the object that owns it."""

    owner: dict
    spec: dict
    labels: dict

    @property
    def ref(self) -> str:
        return ref(self.owner)

    @property
    def workload(self) -> str:
        """The workload's stable name: a Job's object name ends in a content digest
        (constructs.base.job_name); its ``app.kubernetes.io/name`` label is the name without it."""
        if self.owner["kind"] == "Job":
            return self.labels.get("app.kubernetes.io/name", self.owner["metadata"]["name"])
        return self.owner["metadata"]["name"]

    @property
    def long_running(self) -> bool:
        return self.owner["kind"] in WORKLOAD_KINDS

    def containers(self, *, init: bool = True) -> Iterator[tuple[str, dict]]:
        for key in ("initContainers", "containers") if init else ("containers",):
            for c in self.spec.get(key) or []:
                yield key, c


def pod_template(doc: dict) -> dict:
    """The pod template of a workload, Job or CronJob (whose template sits one Job deeper), or a
    PodTemplate's own."""
    if doc.get("kind") == "PodTemplate":
        return doc["template"]
    spec = doc["spec"]["jobTemplate"]["spec"] if doc.get("kind") == "CronJob" else doc["spec"]
    return spec["template"]


def ref(doc: dict) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


@dataclass
class Manifests:
    documents: list[dict]
    namespace: str
    # Secrets that exist outside dist/ (credentials.source: existing, and the Secrets the config
    # declares for external services): references to them are fine.
    external_secrets: set[str] = field(default_factory=set)
    # (host, port) of the services the config declares outside the cluster (postgres.external,
    # minio.external): the only addresses the wiring may name that are not Services of dist/.
    external_endpoints: set[tuple[str, int]] = field(default_factory=set)
    # StatefulSets the profile gives persistent storage (postgres.persistence, minio.persistence):
    # the only objects that may carry volumeClaimTemplates.
    persistent_workloads: set[str] = field(default_factory=set)
    # The Gateway the config declares for the UIs' HTTPRoutes (ingress.gateway): its parentRef
    # (group, kind, namespace, name, optional sectionName). None: no route may be in dist/ attached
    # to anything but a Gateway, and which one is not known (the mutation tests' default).
    gateway: dict[str, str] | None = None

    def of_kind(self, kind: str) -> list[dict]:
        return [d for d in self.documents if d.get("kind") == kind]

    @cached_property
    def pods(self) -> list[Pod]:
        found = []
        for doc in self.documents:
            if doc.get("kind") in POD_OWNER_KINDS:
                template = pod_template(doc)
                found.append(Pod(doc, template.get("spec", {}), template.get("metadata", {}).get("labels") or {}))
        return found

    @cached_property
    def services(self) -> dict[str, dict]:
        return {d["metadata"]["name"]: d for d in self.of_kind("Service")}

    @cached_property
    def config_maps(self) -> dict[str, dict]:
        return {d["metadata"]["name"]: d for d in self.of_kind("ConfigMap")}

    @cached_property
    def secrets(self) -> dict[str, dict]:
        return {d["metadata"]["name"]: d for d in self.of_kind("Secret")}

    def selected_pods(self, service: dict) -> list[Pod]:
        selector = service["spec"].get("selector") or {}
        if not selector:
            return []
        return [p for p in self.pods if p.long_running and selector.items() <= p.labels.items()]

    def service_ports(self, name: str) -> set[int]:
        return {p["port"] for p in self.services[name]["spec"].get("ports", [])}


Check = Callable[[Manifests], Iterable[Violation]]
CHECKS: dict[str, Check] = {}


def check(name: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        CHECKS[name] = fn
        return fn

    return register


# --- schema and API-server rules ----------------------------------------------------------------


@check("schema")
def _schema(m: Manifests) -> Iterator[Violation]:
    passed = _SchemaVerdicts.load()
    for doc in m.documents:
        if crd_schema_file(str(doc.get("kind")), str(doc.get("apiVersion"))) is not None:
            yield from _crd_schema_violations(doc, passed)
            continue
        for version in SCHEMA_VERSIONS:
            key = _SchemaVerdicts.key(version, doc)
            if key in passed:
                continue  # this exact object passed this exact schema before (see _SchemaVerdicts)
            import kubernetes_validate  # only here: most synths validate nothing (see _SchemaVerdicts)

            try:
                validator = schema_validator(version, str(doc.get("kind")), str(doc.get("apiVersion")))
            except kubernetes_validate.SchemaNotFoundError as exc:
                yield Violation("schema", ref(doc), f"Kubernetes {version}: no schema for this kind ({exc.message})")
                continue
            error = _first_schema_error(validator, doc)
            if error is not None:
                yield Violation("schema", ref(doc), f"Kubernetes {version}: {error}")
            else:
                passed.record(key)


def _first_schema_error(validator, doc: dict) -> str | None:  # noqa: ANN001 - a jsonschema Validator
    """The first error, the one kubernetes_validate.validate() raises, with where it is."""
    error = next(validator.iter_errors(doc), None)
    if error is None:
        return None
    path = "/".join(str(p) for p in error.path)
    return f"{error.message} at {path or '(root)'}"


class _SchemaVerdicts(set[str]):
    """Objects that passed strict schema validation, by content: a synth that changes three objects
    validates three objects, and the rest cost a hash each.

    A verdict depends only on the object, the schema files and the validator, so the key is the
    SHA-256 of the object's canonical JSON with the Kubernetes version, the kubernetes-validate
    release (which ships the schema files), the jsonschema release and this module's source. Only passes are kept: an
    object with an error is validated every time, and its message is always fresh. The record is one
    hex digest a line in ``$FLOE_SCHEMA_CACHE`` (default ``~/.cache/floe/schema-passed``), appended
    (a line is one atomic write, so concurrent synths do not corrupt it); an unreadable or
    unwritable record just means validating everything, as before.
    """

    path: Path | None = None
    #: Lines kept when the record is rewritten (about 20 synths of every object, both versions).
    KEEP = 4000

    @classmethod
    def location(cls) -> Path:
        configured = os.environ.get("FLOE_SCHEMA_CACHE")
        if configured:
            return Path(configured)
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "floe" / "schema-passed"

    @classmethod
    def load(cls) -> _SchemaVerdicts:
        verdicts = cls()
        verdicts.path = cls.location()
        try:
            lines = verdicts.path.read_text().split()
        except OSError:
            return verdicts
        verdicts.update(line for line in lines if len(line) == 64)
        if len(lines) > 2 * cls.KEEP:
            with contextlib.suppress(OSError):
                partial = verdicts.path.with_name(f".{verdicts.path.name}.{os.getpid()}")
                partial.write_text("".join(f"{line}\n" for line in lines[-cls.KEEP :]))
                os.replace(partial, verdicts.path)
        return verdicts

    @staticmethod
    def key(version: str, doc: dict) -> str:
        body = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(f"{_VALIDATOR_RELEASES}|{version}|{body}".encode()).hexdigest()

    def record(self, key: str) -> None:
        self.add(key)
        if self.path is None:
            return
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, f"{key}\n".encode())
            finally:
                os.close(fd)


#: The Gateway API's published CRDs (floe/schemas/gateway-api/README.md: URL, release, licence),
#: vendored unmodified: kubernetes-validate has schemas for the built-in kinds only.
GATEWAY_API_RELEASE = "v1.3.0"
GATEWAY_API_GROUP = "gateway.networking.k8s.io"  # floe.config.GATEWAY_API_GROUP (no import: checks stand alone)
CRD_DIR = Path(__file__).resolve().parent / "schemas" / "gateway-api"
#: kind -> the vendored CRD file that defines it.
CRD_FILES = {
    # The Gateway itself is not ours; its schema checks the Gateways the deploy preflight's tests
    # stand in for (tests/deploy/test_preflight_gateway.py).
    "Gateway": CRD_DIR / "gateway.networking.k8s.io_gateways.yaml",
    "HTTPRoute": CRD_DIR / "gateway.networking.k8s.io_httproutes.yaml",
    "ReferenceGrant": CRD_DIR / "gateway.networking.k8s.io_referencegrants.yaml",
}

#: What a verdict depends on besides the object: the validating packages' releases, this module's
#: own code (schema_validator picks the schema file; any edit here starts a new record) and the
#: vendored CRDs.
_VALIDATOR_RELEASES = "|".join(
    [f"{name}={importlib.metadata.version(name)}" for name in ("kubernetes-validate", "jsonschema", "referencing")]
    + [f"cel-python={importlib.metadata.version('cel-python')}"]
    + [hashlib.sha256(path.read_bytes()).hexdigest() for path in [Path(__file__), *sorted(CRD_FILES.values())]]
)


def crd_schema_file(kind: str, api_version: str) -> Path | None:
    """The vendored CRD for an object of the Gateway API's group, None for every other object."""
    if api_version.split("/")[0] != GATEWAY_API_GROUP:
        return None
    return CRD_FILES.get(kind, CRD_DIR / f"{GATEWAY_API_GROUP}_{kind.lower()}s.yaml")


def _crd_schema_violations(doc: dict, passed: _SchemaVerdicts) -> Iterator[Violation]:
    where = f"Gateway API {GATEWAY_API_RELEASE} CRD"
    key = _SchemaVerdicts.key(where, doc)
    if key in passed:
        return
    try:
        validator = crd_validator(str(doc.get("kind")), str(doc.get("apiVersion")))
    except LookupError as exc:
        yield Violation("schema", ref(doc), f"{where}: {exc}")
        return
    error = _first_schema_error(validator, doc)
    if error is not None:
        yield Violation("schema", ref(doc), f"{where}: {error}")
        return
    schema = crd_schema(str(doc.get("kind")), str(doc.get("apiVersion")))
    broken = next(cel_rule_violations(crd_defaulted(doc, schema), schema), None)
    if broken is not None:
        yield Violation("schema", ref(doc), f"{where}: {broken}")
    else:
        passed.record(key)


def crd_defaulted(doc: object, schema: dict) -> object:
    """``doc`` with every ``default`` of its CRD schema filled in where the parent object exists,
    as the API server stores it (structural defaulting) and evaluates its CEL rules against it."""
    if isinstance(doc, dict):
        out = dict(doc)
        for name, sub in (schema.get("properties") or {}).items():
            if name in out:
                out[name] = crd_defaulted(out[name], sub)
            elif "default" in sub:
                out[name] = crd_defaulted(sub["default"], sub)
        return out
    if isinstance(doc, list) and isinstance(schema.get("items"), dict):
        return [crd_defaulted(item, schema["items"]) for item in doc]
    return doc


#: Kubernetes' escaping of property names for CEL (apiextensions-apiserver: a name that is a CEL
#: reserved word becomes __<name>__; '_', '.', '-', '/' inside a name become __underscores__,
#: __dot__, __dash__, __slash__).
_CEL_RESERVED = {
    "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function", "if",
    "import", "let", "loop", "package", "namespace", "return", "var", "void", "while",
}


def _cel_name(name: str) -> str:
    if name in _CEL_RESERVED:
        return f"__{name}__"
    for char, word in (("__", "__underscores__"), (".", "__dot__"), ("-", "__dash__"), ("/", "__slash__")):
        name = name.replace(char, word)
    return name


def _cel_value(value: object, schema: dict) -> object:
    """A JSON value as CEL sees it: the properties of a schema object under their escaped names
    (a free-form map, ``additionalProperties``, keeps its keys)."""
    if isinstance(value, dict) and schema.get("properties"):
        props = schema["properties"]
        return {_cel_name(k): _cel_value(v, props.get(k, {})) for k, v in value.items()}
    if isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        return {k: _cel_value(v, schema["additionalProperties"]) for k, v in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_cel_value(v, schema["items"]) for v in value]
    return value


@functools.lru_cache(maxsize=None)
def _cel_program(rule: str):  # noqa: ANN202 - a celpy Runner
    import celpy

    environment = celpy.Environment()
    return environment.program(environment.compile(rule))


def cel_rule_violations(doc: object, schema: dict, path: str = "") -> Iterator[str]:
    """Each CEL rule (``x-kubernetes-validations``) of the CRD schema that ``doc`` (defaulted, see
    :func:`crd_defaulted`) breaks, evaluated with cel-python on the value at the rule's place, as
    the API server evaluates them at create/update. Transition rules (``oldSelf``) need a stored
    object and are skipped."""
    import celpy

    for validation in schema.get("x-kubernetes-validations") or []:
        rule = validation["rule"]
        if "oldSelf" in rule:
            continue
        try:
            result = _cel_program(rule).evaluate({"self": celpy.json_to_cel(_cel_value(doc, schema))})
        except celpy.CELEvalError as exc:  # a runtime error rejects the object on the API server too
            result = exc
        if isinstance(result, celpy.CELEvalError) or not isinstance(result, celpy.celtypes.BoolType):
            yield f"CEL rule at {path or '(root)'} could not be evaluated ({result}): {rule}"
        elif not bool(result):
            yield f"{validation.get('message') or 'CEL rule failed'} at {path or '(root)'} (x-kubernetes-validations: {rule})"
    if isinstance(doc, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name in doc:
                yield from cel_rule_violations(doc[name], sub, f"{path}/{name}")
    elif isinstance(doc, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(doc):
            yield from cel_rule_violations(item, schema["items"], f"{path}/{index}")


@functools.lru_cache(maxsize=None)
def crd_validator(kind: str, api_version: str):  # noqa: ANN201 - a jsonschema Validator
    """A validator for ``kind`` at ``api_version`` from the vendored CRD: the ``openAPIV3Schema`` of
    that served version, strict like kubernetes-validate's ``-strict`` schemas (:func:`_strict`), with
    ``apiVersion`` and ``kind`` pinned and ``metadata`` checked against Kubernetes' own ObjectMeta
    (the CRD leaves it an open object: the API server validates it). Raises LookupError for a kind
    or version the CRDs do not serve."""
    import jsonschema
    from referencing import Registry

    schema = _strict(crd_schema(kind, api_version))
    schema["properties"]["apiVersion"] = {"const": api_version}
    schema["properties"]["kind"] = {"const": kind}
    schema["properties"]["metadata"] = {"$ref": "https://kubernetes.io/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
    latest = SCHEMA_VERSIONS[-1]  # kubernetes_validate.latest_version(), without importing it
    registry = _definitions(f"v{latest}-local-strict", latest) @ Registry()
    # OpenAPI v3 schemas are JSON-schema draft 4 style (type, properties, enum, pattern, min/max);
    # Draft 2020-12 reads them the same and resolves the ObjectMeta reference like schema_validator.
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


@functools.lru_cache(maxsize=None)
def crd_schema(kind: str, api_version: str) -> dict:
    """The vendored CRD's ``openAPIV3Schema`` for ``kind`` at ``api_version``, as published."""
    path = crd_schema_file(kind, api_version)
    if path is None or not path.is_file():
        raise LookupError(f"no CRD for kind {kind} (vendored: {', '.join(sorted(CRD_FILES))})")
    crd = yaml.safe_load(path.read_text())
    version = api_version.split("/", 1)[-1]
    if crd["spec"]["names"]["kind"] != kind:
        raise LookupError(f"{path.name} defines {crd['spec']['names']['kind']}, not {kind}")
    served = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served")}
    if version not in served:
        raise LookupError(f"{kind} is not served at {api_version} (served: {', '.join(sorted(served))})")
    return served[version]["schema"]["openAPIV3Schema"]


def crd_defaults_left_out(doc: object, schema: dict, path: str = "", in_list: bool = False) -> Iterator[str]:
    """Paths inside a list where ``doc`` leaves out a field its CRD schema defaults (``default``):
    outside lists a JSON merge patch leaves a defaulted field the API server added alone."""
    if isinstance(doc, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name in doc:
                yield from crd_defaults_left_out(doc[name], sub, f"{path}/{name}", in_list)
            elif "default" in sub and in_list:
                yield f"{path}/{name}"
    elif isinstance(doc, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(doc):
            yield from crd_defaults_left_out(item, schema["items"], f"{path}/{index}", True)


def _strict(schema: dict) -> dict:
    """Every object schema with ``properties`` and no ``additionalProperties`` refuses unknown
    fields (as kubectl apply's strict field validation does against a structural CRD schema), except
    where the CRD keeps unknown fields (``x-kubernetes-preserve-unknown-fields``). ``default`` and
    the CEL rules stay: jsonschema ignores both (:func:`crd_defaulted` and
    :func:`cel_rule_violations` apply them, as the API server does)."""
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {name: _strict(sub) for name, sub in out["properties"].items()}
        if "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _strict(out["additionalProperties"])
    if isinstance(out.get("items"), dict):
        out["items"] = _strict(out["items"])
    for combinator in ("allOf", "anyOf", "oneOf"):
        if combinator in out:
            out[combinator] = [_strict(sub) for sub in out[combinator]]
    return out


@functools.lru_cache(maxsize=None)
def schema_validator(version: str, kind: str, api_version: str):  # noqa: ANN201 - a jsonschema Validator
    """kubernetes_validate.validate(..., strict=True), with the schema of each (version, kind) and
    the shared ``_definitions.json`` read once per process instead of once per object: upstream
    re-reads and re-parses both (megabytes of JSON) on every call, which was half of synth time.
    Same files, same resolution rules, same Draft 2020-12 validator as upstream."""
    import jsonschema
    import kubernetes_validate
    from kubernetes_validate.utils import all_versions, major_minor, schema_contents
    from referencing import Registry, Resource

    wanted = major_minor(version)
    schema_version = [v for v in all_versions() if major_minor(v) <= wanted][-1]
    schema_dir = f"v{schema_version}-local-strict"
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = schema_contents(f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{group_version}.json", version)
    except FileNotFoundError:
        raise kubernetes_validate.SchemaNotFoundError(version=wanted, kind=kind, api_version=api_version) from None
    registry = Resource.from_contents(schema) @ (_definitions(schema_dir, version) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


@functools.lru_cache(maxsize=None)
def _definitions(schema_dir: str, version: str):  # noqa: ANN202 - a referencing Resource
    from kubernetes_validate.utils import schema_contents
    from referencing import Resource

    return Resource.from_contents(schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", version))


@check("namespace")
def _namespace(m: Manifests) -> Iterator[Violation]:
    for doc in m.documents:
        ns = doc.get("metadata", {}).get("namespace")
        if doc.get("kind") in CLUSTER_SCOPED:
            if ns:
                yield Violation("namespace", ref(doc), "cluster-scoped object must not set metadata.namespace")
        elif ns != m.namespace:
            yield Violation("namespace", ref(doc), f"metadata.namespace is {ns!r}, expected {m.namespace!r}")


@check("names")
def _names(m: Manifests) -> Iterator[Violation]:
    for doc in m.documents:
        name = doc.get("metadata", {}).get("name", "")
        # Services and Namespaces need a DNS label (they become DNS names); the rest a subdomain.
        label_only = doc.get("kind") in {"Service", "Namespace"}
        pattern, limit = (DNS1123_LABEL, 63) if label_only else (DNS1123_SUBDOMAIN, 253)
        if not pattern.match(name) or len(name) > limit:
            kind = "DNS-1123 label" if label_only else "DNS-1123 subdomain"
            yield Violation("names", ref(doc), f"name {name!r} is not a {kind} (max {limit} characters)")
    for pod in m.pods:
        port_names: dict[str, str] = {}
        for _, c in pod.containers():
            if not DNS1123_LABEL.match(c.get("name", "")):
                yield Violation("names", pod.ref, f"container name {c.get('name')!r} is not a DNS-1123 label")
            for port in c.get("ports") or []:
                pname = port.get("name")
                if pname is None:
                    continue
                if len(pname) > 15 or not IANA_SVC_NAME.match(pname) or "--" in pname or not re.search("[a-z]", pname):
                    yield Violation("names", pod.ref, f"port name {pname!r} is not an IANA service name (<= 15 chars, a-z0-9-)")
                if pname in port_names:
                    yield Violation("names", pod.ref, f"port name {pname!r} used by both {port_names[pname]} and {c['name']}")
                port_names[pname] = c["name"]
    for svc in m.services.values():
        for port in svc["spec"].get("ports", []):
            pname = port.get("name", "")
            if len(pname) > 15 or not IANA_SVC_NAME.match(pname):
                yield Violation("names", ref(svc), f"service port name {pname!r} is not an IANA service name")


def _valid_port(value: object) -> bool:
    return isinstance(value, int) and 1 <= value <= 65535


@check("ports")
def _ports(m: Manifests) -> Iterator[Violation]:
    """Port numbers in range and unique where the API server requires it (the schema does neither)."""
    for pod in m.pods:
        seen: dict[tuple[int, str], str] = {}
        for _, c in pod.containers():
            for port in c.get("ports") or []:
                number, protocol = port.get("containerPort"), port.get("protocol", "TCP")
                if not _valid_port(number):
                    yield Violation("ports", pod.ref, f"container {c['name']}: containerPort {number!r} is not in 1-65535")
                elif (number, protocol) in seen and seen[(number, protocol)] != c["name"]:
                    yield Violation("ports", pod.ref, f"containerPort {number}/{protocol} declared by {seen[(number, protocol)]} and {c['name']}")
                seen[(number, protocol)] = c["name"]
    for svc in m.services.values():
        names: set[str] = set()
        numbers: set[tuple[int, str]] = set()
        for port in svc["spec"].get("ports", []):
            number, target = port.get("port"), port.get("targetPort", port.get("port"))
            if not _valid_port(number):
                yield Violation("ports", ref(svc), f"port {number!r} is not in 1-65535")
            if isinstance(target, int) and not _valid_port(target):
                yield Violation("ports", ref(svc), f"targetPort {target!r} is not in 1-65535")
            if len(svc["spec"]["ports"]) > 1 and not port.get("name"):
                yield Violation("ports", ref(svc), "every port of a multi-port Service needs a name")
            if port.get("name") in names:
                yield Violation("ports", ref(svc), f"port name {port['name']!r} used twice")
            if (number, port.get("protocol", "TCP")) in numbers:
                yield Violation("ports", ref(svc), f"port {number} used twice")
            names.add(port.get("name"))
            numbers.add((number, port.get("protocol", "TCP")))


def _label_problems(labels: dict) -> Iterator[str]:
    for key, value in (labels or {}).items():
        prefix, _, name = key.rpartition("/")
        if prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
            yield f"label key {key!r}: prefix is not a DNS subdomain"
        if not name or len(name) > 63 or not LABEL_NAME.match(name):
            yield f"label key {key!r}: name part is not a valid label name"
        if not isinstance(value, str) or len(value) > 63 or (value and not LABEL_NAME.match(value)):
            yield f"label {key}={value!r}: value must be <= 63 chars of [A-Za-z0-9-_.], alphanumeric at both ends"


@check("labels")
def _labels(m: Manifests) -> Iterator[Violation]:
    required = ("app.kubernetes.io/name", "app.kubernetes.io/part-of")
    for doc in m.documents:
        lbls = doc.get("metadata", {}).get("labels") or {}
        for problem in _label_problems(lbls):
            yield Violation("labels", ref(doc), problem)
        for key in required:
            if doc.get("kind") != "Namespace" and key not in lbls:
                yield Violation("labels", ref(doc), f"missing standard label {key}")
    for pod in m.pods:
        for problem in _label_problems(pod.labels):
            yield Violation("labels", pod.ref, f"pod template: {problem}")


@check("env-names")
def _env_names(m: Manifests) -> Iterator[Violation]:
    for pod in m.pods:
        for _, c in pod.containers():
            seen: set[str] = set()
            for var in c.get("env") or []:
                name = var.get("name", "")
                if not ENV_VAR_NAME.match(name):
                    yield Violation("env-names", pod.ref, f"container {c['name']}: env var name {name!r} is invalid")
                if name in seen:
                    yield Violation("env-names", pod.ref, f"container {c['name']}: env var {name} set twice")
                seen.add(name)


# --- wiring -------------------------------------------------------------------------------------


@check("selectors")
def _selectors(m: Manifests) -> Iterator[Violation]:
    for pod in m.pods:
        if not pod.long_running:
            continue
        match = pod.owner["spec"].get("selector", {}).get("matchLabels") or {}
        if not match or not match.items() <= pod.labels.items():
            yield Violation("selectors", pod.ref, f"selector {match} does not match its pod template labels")
        if pod.owner["kind"] == "StatefulSet":
            governing = pod.owner["spec"].get("serviceName")
            svc = m.services.get(governing)
            if svc is None or svc["spec"].get("clusterIP") != "None":
                yield Violation("selectors", pod.ref, f"serviceName {governing!r} is not a headless Service in dist/")
    for name, svc in m.services.items():
        if not m.selected_pods(svc):
            yield Violation("selectors", ref(svc), f"selector {svc['spec'].get('selector')} selects no pod template")


@check("service-ports")
def _service_ports(m: Manifests) -> Iterator[Violation]:
    for svc in m.services.values():
        pods = m.selected_pods(svc)
        if not pods:
            continue  # reported by the selectors check
        for port in svc["spec"].get("ports", []):
            target = port.get("targetPort", port["port"])
            for pod in pods:
                declared = [p for _, c in pod.containers(init=False) for p in c.get("ports") or []]
                ok = any(
                    (p.get("name") == target) if isinstance(target, str) else (p["containerPort"] == target)
                    for p in declared
                )
                if not ok:
                    yield Violation(
                        "service-ports", ref(svc), f"port {port.get('name')} targets {target!r}, which {pod.ref} does not expose"
                    )


def _references(pod: Pod) -> Iterator[tuple[str, str, str | None, bool]]:
    """(kind, name, key or None, optional) of every ConfigMap/Secret a pod template uses."""
    for _, c in pod.containers():
        for var in c.get("env") or []:
            source = var.get("valueFrom") or {}
            for kind, key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                if key in source:
                    r = source[key]
                    yield kind, r["name"], r["key"], bool(r.get("optional"))
        for source in c.get("envFrom") or []:
            for kind, key in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
                if key in source:
                    yield kind, source[key]["name"], None, bool(source[key].get("optional"))
    for volume in pod.spec.get("volumes") or []:
        if "configMap" in volume:
            cm = volume["configMap"]
            for item in cm.get("items") or [{"key": None}]:
                yield "ConfigMap", cm["name"], item["key"], bool(cm.get("optional"))
        if "secret" in volume:
            s = volume["secret"]
            for item in s.get("items") or [{"key": None}]:
                yield "Secret", s["secretName"], item["key"], bool(s.get("optional"))


@check("references")
def _references_resolve(m: Manifests) -> Iterator[Violation]:
    for pod in m.pods:
        for kind, name, key, optional in _references(pod):
            if kind == "Secret" and name in m.external_secrets:
                continue
            objects = m.secrets if kind == "Secret" else m.config_maps
            obj = objects.get(name)
            if obj is None:
                if not optional:
                    yield Violation("references", pod.ref, f"{kind} {name!r} is not in dist/")
                continue
            data = {**(obj.get("data") or {}), **(obj.get("stringData") or {})}
            if key is not None and key not in data:
                yield Violation("references", pod.ref, f"{kind} {name} has no key {key!r} (has: {', '.join(sorted(data))})")
        for _, c in pod.containers():
            declared = {v["name"] for v in pod.spec.get("volumes") or []}
            # A StatefulSet's volumeClaimTemplates become pod volumes of the same name.
            declared |= {t["metadata"]["name"] for t in pod.owner.get("spec", {}).get("volumeClaimTemplates") or [] if pod.owner["kind"] == "StatefulSet"}
            for mount in c.get("volumeMounts") or []:
                if mount["name"] not in declared:
                    yield Violation("references", pod.ref, f"container {c['name']} mounts undeclared volume {mount['name']!r}")


#: The object store's root key is what MinIO reads from these variables (its server container).
ROOT_KEY_VARIABLES = ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD")
#: The only other containers that may hold it: the steps that create buckets, users and policies
#: (demo/bootstrap/buckets.py), once at install and in every reconcile run.
ROOT_KEY_COMMANDS = (
    ["python", "-m", "demo.bootstrap", "buckets"],
    ["python", "-m", "demo.bootstrap", "reconcile"],
)


@check("root-credentials")
def _root_credentials(m: Manifests) -> Iterator[Violation]:
    """No container but the object store itself and the bucket/reconcile steps holds its root key.

    The root key is found from dist/ itself (the Secret keys MinIO's MINIO_ROOT_* come from), so a
    renamed Secret or prefix cannot slip by; a container holds it when any env var, envFrom or
    Secret volume of its pod reaches one of those Secrets. Every other pod has its own client key
    with the least access that works (demo/bootstrap/identities.py)."""
    root: set[str] = set()
    for pod in m.pods:
        for _, c in pod.containers():
            for var in c.get("env") or []:
                ref = (var.get("valueFrom") or {}).get("secretKeyRef")
                if var["name"] in ROOT_KEY_VARIABLES and ref:
                    root.add(ref["name"])
    if not root:
        return
    for pod in m.pods:
        volumes = {v["name"]: (v.get("secret") or {}).get("secretName") for v in pod.spec.get("volumes") or []}
        for _, c in pod.containers():
            held = {
                ((var.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name") for var in c.get("env") or []
            } | {(source.get("secretRef") or {}).get("name") for source in c.get("envFrom") or []} | {
                volumes.get(mount["name"]) for mount in c.get("volumeMounts") or []
            }
            held &= root
            if not held:
                continue
            server = any(var["name"] in ROOT_KEY_VARIABLES for var in c.get("env") or [])
            if server or (c.get("command") or []) in ROOT_KEY_COMMANDS:
                continue
            yield Violation(
                "root-credentials", pod.ref,
                f"container {c['name']} holds the object store's root key ({', '.join(sorted(held))}): give it its "
                "own client key (constructs/secrets.py s3_env); only MinIO and the bucket/reconcile steps hold the root key",
            )


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _resolve_host(m: Manifests, host: str) -> tuple[str, str] | None:
    """(service name, pod or '') an in-cluster host names, or None if it is not in-cluster."""
    if host in LOCAL_HOSTS or re.match(r"^\d+\.\d+\.\d+\.\d+$", host):
        return None
    parts = host.split(".")
    suffixes = [[], [m.namespace], [m.namespace, "svc"], [m.namespace, "svc", "cluster", "local"]]
    for suffix in suffixes:
        n = len(suffix)
        if n and parts[-n:] != suffix:
            continue
        base = parts[: len(parts) - n] if n else parts
        if len(base) == 1:
            return base[0], ""
        if len(base) == 2 and base[1] in m.services:  # <pod>.<headless service>
            return base[1], base[0]
    # Dotted names outside the cluster's (e.g. a public host): None. The endpoints check accepts
    # them only as declared external endpoints; the NetworkPolicies give them an ipBlock rule.
    return ("", "") if len(parts) == 1 else None


def _endpoint_problems(m: Manifests, host: str, port: int) -> str | None:
    if (host, port) in m.external_endpoints:
        return None  # declared in the config (postgres.external, minio.external)
    if host not in LOCAL_HOSTS and m.external_endpoints and host in {h for h, _ in m.external_endpoints}:
        declared = sorted(p for h, p in m.external_endpoints if h == host)
        return f"{host}:{port}: the external service {host} is declared on port(s) {declared}, not {port}"
    resolved = _resolve_host(m, host)
    if resolved is None:
        if host in LOCAL_HOSTS:
            return None
        # Outside the cluster: only where the config declares a service there.
        return f"{host}:{port} is outside the cluster and not a declared external endpoint (postgres.external, minio.external)"
    service, pod_name = resolved
    if service not in m.services:
        return f"{host}:{port} names no Service in dist/"
    svc = m.services[service]
    if pod_name:  # a StatefulSet pod behind a headless Service: the container port must exist
        pods = m.selected_pods(svc)
        ports = {p["containerPort"] for pod in pods for _, c in pod.containers(init=False) for p in c.get("ports") or []}
        owners = {pod.owner["metadata"]["name"] for pod in pods}
        ordinal = re.match(r"^(?P<set>.+)-(?P<n>\d+)$", pod_name)
        if not ordinal or ordinal["set"] not in owners:
            return f"{host}:{port}: {pod_name!r} is not a pod of {', '.join(sorted(owners)) or 'any workload'}"
        replicas = next(int(p.owner["spec"].get("replicas", 1)) for p in pods if p.owner["metadata"]["name"] == ordinal["set"])
        if int(ordinal["n"]) >= replicas:
            return f"{host}:{port}: {ordinal['set']} has only {replicas} replica(s)"
        return None if port in ports else f"{host}:{port}: no container of {service}'s pods listens on {port}"
    if port not in m.service_ports(service):
        return f"{host}:{port}: Service {service} exposes {sorted(m.service_ports(service))}, not {port}"
    return None


def _hostports(text: str) -> Iterator[tuple[str, int]]:
    for match in URL_HOSTPORT.finditer(text):
        yield match["host"], int(match["port"])
    for match in DEV_TCP.finditer(text):
        yield match["host"], int(match["port"])
    for piece in re.split(r"[,\s]+", text):
        match = BARE_HOSTPORT.match(piece)
        if match:
            yield match["host"], int(match["port"])


@dataclass(frozen=True)
class Address:
    """An address a container uses. ``where`` names its source (``env NAME``, ``env NAME/NAME_PORT``
    or ``command``); ``env`` is the variable it came from ('' for command and args); ``port`` is as
    written (a FOO_PORT may not be a number: each caller says what that means); ``paired`` marks a
    FOO_HOST=<host> + FOO_PORT=<port> pair, whose host may be anything, not only a Service."""

    where: str
    env: str
    host: str
    port: str
    paired: bool = False


def container_addresses(env: dict[str, str], container: dict) -> Iterator[Address]:
    """Every address in a container's ``env`` values (host:port and URLs, FOO_HOST/FOO_PORT pairs)
    and its command and args: what the endpoints check resolves and the NetworkPolicies open."""
    for name, value in env.items():
        for host, port in _hostports(value):
            yield Address(f"env {name}", name, host, str(port))
        pair = f"{name[:-5]}_PORT" if name.endswith("_HOST") else None
        if pair in env:
            yield Address(f"env {name}/{pair}", name, value, str(env[pair]), paired=True)
    for arg in [*(container.get("command") or []), *(container.get("args") or [])]:
        for host, port in _hostports(arg):
            yield Address("command", "", host, str(port))


@functools.lru_cache(maxsize=256)
def _parsed_config(text: str) -> object:
    """A config file's YAML (JSON is YAML too), parsed once however many pods mount it; None when
    it is not YAML (cube.js). Callers only read the result."""
    try:
        return yaml.load(text, Loader=fast_yaml.LOADER)
    except yaml.YAMLError:
        return None


def _structured_hostports(text: str) -> Iterator[tuple[str, int]]:
    """host/port pairs in YAML/JSON config files (e.g. Dagster's workspace.yaml grpc_server)."""
    data = _parsed_config(text)
    if data is None:
        return
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            host = node.get("host", node.get("hostname"))
            port = node.get("port")
            if isinstance(host, str) and isinstance(port, int):
                yield host, port
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


@check("endpoints")
def _endpoints(m: Manifests) -> Iterator[Violation]:
    """Every host:port or URL in env or ConfigMap data names a Service (and port) we synthesize."""
    for pod in m.pods:
        for _, c in pod.containers():
            values = {v["name"]: v["value"] for v in c.get("env") or [] if v.get("value") is not None}
            for address in container_addresses(values, c):
                if address.paired:
                    # FOO_HOST=<service> with FOO_PORT=<port>: the pair must resolve too.
                    if not _resolve_host(m, address.host):
                        continue
                    problem = (
                        _endpoint_problems(m, address.host, int(address.port))
                        if address.port.isdigit() else f"port {address.port!r} is not a number"
                    )
                else:
                    problem = _endpoint_problems(m, address.host, int(address.port))
                if problem:
                    yield Violation("endpoints", pod.ref, f"container {c['name']} {address.where}: {problem}")
    for name, cm in m.config_maps.items():
        for text in _strings(cm.get("data") or {}):
            for host, port in [*_hostports(text), *_structured_hostports(text)]:
                problem = _endpoint_problems(m, host, port)
                if problem:
                    yield Violation("endpoints", ref(cm), problem)


# --- policy -------------------------------------------------------------------------------------


def detection_seconds(probe: dict) -> int:
    p = {**PROBE_DEFAULTS, **probe}
    return p["failureThreshold"] * p["periodSeconds"] + p["timeoutSeconds"]


@check("probes")
def _probes(m: Manifests) -> Iterator[Violation]:
    """Liveness on every long-running container; readiness exactly where a Service routes traffic
    (a readiness probe on a pod no Service selects only costs CPU and can only mislead)."""
    selected = {id(p) for svc in m.services.values() for p in m.selected_pods(svc)}
    for pod in m.pods:
        if not pod.long_running:
            continue
        behind_service = id(pod) in selected
        for _, c in pod.containers(init=False):
            for kind in ("readinessProbe", "livenessProbe"):
                probe = c.get(kind)
                if kind == "readinessProbe" and not behind_service:
                    if probe:
                        yield Violation("probes", pod.ref, f"container {c['name']} has a readinessProbe but no Service selects its pod")
                    continue
                if not probe:
                    yield Violation("probes", pod.ref, f"container {c['name']} has no {kind}")
                    continue
                seconds = detection_seconds(probe)
                if seconds > DETECTION_BUDGET_SECONDS:
                    yield Violation(
                        "probes", pod.ref, f"container {c['name']} {kind} detects a failure in {seconds}s (> {DETECTION_BUDGET_SECONDS}s)"
                    )
                port = (probe.get("httpGet") or probe.get("tcpSocket") or {}).get("port")
                names = {p.get("name") for p in c.get("ports") or []}
                numbers = {p["containerPort"] for p in c.get("ports") or []}
                if isinstance(port, str) and port not in names:
                    yield Violation("probes", pod.ref, f"container {c['name']} {kind} uses unknown port name {port!r}")
                if isinstance(port, int) and port not in numbers and kind == "readinessProbe" and numbers:
                    yield Violation("probes", pod.ref, f"container {c['name']} {kind} probes port {port}, which it does not declare")


@check("probe-cost")
def _probe_cost(m: Manifests) -> Iterator[Violation]:
    """Exec probes run inside the container, under its CPU limit: their recorded cost per call
    (floe/probe_costs.py, measured by bench/probes.py) over their period must stay well inside that
    limit, and each timeout must leave room for the call at the limit."""
    for pod in m.pods:
        for _, c in pod.containers(init=False):
            # The CPU the container may use: its limit (CFS quota), or its request where it has none.
            res = c.get("resources") or {}
            quantity = (res.get("limits") or {}).get("cpu") or (res.get("requests") or {}).get("cpu") or 0
            limit = cpu_millicores(quantity) / 1000
            phases = {"steady": ("readinessProbe", "livenessProbe"), "start-up": ("startupProbe",)}
            for phase, kinds in phases.items():
                share = 0.0
                for kind in kinds:
                    probe = c.get(kind) or {}
                    command = (probe.get("exec") or {}).get("command")
                    if not command:
                        continue
                    cost = probe_costs.recorded_cost(command)
                    if cost is None:
                        yield Violation(
                            "probe-cost", pod.ref,
                            f"container {c['name']} {kind} {command[0]!r} has no recorded cost: "
                            "measure it with `make bench` (bench/probes.py) and record it in floe/probe_costs.py",
                        )
                        continue
                    p = {**PROBE_DEFAULTS, **probe}
                    share += cost.cpu_seconds / p["periodSeconds"]
                    needed = probe_costs.TIMEOUT_HEADROOM * cost.cpu_seconds / limit if limit else float("inf")
                    if p["timeoutSeconds"] < needed:
                        yield Violation(
                            "probe-cost", pod.ref,
                            f"container {c['name']} {kind}: timeout {p['timeoutSeconds']}s < {needed:.1f}s "
                            f"({probe_costs.TIMEOUT_HEADROOM:g} x {cost.cpu_seconds:g} CPU-s at a {limit:g} CPU limit)",
                        )
                if limit and share > probe_costs.MAX_CPU_SHARE * limit:
                    yield Violation(
                        "probe-cost", pod.ref,
                        f"container {c['name']}: {phase} exec probes use {share * 1000:.0f}m of CPU "
                        f"(cost / period), over {probe_costs.MAX_CPU_SHARE:.0%} of its {limit * 1000:.0f}m limit",
                    )


@check("resources")
def _resources(m: Manifests) -> Iterator[Violation]:
    for pod in m.pods:
        for _, c in pod.containers():
            res = c.get("resources") or {}
            for bound in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in (res.get(bound) or {}):
                        yield Violation("resources", pod.ref, f"container {c['name']} has no {resource} {bound[:-1]}")
            req, lim = res.get("requests") or {}, res.get("limits") or {}
            if "cpu" in req and "cpu" in lim and cpu_millicores(lim["cpu"]) < cpu_millicores(req["cpu"]):
                yield Violation("resources", pod.ref, f"container {c['name']}: cpu limit below request")
            if "memory" in req and "memory" in lim and memory_bytes(lim["memory"]) < memory_bytes(req["memory"]):
                yield Violation("resources", pod.ref, f"container {c['name']}: memory limit below request")


def bound_service_accounts(m: Manifests) -> set[str]:
    """ServiceAccounts of dist/ that a RoleBinding of dist/ binds to a Role of dist/ (in the
    namespace): the only identities whose token a pod may mount (the k8s run launcher's)."""
    roles = {r["metadata"]["name"] for r in m.of_kind("Role")}
    accounts = {a["metadata"]["name"] for a in m.of_kind("ServiceAccount")}
    bound = set()
    for binding in m.of_kind("RoleBinding"):
        role = binding.get("roleRef") or {}
        if role.get("kind") != "Role" or role.get("name") not in roles:
            continue
        for subject in binding.get("subjects") or []:
            if subject.get("kind") == "ServiceAccount" and subject.get("name") in accounts and subject.get("namespace", m.namespace) == m.namespace:
                bound.add(subject["name"])
    return bound


def token_pods(m: Manifests) -> list[Pod]:
    """Pods that mount a ServiceAccount token the "security" check allows (they talk to the API)."""
    bound = bound_service_accounts(m)
    return [p for p in m.pods if p.spec.get("automountServiceAccountToken") is True and p.spec.get("serviceAccountName") in bound]


@check("security")
def _security(m: Manifests) -> Iterator[Violation]:
    bound = bound_service_accounts(m)
    accounts = {a["metadata"]["name"] for a in m.of_kind("ServiceAccount")}
    for doc in [*m.of_kind("ClusterRole"), *m.of_kind("ClusterRoleBinding")]:
        yield Violation("security", ref(doc), "cluster-wide RBAC: the stack needs namespaced Roles only")
    for role in m.of_kind("Role"):
        for rule in role.get("rules") or []:
            for key in ("apiGroups", "resources", "verbs"):
                if "*" in (rule.get(key) or []):
                    yield Violation("security", ref(role), f"rule with {key} '*': grant the exact ones used")
    for pod in m.pods:
        psc = pod.spec.get("securityContext") or {}
        if psc.get("runAsNonRoot") is not True:
            yield Violation("security", pod.ref, "pod securityContext.runAsNonRoot is not true")
        if psc.get("runAsUser") == 0:
            yield Violation("security", pod.ref, "pod runs as uid 0")
        account = pod.spec.get("serviceAccountName")
        if account is not None and account not in accounts:
            yield Violation("security", pod.ref, f"serviceAccountName {account!r} is not a ServiceAccount in dist/")
        if pod.spec.get("automountServiceAccountToken") is not False and account not in bound:
            yield Violation(
                "security", pod.ref,
                "automountServiceAccountToken is not false (only a pod whose ServiceAccount a RoleBinding in dist/ binds to a Role in dist/ may mount its token)",
            )
        if pod.spec.get("hostNetwork") or pod.spec.get("hostPID") or pod.spec.get("hostIPC"):
            yield Violation("security", pod.ref, "uses the host's network/PID/IPC namespace")
        pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
        for _, c in pod.containers():
            sc = c.get("securityContext") or {}
            name = c["name"]
            if sc.get("allowPrivilegeEscalation") is not False:
                yield Violation("security", pod.ref, f"container {name}: allowPrivilegeEscalation is not false")
            if sc.get("privileged"):
                yield Violation("security", pod.ref, f"container {name} is privileged")
            caps = sc.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []):
                yield Violation("security", pod.ref, f"container {name} does not drop ALL capabilities")
            if caps.get("add"):
                yield Violation("security", pod.ref, f"container {name} adds capabilities {caps['add']}")
            if sc.get("runAsUser") == 0:
                yield Violation("security", pod.ref, f"container {name} runs as uid 0")
            if ((sc.get("seccompProfile") or {}).get("type") or pod_seccomp) != "RuntimeDefault":
                yield Violation("security", pod.ref, f"container {name}: seccomp profile is not RuntimeDefault")


@check("pod-security")
def _pod_security(m: Manifests) -> Iterator[Violation]:
    """Pod Security "restricted", enforced on the namespace and met by every pod template."""
    for ns in m.of_kind("Namespace"):
        labels = ns.get("metadata", {}).get("labels") or {}
        for key, value in pod_security.namespace_labels().items():
            if labels.get(key) != value:
                yield Violation("pod-security", ref(ns), f"label {key} is {labels.get(key)!r}, expected {value!r}")
    for pod in m.pods:
        for problem in pod_security.restricted_violations(pod.spec):
            yield Violation("pod-security", pod.ref, f"violates PodSecurity restricted:{pod_security.VERSION}: {problem}")


@check("apply")
def _apply_idempotent(m: Manifests) -> Iterator[Violation]:
    """What makes a second ``kubectl apply`` of an unchanged dist/ report ``configured``: a field the
    API server never returns (Secret ``stringData`` is folded into ``data``) or a quantity it
    rewrites into canonical form ("1000m" is stored as "1"). Client-side apply diffs our object
    against the live one, so either shows up as a change on every apply."""
    for secret in m.of_kind("Secret"):
        if "stringData" in secret:
            yield Violation("apply", ref(secret), "uses write-only stringData: write base64 data instead")
    # A custom resource is applied with a JSON merge patch, where a list is one value: a field the
    # API server defaults inside a list (an HTTPRoute backendRef's weight) differs from ours on every
    # apply, so kubectl sends the whole list again. Writing every defaulted field keeps it equal.
    for doc in m.documents:
        if crd_schema_file(str(doc.get("kind")), str(doc.get("apiVersion"))) is None:
            continue
        with contextlib.suppress(LookupError):  # an unknown kind or version: the schema check says so
            schema = crd_schema(str(doc.get("kind")), str(doc.get("apiVersion")))
            for where in crd_defaults_left_out(doc, schema):
                yield Violation("apply", ref(doc), f"leaves out {where}, which the CRD defaults: kubectl apply (a JSON merge patch) would send it again on every apply; write the default")
    for deployment in m.of_kind("Deployment"):
        # strategy has the retainKeys patch strategy: a server-defaulted rollingUpdate under
        # {type: RollingUpdate} makes kubectl send $retainKeys on every apply.
        strategy = deployment["spec"].get("strategy") or {}
        if strategy.get("type", "RollingUpdate") == "RollingUpdate" and "strategy" in deployment["spec"] and not strategy.get("rollingUpdate"):
            yield Violation("apply", ref(deployment), "strategy RollingUpdate without rollingUpdate: the API server defaults it and kubectl sends $retainKeys on every apply (write maxSurge/maxUnavailable)")
    for pod in m.pods:
        for _, c in pod.containers():
            for bound, values in (c.get("resources") or {}).items():
                for resource, quantity in (values or {}).items():
                    yield from _canonical(pod.ref, f"container {c['name']} {bound}.{resource}", quantity)
        for volume in pod.spec.get("volumes") or []:
            size = (volume.get("emptyDir") or {}).get("sizeLimit")
            if size is not None:
                yield from _canonical(pod.ref, f"emptyDir {volume['name']} sizeLimit", size)


@check("config-checksum")
def _config_checksum(m: Manifests) -> Iterator[Violation]:
    """Every pod template that reads a ConfigMap or Secret carries the digest of exactly what it reads
    (floe/config_checksum.py), equal to what dist/'s objects hold now: a content change then changes
    the template, so the pods roll (a Job gets a new name and runs). No process of this stack reloads
    a config file, so no pod is exempt."""
    objects = config_checksum.index(m.documents)
    for pod in m.pods:
        expected = config_checksum.digest(pod.spec, objects)
        actual = ((pod_template(pod.owner).get("metadata") or {}).get("annotations") or {}).get(config_checksum.ANNOTATION)
        if expected is None and actual is not None:
            yield Violation("config-checksum", pod.ref, f"{config_checksum.ANNOTATION} on a pod that reads no ConfigMap or Secret")
        elif expected is not None and actual is None:
            reads = ", ".join(sorted({f"{k}/{n}" for k, n, _ in config_checksum.consumed(pod.spec)}))
            yield Violation("config-checksum", pod.ref, f"reads {reads} but its template has no {config_checksum.ANNOTATION}: a change would not reach its pods")
        elif actual != expected:
            yield Violation("config-checksum", pod.ref, f"{config_checksum.ANNOTATION} {actual} is stale (what it reads hashes to {expected})")
    for job in m.of_kind("Job"):
        base_name = (job["metadata"].get("labels") or {}).get("app.kubernetes.io/name", "")
        if job["metadata"]["name"] != config_checksum.job_name(base_name, job["spec"]):
            yield Violation(
                "config-checksum", ref(job),
                f"name is not {base_name}-<digest of its spec>: a changed Job would keep its name, and its immutable template could not be applied",
            )


def _canonical(obj: str, where: str, quantity: object) -> Iterator[Violation]:
    try:
        canonical = canonical_quantity(quantity)
    except ValueError as exc:
        yield Violation("apply", obj, f"{where}: {exc}")
        return
    if str(quantity) != canonical:
        yield Violation("apply", obj, f"{where} is {quantity!r}; the API server stores {canonical!r} (write that)")


@check("images")
def _images(m: Manifests) -> Iterator[Violation]:
    for pod in m.pods:
        for _, c in pod.containers():
            image = c.get("image", "")
            name, _, tag = image.rpartition(":")
            pinned = "@sha256:" in image or (name and tag and "/" not in tag and tag != "latest")
            if not pinned:
                yield Violation("images", pod.ref, f"container {c['name']}: image {image!r} is not pinned to a tag or digest")
            if not c.get("imagePullPolicy"):
                yield Violation("images", pod.ref, f"container {c['name']}: imagePullPolicy not set")


@check("volumes")
def _volumes(m: Manifests) -> Iterator[Violation]:
    """emptyDir only, except the volumeClaimTemplates of the StatefulSets the profile gives
    persistent storage (``persistent_workloads``); no stand-alone claim, no hostPath."""
    for doc in m.documents:
        if doc.get("kind") == "PersistentVolumeClaim":
            yield Violation("volumes", ref(doc), "PersistentVolumeClaims are not used by this stack (volumeClaimTemplates only, where the profile asks)")
        if doc.get("kind") == "StatefulSet" and doc["spec"].get("volumeClaimTemplates"):
            if doc["metadata"]["name"] not in m.persistent_workloads:
                yield Violation("volumes", ref(doc), "volumeClaimTemplates where the profile asks for no persistent storage (emptyDir only)")
                continue
            mounted = {mount["name"] for _, c in Pod(doc, pod_template(doc).get("spec", {}), {}).containers() for mount in c.get("volumeMounts") or []}
            for claim in doc["spec"]["volumeClaimTemplates"]:
                name = claim.get("metadata", {}).get("name")
                storage = ((claim.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
                if name not in mounted:
                    yield Violation("volumes", ref(doc), f"volumeClaimTemplate {name!r} is mounted by no container")
                if storage is None:
                    yield Violation("volumes", ref(doc), f"volumeClaimTemplate {name!r} requests no storage")
                else:
                    yield from _canonical(ref(doc), f"volumeClaimTemplate {name} storage", storage)
    for name in sorted(m.persistent_workloads - {d["metadata"]["name"] for d in m.of_kind("StatefulSet") if d["spec"].get("volumeClaimTemplates")}):
        yield Violation("volumes", f"StatefulSet/{name}", "the profile asks for persistent storage, but no StatefulSet of that name has volumeClaimTemplates")
    for pod in m.pods:
        for volume in pod.spec.get("volumes") or []:
            for forbidden in ("hostPath", "persistentVolumeClaim"):
                if forbidden in volume:
                    yield Violation("volumes", pod.ref, f"volume {volume['name']} uses {forbidden}")


@check("ingress")
def _ingress(m: Manifests) -> Iterator[Violation]:
    """Every Ingress rule names a host (no catch-all), and every backend a Service in dist/ with
    that port (number or name) and pods behind it."""
    for ing in m.of_kind("Ingress"):
        spec = ing.get("spec") or {}
        backends = [("defaultBackend", spec["defaultBackend"])] if spec.get("defaultBackend") else []
        for rule in spec.get("rules") or []:
            if not rule.get("host"):
                yield Violation("ingress", ref(ing), "a rule without host catches every host name: give each UI its host")
            for path in (rule.get("http") or {}).get("paths") or []:
                backends.append((f"{rule.get('host')}{path.get('path', '')}", path.get("backend") or {}))
        if not backends:
            yield Violation("ingress", ref(ing), "routes nothing (no rule, no defaultBackend)")
        for where, backend in backends:
            service = backend.get("service")
            if not service:
                yield Violation("ingress", ref(ing), f"{where}: backend is not a Service")
                continue
            name, port = service.get("name"), service.get("port") or {}
            wanted = port.get("number", port.get("name"))
            yield from _backend_service_violations(m, "ingress", ing, where, name, wanted, by_name=True)


@check("gateway")
def _gateway(m: Manifests) -> Iterator[Violation]:
    """The Gateway API wiring (ingress.gateway): each HTTPRoute attaches to the declared Gateway
    only (group, kind, namespace, name and listener as declared), names its hosts (no catch-all),
    each once across routes, and every backendRef is a Service of dist/ in the route's namespace with
    that port and pods behind it (no cross-namespace backend, which would need a ReferenceGrant). A
    ReferenceGrant grants the declared Gateway's namespace, from another namespace, a Secret only."""
    seen_hosts: dict[str, str] = {}
    for route in m.of_kind("HTTPRoute"):
        spec = route.get("spec") or {}
        parents = spec.get("parentRefs") or []
        if not parents:
            yield Violation("gateway", ref(route), "attaches to nothing (no parentRefs)")
        for parent in parents:
            got = {
                "group": parent.get("group", GATEWAY_API_GROUP),
                "kind": parent.get("kind", "Gateway"),
                "namespace": parent.get("namespace", route["metadata"].get("namespace")),
                "name": parent.get("name"),
                **({"sectionName": parent["sectionName"]} if parent.get("sectionName") else {}),
            }
            if (got["group"], got["kind"]) != (GATEWAY_API_GROUP, "Gateway"):
                yield Violation("gateway", ref(route), f"parentRef {got['group']}/{got['kind']} {got['name']} is not a Gateway")
            elif m.gateway is not None and got != m.gateway:
                yield Violation("gateway", ref(route), f"parentRef {_parent_text(got)} is not the declared Gateway {_parent_text(m.gateway)} (ingress.gateway)")
        hostnames = spec.get("hostnames") or []
        if not hostnames:
            yield Violation("gateway", ref(route), "no hostnames: the route would catch every host of the listener; give each UI its host")
        for host in hostnames:
            if host in seen_hosts:
                yield Violation("gateway", ref(route), f"host {host} is also routed by {seen_hosts[host]}")
            seen_hosts.setdefault(host, ref(route))
        rules = spec.get("rules") or []
        if not any(rule.get("backendRefs") for rule in rules):
            yield Violation("gateway", ref(route), "routes nothing (no rule with backendRefs)")
        for rule in rules:
            for backend in rule.get("backendRefs") or []:
                yield from _gateway_backend_problems(m, route, backend)
    for grant in m.of_kind("ReferenceGrant"):
        spec = grant.get("spec") or {}
        for source in spec.get("from") or []:
            if (source.get("group"), source.get("kind")) != (GATEWAY_API_GROUP, "Gateway"):
                yield Violation("gateway", ref(grant), f"grants {source.get('group')}/{source.get('kind')}: only the declared Gateway needs a grant")
            elif source.get("namespace") == m.namespace:
                yield Violation("gateway", ref(grant), "grants the stack's own namespace, which needs no grant")
            elif m.gateway is not None and source.get("namespace") != m.gateway["namespace"]:
                yield Violation("gateway", ref(grant), f"grants namespace {source.get('namespace')}, not the declared Gateway's {m.gateway['namespace']}")
        for target in spec.get("to") or []:
            if (target.get("group"), target.get("kind")) != ("", "Secret") or not target.get("name"):
                yield Violation("gateway", ref(grant), f"grants {target.get('group')!r}/{target.get('kind')} {target.get('name') or '(every name)'}: only the one certificate Secret")


def _parent_text(parent: dict) -> str:
    listener = f" listener {parent['sectionName']}" if parent.get("sectionName") else ""
    return f"{parent.get('kind')} {parent.get('namespace')}/{parent.get('name')}{listener}"


def _gateway_backend_problems(m: Manifests, route: dict, backend: dict) -> Iterator[Violation]:
    name, port = backend.get("name"), backend.get("port")
    where = f"backendRef {name}:{port}"
    if (backend.get("group", ""), backend.get("kind", "Service")) != ("", "Service"):
        yield Violation("gateway", ref(route), f"{where}: is a {backend.get('group')}/{backend.get('kind')}, not a Service")
        return
    if backend.get("namespace", m.namespace) != m.namespace:
        yield Violation("gateway", ref(route), f"{where}: in namespace {backend['namespace']}, not the stack's {m.namespace}")
        return
    if port is None:
        yield Violation("gateway", ref(route), f"{where}: a Service backendRef needs a port")
        return
    yield from _backend_service_violations(m, "gateway", route, where, name, port, by_name=False)


def _backend_service_violations(
    m: Manifests, check: str, obj: dict, where: str, name: str | None, port: object, *, by_name: bool
) -> Iterator[Violation]:
    """An Ingress or HTTPRoute backend: a Service of dist/, with that port (an Ingress may name it; a
    backendRef gives the number), not headless, with pods behind it."""
    svc = m.services.get(name)
    if svc is None:
        yield Violation(check, ref(obj), f"{where}: Service {name!r} is not in dist/")
        return
    ports = svc["spec"].get("ports") or []
    if not any(port == p.get("port") or (by_name and port == p.get("name")) for p in ports):
        have = ", ".join(f"{p.get('name')}:{p.get('port')}" for p in ports)
        yield Violation(check, ref(obj), f"{where}: Service {name} has no port {port!r} (has {have})")
    if svc["spec"].get("clusterIP") == "None":
        yield Violation(check, ref(obj), f"{where}: Service {name} is headless")
    if not m.selected_pods(svc):
        yield Violation(check, ref(obj), f"{where}: Service {name} selects no pods")


def _allowed_evictions(pdb_spec: dict, replicas: int) -> int:
    """Pods a drain may evict at once with every replica healthy (percentages as the disruption
    controller rounds them: maxUnavailable and minAvailable both round up)."""
    def absolute(value: object) -> int:
        if isinstance(value, str) and value.endswith("%"):
            return -(-int(value[:-1]) * replicas // 100)
        return int(value)  # type: ignore[arg-type]

    if "maxUnavailable" in pdb_spec:
        return max(0, min(replicas, absolute(pdb_spec["maxUnavailable"])))
    if "minAvailable" in pdb_spec:
        return max(0, replicas - absolute(pdb_spec["minAvailable"]))
    return replicas


@check("replicas")
def _replicas_check(m: Manifests) -> Iterator[Violation]:
    """A workload with more than one replica spreads them over nodes and has exactly one
    PodDisruptionBudget, which allows at least one voluntary eviction (a drain can proceed) and at
    most one (it keeps serving); a Deployment rolls without dropping below its replicas. A budget
    selects exactly one workload's pods."""
    budgets = m.of_kind("PodDisruptionBudget")
    for pdb in budgets:
        match = ((pdb.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        owners = {p.workload: p for p in m.pods if p.long_running and match and match.items() <= p.labels.items()}
        if len(owners) != 1:
            yield Violation("replicas", ref(pdb), f"selects the pods of {len(owners)} workloads ({', '.join(sorted(owners)) or 'none'}), not one")
            continue
        pod = next(iter(owners.values()))
        replicas = int(pod.owner["spec"].get("replicas", 1))
        allowed = _allowed_evictions(pdb.get("spec") or {}, replicas)
        if allowed < 1:
            yield Violation("replicas", ref(pdb), f"allows no voluntary eviction of {pod.ref}'s {replicas} pod(s): a drain would hang")
    for pod in m.pods:
        replicas = int(pod.owner["spec"].get("replicas", 1)) if pod.long_running else 1
        if replicas < 2:
            continue
        covering = [b for b in budgets if (((b.get("spec") or {}).get("selector") or {}).get("matchLabels") or {"": ""}).items() <= pod.labels.items()]
        if len(covering) != 1:
            yield Violation("replicas", pod.ref, f"{replicas} replicas with {len(covering)} PodDisruptionBudgets (needs exactly one)")
        elif _allowed_evictions(covering[0].get("spec") or {}, replicas) > 1:
            yield Violation("replicas", pod.ref, f"its PodDisruptionBudget lets a drain take more than one of its {replicas} pods at once")
        spread = pod.spec.get("topologySpreadConstraints") or []
        if not any(((c.get("labelSelector") or {}).get("matchLabels") or {"": ""}).items() <= pod.labels.items() for c in spread):
            yield Violation("replicas", pod.ref, f"{replicas} replicas without a topologySpreadConstraint selecting its own pods")
        if pod.owner["kind"] == "Deployment":
            strategy = pod.owner["spec"].get("strategy") or {}
            rolling = strategy.get("rollingUpdate") or {}
            if strategy.get("type") != "RollingUpdate" or rolling.get("maxUnavailable") not in (0, "0%"):
                yield Violation("replicas", pod.ref, "a replicated Deployment must roll with maxUnavailable 0 (RollingUpdate)")


def check_manifests(
    documents: list[dict],
    *,
    namespace: str,
    external_secrets: set[str] | None = None,
    external_endpoints: set[tuple[str, int]] | None = None,
    persistent_workloads: set[str] | None = None,
    gateway: dict[str, str] | None = None,
    only: Iterable[str] | None = None,
) -> list[Violation]:
    m = Manifests(documents, namespace, external_secrets or set(), external_endpoints or set(), persistent_workloads or set(), gateway)
    names = list(only) if only is not None else list(CHECKS)
    return [v for name in names for v in CHECKS[name](m)]


@check("connection-pools")
def _connection_pools(m: Manifests) -> Iterator[Violation]:
    """Every pooled PostgreSQL client (Polaris, Marquez, the Dagster webserver) has an explicit pool
    bound, and their sum at the replicas of dist/ fits the in-cluster server's max_connections
    (floe/connections.py; the config also checks the whole budget, NullPool clients included)."""
    from floe.connections import objects_problems

    for obj, message in objects_problems(m.documents):
        yield Violation("connection-pools", obj, message)
