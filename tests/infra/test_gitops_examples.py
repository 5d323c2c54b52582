"""The GitOps examples (docs/examples/, docs/production.md "GitOps") are valid and in step with dist/.

1. Each example validates against the fields its API publishes. Neither Argo CD's nor Flux's CRDs
   ship in a package this project can install offline (PyPI has no such package; npm's
   @kubernetes-models/argo-cd and flux-cd are compiled validators without unknown-field checks, for
   Node 22), so the schemas below are transcribed from the upstream sources named next to each,
   for the parts the examples use. Every object the examples touch is closed
   (``additionalProperties: false``) and lists all the properties upstream has at that level, so a
   misspelt or invented field fails, as it would under ``kubectl apply`` (strict field validation).
2. A real synth is laid out as a deploy repository (``<repo>/cluster/``, what
   ``python main.py --config config/cluster.yaml --out <repo>/cluster`` writes) and the file selection
   each tool makes is computed from the example itself: Argo CD's directory source (root files only
   unless ``recurse``, ``include``/``exclude`` globs) and Flux's GitRepository ``ignore`` (gitignore
   semantics, via pathspec) plus the Kustomization ``path`` (a generated kustomization takes the whole
   tree). Both must select exactly the chart files and never ``verify/``.
3. The examples' namespace, names and patches agree with the synthesized objects.
"""

from __future__ import annotations

import copy
import re
import fnmatch
from pathlib import Path, PurePosixPath

import jsonschema
import pathspec
import pytest
import yaml

from floe.config import StackConfig, load_config
from floe.synth import SynthResult, load_file, synthesize

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "docs" / "examples"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")

# --------------------------------------------------------------------------------------------------
# Schemas, transcribed (types, enums, patterns, required) from upstream.
# --------------------------------------------------------------------------------------------------

STRING = {"type": "string"}
BOOL = {"type": "boolean"}
INT = {"type": "integer"}
STRING_LIST = {"type": "array", "items": STRING}
STRING_MAP = {"type": "object", "additionalProperties": STRING}
OPEN = {"type": "object"}  # a level the examples do not use: type-checked only


def closed(properties: dict, required: tuple[str, ...] = ()) -> dict:
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


METADATA = closed(
    {"name": STRING, "namespace": STRING, "labels": STRING_MAP, "annotations": STRING_MAP, "finalizers": STRING_LIST},
    ("name", "namespace"),
)

# Argo CD Application, argoproj.io/v1alpha1: argoproj/argo-cd manifests/crds/application-crd.yaml at
# commit 0252c02d78dca163a742c508b57577fc2f1c1229 (spec, spec.source, spec.source.directory,
# spec.destination, spec.syncPolicy and below). Docs: https://argo-cd.readthedocs.io/en/stable/user-guide/directory/
# and https://argo-cd.readthedocs.io/en/stable/user-guide/auto_sync/
ARGO_SOURCE = closed(
    {
        "chart": STRING,
        "directory": closed({"exclude": STRING, "include": STRING, "jsonnet": OPEN, "recurse": BOOL}),
        "helm": OPEN,
        "kustomize": OPEN,
        "name": STRING,
        "path": STRING,
        "plugin": OPEN,
        "ref": STRING,
        "repoURL": STRING,
        "targetRevision": STRING,
    },
    ("repoURL",),
)
ARGO_APPLICATION = closed(
    {
        "apiVersion": {"const": "argoproj.io/v1alpha1"},
        "kind": {"const": "Application"},
        "metadata": METADATA,
        "spec": closed(
            {
                "destination": closed({"name": STRING, "namespace": STRING, "server": STRING}),
                "ignoreDifferences": {"type": "array", "items": OPEN},
                "info": {"type": "array", "items": OPEN},
                "project": STRING,
                "revisionHistoryLimit": INT,
                "source": ARGO_SOURCE,
                "sourceHydrator": OPEN,
                "sources": {"type": "array", "items": ARGO_SOURCE},
                "syncPolicy": closed(
                    {
                        "automated": closed({"allowEmpty": BOOL, "enabled": BOOL, "prune": BOOL, "selfHeal": BOOL}),
                        "managedNamespaceMetadata": closed({"annotations": STRING_MAP, "labels": STRING_MAP}),
                        "retry": closed(
                            {
                                "backoff": closed({"duration": STRING, "factor": INT, "maxDuration": STRING}),
                                "limit": INT,
                                "refresh": BOOL,
                            }
                        ),
                        "syncOptions": STRING_LIST,
                    }
                ),
            },
            ("destination", "project"),
        ),
    },
    ("apiVersion", "kind", "metadata", "spec"),
)

