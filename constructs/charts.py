"""The stack's charts, one per layer, in apply order (0000-namespace, 0001-infrastructure, ...)."""

from __future__ import annotations

from cdk8s import App, Chart

from constructs import base, k8s, plain
from constructs.backup import PostgresBackup
from constructs.dagster import Dagster
from constructs.gateway import UiRoutes
from constructs.cube import Cube
from constructs.cubestore import CubeStore
from constructs.ingress import UiIngress
from constructs.jaeger import Jaeger
from constructs.marquez import Marquez
from constructs.minio import BucketJob, Minio
from constructs.network import NetworkPolicies
from constructs.placement import apply_placement
from constructs.polaris import Polaris
from constructs.postgres import Postgres
from constructs.reconcile import Reconcile
from constructs.secrets import StackSecretObjects
from constructs.verify import VerifyJob
from floe import pod_security
from floe.config import StackConfig
from floe.credentials import Credentials


#: The charts' layers in apply order; each chart's id (so its file name) is ``NNNN-<layer>``, its
#: place here. cdk8s' own way to number the files (an app whose charts depend on each other, via
#: IndexedChartNamer) made it add an edge from every object of a chart to every object of the one
#: before and sort the whole tree by them: a fifth of a second of node at every synth for the same
#: names. With no dependency between charts, cdk8s writes them in the order they were added and
#: names each file after its id (a single path component that is a DNS label is used as it is).
LAYERS = ("namespace", "infrastructure", "observability", "orchestration", "semantic", "verify")


def chart_id(layer: str) -> str:
    return f"{LAYERS.index(layer):04d}-{layer}"


class LayerChart(plain.PlainChart):
    """A chart whose objects all live in the stack's namespace and carry its layer label (rendered
    in Python: constructs/plain.py)."""

    layer: str = ""

    def __init__(self, scope: App, *, config: StackConfig) -> None:
        super().__init__(
            scope,
            chart_id(self.layer),
            namespace=config.namespace,
            labels={"app.kubernetes.io/part-of": base.PART_OF, base.LAYER_LABEL: self.layer},
            disable_resource_name_hashes=True,
        )


class NamespaceChart(plain.PlainChart):
    layer = "namespace"

    def __init__(self, scope: App, *, config: StackConfig) -> None:
        # No `namespace=` here: a Namespace object is cluster-scoped.
        super().__init__(scope, chart_id(self.layer), disable_resource_name_hashes=True)
        plain.api_object(
            k8s.KubeNamespace,
            self,
            "namespace",
            metadata=base.meta(
                config.namespace,
                # Pod Security "restricted" is enforced (and audited, warned) by the API server itself.
                {"app.kubernetes.io/part-of": base.PART_OF, base.LAYER_LABEL: "infrastructure", **pod_security.namespace_labels()},
            ),
        )


class InfrastructureChart(LayerChart):
    """Credentials, PostgreSQL, MinIO (+ buckets Job), Polaris (+ init Job)."""

    layer = "infrastructure"

    def __init__(self, scope: App, *, config: StackConfig, credentials: Credentials | None) -> None:
        super().__init__(scope, config=config)
        if credentials is not None:
            StackSecretObjects(self, "secrets", config=config, credentials=credentials, layer=self.layer)
        # An external server (postgres.external, minio.external) replaces the in-cluster one: no
        # workload, Service, init script or Secret of it is synthesized, and every client is wired
        # to it by config.endpoints. The buckets Job still creates missing buckets there.
        if config.postgres.external is None:
            Postgres(self, "postgres", config=config, layer=self.layer)
            if config.postgres.backup is not None:
                PostgresBackup(self, "postgres-backup", config=config, layer=self.layer)
        if config.minio.external is None:
            Minio(self, "minio", config=config, layer=self.layer)
        else:
            BucketJob(self, "minio-buckets", config=config, layer=self.layer)
        Polaris(self, "polaris", config=config, layer=self.layer)


class ObservabilityChart(LayerChart):
    """Jaeger (traces) and Marquez (lineage), each switchable."""

    layer = "observability"

    def __init__(self, scope: App, *, config: StackConfig) -> None:
        super().__init__(scope, config=config)
        if config.jaeger.enabled:
            Jaeger(self, "jaeger", config=config, layer=self.layer)
        if config.marquez.enabled:
            Marquez(self, "marquez", config=config, layer=self.layer)


class OrchestrationChart(LayerChart):
    """Dagster: webserver, daemon and the user-code server running the demo pipeline; the reconcile CronJob."""

    layer = "orchestration"

    def __init__(self, scope: App, *, config: StackConfig) -> None:
        super().__init__(scope, config=config)
        Dagster(self, "dagster", config=config, layer=self.layer)
        if config.reconcile.enabled:
            # Heals lost PostgreSQL/MinIO state; reads the objects of the earlier charts (constructs/reconcile.py).
            Reconcile(self, "reconcile", config=config, layer=self.layer)


class SemanticChart(LayerChart):
    """Cube (API, SQL API, refresh worker) and Cube Store (router + workers)."""

    layer = "semantic"

    def __init__(self, scope: App, *, config: StackConfig) -> None:
        super().__init__(scope, config=config)
        # SEMANTIC-LAYER: constructs are added here.
        CubeStore(self, "cubestore", config=config, layer=self.layer)
        Cube(self, "cube", config=config, layer=self.layer)
        if config.ingress.enabled:
            # Last layer: every UI's Service exists by the time the Ingress (or the HTTPRoutes of
            # ingress.gateway, its alternative) routes to it.
            if config.ingress.gateway is not None:
                UiRoutes(self, "gateway-routes", config=config, layer=self.layer)
            else:
                UiIngress(self, "ingress", config=config, layer=self.layer)


class VerifyChart(LayerChart):
    """The verification Job template. floe/synth.py writes it to dist/verify/, out of reach of
    `kubectl apply -f dist/`: `make verify` creates a run of it once the stack is up."""

    layer = "verify"

    def __init__(self, scope: App, *, config: StackConfig) -> None:
        super().__init__(scope, config=config)
        VerifyJob(self, "verify", config=config, layer=self.layer)


def build_app(app: App, config: StackConfig, credentials: Credentials | None) -> list[Chart]:
    """Add every chart to ``app``, in apply order (:data:`LAYERS`: their files sort in it)."""
    charts: list[Chart] = [
        NamespaceChart(app, config=config),
        InfrastructureChart(app, config=config, credentials=credentials),
        ObservabilityChart(app, config=config),
        OrchestrationChart(app, config=config),
        SemanticChart(app, config=config),
    ]
    # Last, so its file sorts after the layers; floe/synth.py moves it to dist/verify/.
    verify = VerifyChart(app, config=config)
    # Derived from the objects of every other chart (so built last), the verification Job's
    # included, but placed in the namespace chart: the policies are applied first, before any pod.
    NetworkPolicies(charts[0], "network-policies", config=config, charts=[*charts[1:], verify])
    # After every object exists (and after the derivations that read pod templates: placement
    # changes none of their inputs), but before the Jobs are named over their final spec: a Job whose
    # placement changed must be a new Job (its pod template is immutable).
    apply_placement([*charts, verify], config)
    # Last of all: every ConfigMap and Secret exists, so each pod template gets the digest of what
    # it reads (and each Job its final, content-derived name).
    base.add_config_checksums([*charts, verify])
    # Every object is final: render the charts now, so app.synth()'s call back returns at once.
    plain.prepare([*charts, verify])
    return [*charts, verify]
