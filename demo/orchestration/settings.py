"""Knobs of the Dagster pipeline, read from ``FLOE_PIPELINE_*`` environment variables.

The constructs set these in the cluster (see docs/pipeline.md); every one has a default that suits
the local demo. Lakehouse endpoints and credentials are not here: they are
:class:`~demo.lakehouse.settings.LakehouseSettings` (``FLOE_*``).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from demo.lakehouse.settings import FloeSettings

PIPELINE_ENV_PREFIX = "FLOE_PIPELINE_"


class PipelineSettings(FloeSettings):
    model_config = SettingsConfigDict(env_prefix=PIPELINE_ENV_PREFIX, extra="ignore", frozen=True)

    #: Cron of the schedule that appends new orders and rebuilds the marts (UTC).
    schedule_cron: str = "*/5 * * * *"
    #: New orders per schedule tick.
    orders_per_tick: int = Field(default=50, ge=1)
    #: Generator seed of the initial data set.
    seed: int = 42
    #: How often the daemon evaluates the seed sensor.
    sensor_interval_seconds: int = Field(default=30, ge=5)
    #: dbt target (profiles.yml in demo/dbt); unset: the profile's default target.
    dbt_target: str | None = None
