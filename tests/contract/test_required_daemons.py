"""The daemon's liveness probe requires exactly the daemons Dagster itself requires for the rendered
dagster.yaml, for every run-monitoring / run-retries variant (issue 18 item 1): a daemon the probe
skips could die unnoticed, one it adds would restart a healthy daemon for ever."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from constructs.dagster import daemon_liveness_command, instance_config, required_daemons
from floe.config import StackConfig


@pytest.mark.parametrize(
    "dagster",
    [{}, {"run_monitoring": {"enabled": False}}, {"run_retries": {"max_retries": 2}}, {"run_monitoring": {"enabled": False}, "run_retries": {"max_retries": 1}}],
    ids=["default", "monitoring off", "retries", "retries without monitoring"],
)
def test_probe_requires_what_dagster_requires(dagster: dict, tmp_path: Path) -> None:
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    config = StackConfig.model_validate({"dagster": dagster})
    rendered = instance_config(config)
    # The daemons depend on the scheduler, coordinator, monitoring and retries settings, not on the
    # storage: a local SQLite storage and no S3 logs let Dagster open it here.
    rendered["storage"] = {"sqlite": {"base_dir": str(tmp_path / "storage")}}
    rendered.pop("compute_logs")
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(rendered))
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path))) as instance:
        assert tuple(instance.get_required_daemon_types()) == required_daemons(config)
        assert instance.run_monitoring_enabled == config.dagster.run_monitoring.enabled
        assert instance.run_retries_enabled == (config.dagster.run_retries.max_retries > 0)
        if instance.run_retries_enabled:
            assert instance.run_retries_max_retries == config.dagster.run_retries.max_retries
    probe = daemon_liveness_command(config)
    assert tuple(probe[probe.index("--tolerance") + 2 :]) == required_daemons(config)