# Flux, the Go API types the CRDs are generated from (kubebuilder markers give required, enums and
# patterns). Docs: https://fluxcd.io/flux/components/kustomize/kustomizations/ and
# https://fluxcd.io/flux/components/source/gitrepositories/
DURATION = {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"}
LOCAL_REF = closed({"name": STRING}, ("name",))
# fluxcd/pkg apis/kustomize Selector (the target of a patch).
KUSTOMIZE_SELECTOR = closed(
    {
        "group": STRING,
        "version": STRING,
        "kind": STRING,
        "name": STRING,
        "namespace": STRING,
        "annotationSelector": STRING,
        "labelSelector": STRING,
    }
)
# fluxcd/kustomize-controller api/v1/kustomization_types.go (commit 02e1e732b855fe48302a83d260bc6ee7bebaf974)
# and api/v1/reference_types.go (commit 0c36aa09045a6ffc8dcfab133f50fd10378fb61c).
FLUX_KUSTOMIZATION = closed(
    {
        "apiVersion": {"const": "kustomize.toolkit.fluxcd.io/v1"},
        "kind": {"const": "Kustomization"},
        "metadata": METADATA,
        "spec": closed(
            {
                "commonMetadata": closed({"annotations": STRING_MAP, "labels": STRING_MAP}),
                "dependsOn": {
                    "type": "array",
                    "items": closed({"name": STRING, "namespace": STRING, "readyExpr": STRING}, ("name",)),
                },
                "decryption": OPEN,
                "interval": DURATION,
                "retryInterval": DURATION,
                "kubeConfig": OPEN,
                "path": STRING,
                "postBuild": OPEN,
                "prune": BOOL,
                "deletionPolicy": {"enum": ["MirrorPrune", "Delete", "WaitForTermination", "Orphan"]},
                "healthChecks": {"type": "array", "items": OPEN},
                "namePrefix": {"type": "string", "minLength": 1, "maxLength": 200},
                "nameSuffix": {"type": "string", "minLength": 1, "maxLength": 200},
                "patches": {
                    "type": "array",
                    "items": closed({"patch": STRING, "target": KUSTOMIZE_SELECTOR}),
                },
                "images": {"type": "array", "items": OPEN},
                "serviceAccountName": STRING,
                "sourceRef": closed(
                    {
                        "apiVersion": STRING,
                        "kind": {"enum": ["OCIRepository", "GitRepository", "Bucket", "ExternalArtifact"]},
                        "name": STRING,
                        "namespace": STRING,
                    },
                    ("kind", "name"),
                ),
                "suspend": BOOL,
                "targetNamespace": {"type": "string", "minLength": 1, "maxLength": 63},
                "timeout": DURATION,
                "force": BOOL,
                "wait": BOOL,
                "components": STRING_LIST,
                "ignoreMissingComponents": BOOL,
                "healthCheckExprs": {"type": "array", "items": OPEN},
                "driftIgnoreRules": {"type": "array", "items": OPEN},
            },
            ("interval", "prune", "sourceRef"),
        ),
    },
    ("apiVersion", "kind", "metadata", "spec"),
)
# fluxcd/source-controller api/v1/gitrepository_types.go (commit 4dd5b2996bdc77bf559186bf95c4ebd34fbb8063).
FLUX_GITREPOSITORY = closed(
    {
        "apiVersion": {"const": "source.toolkit.fluxcd.io/v1"},
        "kind": {"const": "GitRepository"},
        "metadata": METADATA,
        "spec": closed(
            {
                "url": {"type": "string", "pattern": r"^(http|https|ssh)://.*$"},
                "secretRef": LOCAL_REF,
                "interval": DURATION,
                "timeout": {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$"},
                "ref": closed({"branch": STRING, "tag": STRING, "semver": STRING, "name": STRING, "commit": STRING}),
                "verify": OPEN,
                "proxySecretRef": LOCAL_REF,
                "ignore": STRING,
                "suspend": BOOL,
                "recurseSubmodules": BOOL,
                "include": {"type": "array", "items": OPEN},
            },
            ("url", "interval"),
        ),
    },
    ("apiVersion", "kind", "metadata", "spec"),
)

SCHEMAS = {
    "argocd-application.yaml": ARGO_APPLICATION,
    "flux-kustomization.yaml": FLUX_KUSTOMIZATION,
    "flux-kustomization-bootstrap.yaml": FLUX_KUSTOMIZATION,
    "flux-gitrepository.yaml": FLUX_GITREPOSITORY,
}


def example(name: str) -> dict:
    docs = load_file(EXAMPLES / name)
    assert len(docs) == 1, f"{name}: one object per example file"
    return docs[0]


def schema_errors(name: str, document: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(SCHEMAS[name])
    return [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in validator.iter_errors(document)]


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_example_validates_against_its_api(name: str) -> None:
    assert schema_errors(name, example(name)) == []


@pytest.mark.parametrize(
    ("name", "path", "value"),
    [
        ("argocd-application.yaml", ("spec", "source", "directory", "recursive"), False),  # misspelt recurse
        ("argocd-application.yaml", ("spec", "syncPolicy", "automated", "selfheal"), True),  # wrong case
        ("argocd-application.yaml", ("spec", "syncPolicy", "retry", "limit"), "5"),  # wrong type
        ("flux-kustomization.yaml", ("spec", "sourceRef", "kind"), "GitRepo"),  # not in the enum
        ("flux-kustomization.yaml", ("spec", "interval"), "10 minutes"),  # not a Go duration
        ("flux-kustomization.yaml", ("spec", "patches", 0, "target", "apiGroup"), "batch"),  # unknown field
        ("flux-gitrepository.yaml", ("spec", "url"), "git@example.com:acme/floe-deploy.git"),  # scp-style URL
        ("flux-gitrepository.yaml", ("spec", "ref", "revision"), "main"),  # unknown field
    ],
)
def test_schema_rejects_a_wrong_field(name: str, path: tuple, value: object) -> None:
    """Mutation tests: the transcribed schemas fire on the mistakes they exist for."""
    document = copy.deepcopy(example(name))
    node = document
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    assert schema_errors(name, document), f"{name}: {'.'.join(map(str, path))}={value!r} was accepted"


@pytest.mark.parametrize(("name", "field"), [("flux-kustomization.yaml", "prune"), ("argocd-application.yaml", "project")])
def test_schema_requires_what_upstream_requires(name: str, field: str) -> None:
    document = copy.deepcopy(example(name))
    del document["spec"][field]
    assert schema_errors(name, document)


# --------------------------------------------------------------------------------------------------
# The examples against a real synth laid out as the deploy repository.
# --------------------------------------------------------------------------------------------------


def cluster_profile() -> StackConfig:
    """config/cluster.yaml as CI synthesizes it for a deploy repository: credentials from existing
    Secrets (FLOE__CREDENTIALS__SOURCE=existing), so no Secret ends up in git."""
    return load_config(REPO / "config" / "cluster.yaml", environ={"FLOE__CREDENTIALS__SOURCE": "existing"})


@pytest.fixture(scope="module")
def deploy_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, StackConfig, SynthResult]:
    if not (REPO / "config" / "cluster.yaml").exists():
        pytest.skip("config/cluster.yaml is not there yet")
    config = cluster_profile()
    repo = tmp_path_factory.mktemp("floe-deploy")
    (repo / "README.md").write_text("deploy repository: written by CI, never edited by hand\n")
    (repo / ".git").mkdir()
    (repo / ".git" / "config").write_text("[core]\n")
    result = synthesize(config, repo / "cluster", root=repo)
    return repo, config, result


def tree(repo: Path) -> list[str]:
    return sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file())


def chart_files(repo: Path, folder: str) -> list[str]:
    """What `kubectl apply -f dist/` takes: the top-level chart files, never verify/."""
    return sorted(f"{folder}/{p.name}" for p in (repo / folder).glob("*.k8s.yaml"))


def argocd_selection(repo: Path, source: dict, *, recurse: bool | None = None) -> list[str]:
    """Files an Argo CD directory source renders (docs: user-guide/directory.md): the root of
    ``path`` only unless ``recurse``; manifests by extension; then ``include`` and ``exclude``
    globs on the path relative to ``path``. The globs are checked both ways a glob can read ``*``
    (crossing '/' or not): the selection must not depend on it."""
    base = repo / source["path"]
    directory = source.get("directory", {})
    recurse = directory.get("recurse", False) if recurse is None else recurse
    files = base.rglob("*") if recurse else base.glob("*")
    selected = []
    for path in sorted(p for p in files if p.is_file() and p.suffix in MANIFEST_SUFFIXES):
        rel = path.relative_to(base).as_posix()
        verdicts = set()
        for match in (fnmatch.fnmatchcase, _segment_match):
            included = "include" not in directory or match(rel, directory["include"])
            excluded = "exclude" in directory and match(rel, directory["exclude"])
            verdicts.add(included and not excluded)
        assert len(verdicts) == 1, f"{rel}: Argo CD's selection depends on how '*' treats '/'"
        if verdicts.pop():
            selected.append(path.relative_to(repo).as_posix())
    return selected


def _segment_match(name: str, pattern: str) -> bool:
    """``*`` within one path segment (filepath.Match semantics)."""
    parts, pats = name.split("/"), pattern.split("/")
    return len(parts) == len(pats) and all(fnmatch.fnmatchcase(a, b) for a, b in zip(parts, pats))


def flux_selection(repo: Path, git: dict, kustomization: dict) -> list[str]:
    """Files Flux's generated kustomization.yaml takes: the GitRepository artifact (the repository
    less what ``spec.ignore`` excludes, gitignore semantics) under the Kustomization's ``path``,
    recursively (docs: kustomizations.md, "Generating a kustomization.yaml file")."""
    ignore = pathspec.GitIgnoreSpec.from_lines(git["spec"]["ignore"].splitlines())
    artifact = [f for f in tree(repo) if not ignore.match_file(f)]
    base = PurePosixPath(kustomization["spec"]["path"]).as_posix().removeprefix("./").strip("/")
    return [f for f in artifact if f.startswith(f"{base}/") and PurePosixPath(f).suffix in MANIFEST_SUFFIXES]


def test_argocd_applies_the_chart_files_and_never_verify(deploy_repo) -> None:
    repo, _, result = deploy_repo
    source = example("argocd-application.yaml")["spec"]["source"]
    assert (repo / source["path"]).resolve() == result.out_dir, "the Application's path is not the synthesized folder"
    assert "cluster/verify/verify.k8s.yaml" in tree(repo), "the synth no longer writes verify/: update this test"
    assert argocd_selection(repo, source) == chart_files(repo, "cluster")
    # Even with recurse switched on, exclude keeps the verification Job out.
    assert argocd_selection(repo, source, recurse=True) == chart_files(repo, "cluster")


def test_flux_applies_the_chart_files_and_never_verify(deploy_repo) -> None:
    repo, _, result = deploy_repo
    git, kustomization = example("flux-gitrepository.yaml"), example("flux-kustomization.yaml")
    assert (repo / kustomization["spec"]["path"]).resolve() == result.out_dir
    selected = flux_selection(repo, git, kustomization)
    assert selected == chart_files(repo, "cluster")
    # Without the ignore patterns, Flux's recursive build would take verify/ too: they are needed.
    unignored = {**git, "spec": {**git["spec"], "ignore": ""}}
    assert "cluster/verify/verify.k8s.yaml" in flux_selection(repo, unignored, kustomization)


def test_flux_kustomization_uses_the_gitrepository(deploy_repo) -> None:
    git, kustomization = example("flux-gitrepository.yaml"), example("flux-kustomization.yaml")
    ref = kustomization["spec"]["sourceRef"]
    assert (ref["kind"], ref["name"]) == (git["kind"], git["metadata"]["name"])
    assert ref.get("namespace", kustomization["metadata"]["namespace"]) == git["metadata"]["namespace"]
    argo = example("argocd-application.yaml")["spec"]["source"]
    assert (argo["repoURL"], argo["targetRevision"]) == (git["spec"]["url"], git["spec"]["ref"]["branch"]), (
        "both examples deploy the same repository and branch"
    )


def applied_documents(repo: Path, files: list[str]) -> list[dict]:
    return [d for f in files for d in load_file(repo / f)]


def test_namespace_and_names_match_the_profile(deploy_repo) -> None:
    repo, config, _ = deploy_repo
    documents = applied_documents(repo, chart_files(repo, "cluster"))
    namespaces = [d for d in documents if d["kind"] == "Namespace"]
    assert [n["metadata"]["name"] for n in namespaces] == [config.namespace]
    # The Namespace is in the first file, so a plain `kubectl apply -f` creates it first too; Argo CD
    # and Flux order Namespaces first on their own.
    assert namespaces[0] in load_file(repo / chart_files(repo, "cluster")[0])
    labels = namespaces[0]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    # Every other object names the namespace itself: neither tool needs to set or override it.
    assert {d["metadata"].get("namespace") for d in documents if d["kind"] != "Namespace"} == {config.namespace}

    app = example("argocd-application.yaml")
    assert app["spec"]["destination"]["namespace"] == config.namespace
    assert app["metadata"]["name"] == config.name_prefix, "label tracking would rewrite app.kubernetes.io/instance"
    options = app["spec"].get("syncPolicy", {}).get("syncOptions", [])
    assert not any(o.startswith("CreateNamespace=") for o in options), "the Namespace (Pod Security labels) is in the stack"
    assert "managedNamespaceMetadata" not in app["spec"].get("syncPolicy", {})
    assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert "finalizers" not in app["metadata"], "deleting the Application must not delete the namespace and its PVCs"

    spec = example("flux-kustomization.yaml")["spec"]
    assert "targetNamespace" not in spec, "kustomize's namespace transformer would also touch the Namespace object"
    assert "postBuild" not in spec, "variable substitution would rewrite ${...} in the stack's scripts"
    assert spec["prune"] is True


def test_no_secret_goes_to_git(deploy_repo) -> None:
    repo, config, _ = deploy_repo
    assert config.credentials.source == "existing"
    everything = applied_documents(repo, [f for f in tree(repo) if f.startswith("cluster/")])
    assert [d["metadata"]["name"] for d in everything if d["kind"] == "Secret"] == []


def json_pointer_remove(document: dict, pointer: str) -> None:
    """RFC 6902 ``remove``: the target must exist (else kustomize, and so Flux, fails the build)."""
    *parents, leaf = [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/")]
    node = document
    for part in parents:
        node = node[part]
    del node[leaf]


def selects(target: dict, document: dict) -> bool:
    group, _, version = document["apiVersion"].rpartition("/")
    wanted = {"group": group, "version": version, "kind": document["kind"], "name": document["metadata"]["name"]}
    if not all(target[k] == v for k, v in wanted.items() if k in target):
        return False
    labels = document["metadata"].get("labels") or {}
    for requirement in filter(None, target.get("labelSelector", "").split(",")):
        # Kubernetes label selector equality requirements: key=value, key!=value (an object without
        # the key matches !=).
        key, op, value = re.match(r"^\s*([^!=\s]+)\s*(!=|==|=)\s*(\S*)\s*$", requirement).groups()
        if (labels.get(key) == value) != (op != "!="):
            return False
    return True


def build(documents: list[dict], kustomization: dict) -> list[dict]:
    """The objects a Flux Kustomization applies: ``documents`` with its patches run as kustomize
    runs them (a target selects objects; JSON6902 ``remove`` needs the path; a strategic-merge patch
    takes the selected object's name and kind, and ``$patch: delete`` removes the object)."""
    documents = copy.deepcopy(documents)
    for patch in kustomization["spec"].get("patches", []):
        targets = [d for d in documents if selects(patch["target"], d)]
        assert targets, f"{kustomization['metadata']['name']}: patch for {patch['target']} selects nothing"
        operations = yaml.safe_load(patch["patch"])
        for document in targets:
            if isinstance(operations, list):  # JSON6902
                for op in operations:
                    assert op["op"] == "remove"
                    json_pointer_remove(document, op["path"])  # KeyError = the build would fail
            elif operations.get("$patch") == "delete":
                documents.remove(document)
            else:  # strategic merge into the selected object
                document["metadata"] = merge(document["metadata"], operations["metadata"])
    return documents


def merge(base: dict, patch: dict) -> dict:
    out = dict(base)
    for key, value in patch.items():
        out[key] = merge(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


def test_flux_patches_apply_to_the_synthesized_objects(deploy_repo) -> None:
    repo, config, _ = deploy_repo
    synthesized = applied_documents(repo, chart_files(repo, "cluster"))
    documents = build(synthesized, example("flux-kustomization.yaml"))
    bootstrap = build(synthesized, example("flux-kustomization-bootstrap.yaml"))
    jobs = [d for d in synthesized if d["kind"] == "Job"]
    assert jobs, "the stack has bootstrap Jobs"
    # The two builds split the stack: the bootstrap Jobs in floe-bootstrap, everything else in floe.
    key = lambda d: (d["kind"], d["metadata"]["name"])  # noqa: E731
    assert sorted(map(key, bootstrap)) == sorted(map(key, jobs))
    assert not [d for d in documents if d["kind"] == "Job"]
    assert sorted(map(key, documents + bootstrap)) == sorted(map(key, synthesized))
    assert all(job["metadata"]["labels"]["app.kubernetes.io/component"] == "bootstrap" for job in jobs)
    assert all("ttlSecondsAfterFinished" not in job["spec"] for job in bootstrap)
    namespace = next(d for d in documents if d["kind"] == "Namespace")
    assert namespace["metadata"]["name"] == config.namespace
    assert namespace["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/prune"] == "disabled"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted", "labels kept"


def test_flux_stays_ready_through_a_failed_then_repaired_bootstrap(deploy_repo) -> None:
    """kstatus (what Flux's wait and health checks use) reports a Job with a Failed condition as
    Failed, and it stays so until the object is replaced: a bootstrap Job that failed once (a slow
    first install past its deadline) would keep a waiting Kustomization not Ready although the
    reconcile CronJob repaired what it missed. So the Kustomization that waits holds no Job, and the
    one that holds them neither waits nor health-checks; a repaired synth renames the Job and prune
    removes the failed one."""
    repo, _, _ = deploy_repo
    synthesized = applied_documents(repo, chart_files(repo, "cluster"))
    floe, bootstrap = example("flux-kustomization.yaml"), example("flux-kustomization-bootstrap.yaml")
    waited = build(synthesized, floe)
    assert floe["spec"]["wait"] is True and not [d for d in waited if d["kind"] == "Job"]
    # A failed run of the reconcile CronJob is a Job owned by the CronJob: not in any build (kstatus
    # reports a CronJob Current).
    assert {d["kind"] for d in waited} >= {"CronJob", "Deployment", "StatefulSet"}
    spec = bootstrap["spec"]
    assert spec["wait"] is False and not spec.get("healthChecks") and not spec.get("healthCheckExprs")
    assert spec["prune"] is True and spec["dependsOn"] == [{"name": floe["metadata"]["name"]}]
    assert (spec["sourceRef"], spec["path"]) == (floe["spec"]["sourceRef"], floe["spec"]["path"])
    git = example("flux-gitrepository.yaml")
    assert flux_selection(repo, git, bootstrap) == flux_selection(repo, git, floe) == chart_files(repo, "cluster")


def test_bootstrap_jobs_are_content_named(deploy_repo) -> None:
    """Why prune is safe for Jobs: a changed Job is a new name (its pod template is immutable), so
    GitOps creates the new one and prunes the old, never patches a Job in place."""
    repo, _, _ = deploy_repo
    for job in (d for d in applied_documents(repo, chart_files(repo, "cluster")) if d["kind"] == "Job"):
        base = job["metadata"]["labels"]["app.kubernetes.io/name"]
        name = job["metadata"]["name"]
        assert name.startswith(f"{base}-") and len(name) == len(base) + 9, name
        int(name[-8:], 16)
