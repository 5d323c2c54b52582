"""Pod placement (``placement`` in the config, issue 18 item 10): imagePullSecrets, nodeSelector,
tolerations and priorityClassName, per component, for every pod the stack declares.

Applied once over the finished charts (JSON patches on each pod template), so every construct gets
it without carrying it, and a new construct is covered by construction. The run pods of the k8s
launcher are the exception: dagster-k8s builds them from the launcher config, which
constructs/dagster.py ``run_pod`` derives; that function places them itself (and this pass leaves
the PodTemplate alone, so the declared template stays the pod dagster-k8s makes).
"""

from __future__ import annotations

from cdk8s import Chart

from constructs import plain

from floe.config import Placement, StackConfig

#: Where the pod spec sits in each kind that owns one.
POD_SPEC_PATH = {
    "Deployment": "/spec/template/spec",
    "StatefulSet": "/spec/template/spec",
    "Job": "/spec/template/spec",
    "CronJob": "/spec/jobTemplate/spec/template/spec",
}


def toleration(t) -> dict:  # noqa: ANN001 - floe.config.Toleration
    fields = {"key": t.key, "operator": t.operator, "value": t.value, "effect": t.effect, "tolerationSeconds": t.toleration_seconds}
    return {k: v for k, v in fields.items() if v is not None}


def pod_spec_fields(placement: Placement, image_pull_secrets: tuple[str, ...]) -> dict:
    """The pod spec fields (Kubernetes' camelCase) a placement sets; empty ones are left out."""
    fields: dict = {}
    if image_pull_secrets:
        fields["imagePullSecrets"] = [{"name": name} for name in image_pull_secrets]
    if placement.node_selector:
        fields["nodeSelector"] = dict(placement.node_selector)
    if placement.tolerations:
        fields["tolerations"] = [toleration(t) for t in placement.tolerations]
    if placement.priority_class_name:
        fields["priorityClassName"] = placement.priority_class_name
    return fields


def component_of(name: str, config: StackConfig) -> str:
    return name.removeprefix(f"{config.name_prefix}-")


def apply_placement(charts: list[Chart], config: StackConfig) -> None:
    p = config.placement
    if not (p.image_pull_secrets or p.components or pod_spec_fields(p.default, ())):
        return  # nothing asked: no jsii round trip per object
    for chart in charts:
        for api_object, doc in plain.objects(chart):
            kind = doc.get("kind")
            if kind not in POD_SPEC_PATH:
                continue
            name = (doc["metadata"].get("labels") or {}).get("app.kubernetes.io/name") or doc["metadata"]["name"]
            fields = pod_spec_fields(p.of(component_of(name, config)), p.image_pull_secrets)
            if fields:
                plain.patch(api_object, *(("add", f"{POD_SPEC_PATH[kind]}/{field}", value) for field, value in fields.items()))
