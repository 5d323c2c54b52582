"""The environment variables Cube and Cube Store read, each with where upstream reads it.

Curated by hand from the upstream sources named below (cube-js/cube at the 1.7.x line) so that a
misspelt or invented variable in constructs/cube.py or constructs/cubestore.py fails a test instead
of being silently ignored by the container. Add a name only with its source.
"""

from __future__ import annotations

CUBE_ENV_TS = "packages/cubejs-backend-shared/src/env.ts"
CUBE_DOCS = "docs: reference/configuration/environment-variables"
DUCKDB_DRIVER = "packages/cubejs-duckdb-driver/src/DuckDBDriver.ts + env.ts duckdb* getters"
CUBESTORE_CONFIG = "rust/cubestore/cubestore/src/config/mod.rs Config::default"
CUBESTORE_MINIO = "rust/cubestore/cubestore/src/remotefs/minio.rs MINIORemoteFs::new"

#: Variables the Cube API / refresh worker (cubejs/cube image) read.
CUBE: dict[str, str] = {
    "NODE_ENV": f"{CUBE_ENV_TS} (nodeEnv, refreshWorkerMode default); server-core OptsHandler.isDevMode",
    "PORT": f"{CUBE_ENV_TS} port: asPortOrSocket(process.env.PORT || '4000')",
    "CUBEJS_API_SECRET": f"{CUBE_DOCS}#cubejs_api_secret; OptsHandler apiSecret: getEnv('apiSecret')",
    "CUBEJS_DB_TYPE": f"{CUBE_ENV_TS} dbType; OptsHandler.getDbType (driver-instance factories)",
    "CUBEJS_DEV_MODE": f"{CUBE_ENV_TS} devMode",
    "CUBEJS_REFRESH_WORKER": f"{CUBE_ENV_TS} refreshWorkerMode",
    "CUBEJS_PRE_AGGREGATIONS_BUILDER": f"{CUBE_ENV_TS} preAggregationsBuilder",
    "CUBEJS_PRE_AGGREGATIONS_SCHEMA": f"{CUBE_ENV_TS} preAggregationsSchema",
    "CUBEJS_SCHEMA_PATH": f"{CUBE_ENV_TS} schemaPath (default 'model')",
    "CUBEJS_CACHE_AND_QUEUE_DRIVER": f"{CUBE_ENV_TS} cacheAndQueueDriver",
    "CUBEJS_CUBESTORE_HOST": f"{CUBE_ENV_TS} cubeStoreHost; OptsHandler skipOnEnv (enables Cube Store)",
    "CUBEJS_CUBESTORE_PORT": f"{CUBE_ENV_TS} cubeStorePort",
    "CUBEJS_TELEMETRY": f"{CUBE_ENV_TS} telemetry",
    "CUBEJS_PG_SQL_PORT": f"{CUBE_ENV_TS} pgSqlPort",
    "CUBEJS_SQL_USER": f"{CUBE_ENV_TS} sqlUser",
    "CUBEJS_SQL_PASSWORD": f"{CUBE_ENV_TS} sqlPassword",
    "CUBEJS_SCHEDULED_REFRESH_TIMEZONES": f"{CUBE_ENV_TS} scheduledRefreshTimezones",
    "CUBEJS_DB_DUCKDB_MEMORY_LIMIT": f"{DUCKDB_DRIVER} duckdbMemoryLimit -> SET memory_limit",
    "CUBEJS_DB_DUCKDB_SCHEMA": f"{DUCKDB_DRIVER} duckdbSchema",
    "CUBEJS_DB_DUCKDB_DATABASE_PATH": f"{DUCKDB_DRIVER} duckdbDatabasePath",
    "CUBEJS_DB_DUCKDB_EXTENSIONS": f"{DUCKDB_DRIVER} duckdbExtensions -> INSTALL x; LOAD x",
    "CUBEJS_DB_DUCKDB_COMMUNITY_EXTENSIONS": f"{DUCKDB_DRIVER} duckdbCommunityExtensions",
    # Not Cube's, but read inside the Cube process: DuckDB's default extension_directory is
    # ~/.duckdb/extensions (duckdb docs: extensions/overview "Extension directory").
    "HOME": "DuckDB default extension_directory (~/.duckdb/extensions); POSIX",
    # Not Cube's either: Node.js reads it (doc/api/cli.md "NODE_OPTIONS", --max-old-space-size is
    # one of the V8 options allowed there); the image runs `cubejs server`, a node script, with no
    # entrypoint of its own (cube-js/cube packages/cubejs-docker/latest.Dockerfile: CMD only).
    "NODE_OPTIONS": "Node.js doc/api/cli.md NODE_OPTIONS (--max-old-space-size and --require allowed)",
}

#: Read inside the Cube process by the OpenTelemetry SDK that NODE_OPTIONS --require preloads
#: (demo/cube/otel/tracing.js; @opentelemetry/* 0.301 / 3.1 as installed from its lock).
#: tests/semantic/test_cube_tracing.py also checks each name appears in the installed code.
OTEL_SDK_NODE = "@opentelemetry/sdk-node dist/create-from-env.cjs + dist/utils.cjs"
OTEL_EXPORTER_BASE = "@opentelemetry/otlp-exporter-base dist/configuration/shared-env-configuration.cjs"
OTEL: dict[str, str] = {
    "OTEL_SERVICE_NAME": "@opentelemetry/resources envDetector / serviceNameEnvDetector",
    "OTEL_EXPORTER_OTLP_ENDPOINT": f"{OTEL_EXPORTER_BASE} (+ /v1/traces)",
    "OTEL_EXPORTER_OTLP_TIMEOUT": OTEL_EXPORTER_BASE,
    "OTEL_EXPORTER_OTLP_PROTOCOL": f"{OTEL_SDK_NODE} getOtlpProtocolFromEnv",
    "OTEL_TRACES_EXPORTER": f"{OTEL_SDK_NODE} getSpanProcessorsFromEnv",
    "OTEL_METRICS_EXPORTER": f"{OTEL_SDK_NODE} getMetricReadersFromEnv (default otlp)",
    "OTEL_LOGS_EXPORTER": "@opentelemetry/sdk-node dist/sdk.cjs configureLoggerProviderFromEnv (default otlp)",
    "OTEL_PROPAGATORS": f"{OTEL_SDK_NODE} getPropagatorFromEnv",
    "OTEL_BSP_MAX_QUEUE_SIZE": f"{OTEL_SDK_NODE} createBatchSpanProcessorFromEnv",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": f"{OTEL_SDK_NODE} createBatchSpanProcessorFromEnv",
    "OTEL_BSP_SCHEDULE_DELAY": f"{OTEL_SDK_NODE} createBatchSpanProcessorFromEnv",
    "OTEL_BSP_EXPORT_TIMEOUT": f"{OTEL_SDK_NODE} createBatchSpanProcessorFromEnv",
}

#: Variables Cube Store (cubejs/cubestore image, `cubestored`) reads.
CUBESTORE: dict[str, str] = {
    "CUBESTORE_SERVER_NAME": f"{CUBESTORE_CONFIG} server_name",
    "CUBESTORE_META_PORT": f"{CUBESTORE_CONFIG} metastore_bind_address",
    "CUBESTORE_META_ADDR": f"{CUBESTORE_CONFIG} metastore_remote_address",
    "CUBESTORE_WORKERS": f"{CUBESTORE_CONFIG} select_workers",
    "CUBESTORE_WORKER_PORT": f"{CUBESTORE_CONFIG} worker_bind_address",
    "CUBESTORE_HTTP_PORT": f"{CUBESTORE_CONFIG} http_bind_address",
    "CUBESTORE_STATUS_PORT": f"{CUBESTORE_CONFIG} status_bind_address",
    "CUBESTORE_PORT": f"{CUBESTORE_CONFIG} bind_address (MySQL protocol, 3306)",
    "CUBESTORE_DATA_DIR": f"{CUBESTORE_CONFIG} data_dir",
    "CUBESTORE_REMOTE_DIR": f"{CUBESTORE_CONFIG} store_provider Filesystem",
    "CUBESTORE_SELECT_WORKERS": f"{CUBESTORE_CONFIG} select_worker_pool_size",
    "CUBESTORE_QUERY_TIMEOUT": f"{CUBESTORE_CONFIG} query_timeout",
    "CUBESTORE_MINIO_BUCKET": f"{CUBESTORE_CONFIG} store_provider MINIO",
    "CUBESTORE_MINIO_SUB_PATH": f"{CUBESTORE_CONFIG} store_provider MINIO",
    "CUBESTORE_MINIO_SERVER_ENDPOINT": CUBESTORE_MINIO,
    "CUBESTORE_MINIO_REGION": CUBESTORE_MINIO,
    "CUBESTORE_MINIO_ACCESS_KEY_ID": CUBESTORE_MINIO,
    "CUBESTORE_MINIO_SECRET_ACCESS_KEY": CUBESTORE_MINIO,
    "CUBESTORE_MINIO_CREDS_REFRESH_EVERY_MINS": f"{CUBESTORE_MINIO}; rust/cubestore/README.md",
}

#: Ours: the FLOE_* lakehouse settings demo/cube/lakehouse.js reads (its ENV table; a test checks
#: the two agree and that each is a LakehouseSettings field).
OURS_CUBE: dict[str, str] = {
    name: "demo/cube/lakehouse.js ENV (demo/lakehouse/settings.py LakehouseSettings)"
    for name in (
        "FLOE_CATALOG_URI",
        "FLOE_CATALOG_WAREHOUSE",
        "FLOE_CATALOG_OAUTH2_URI",
        "FLOE_CATALOG_CLIENT_ID",
        "FLOE_CATALOG_CLIENT_SECRET",
        "FLOE_CATALOG_SCOPE",
        "FLOE_S3_ENDPOINT",
        "FLOE_S3_ACCESS_KEY_ID",
        "FLOE_S3_SECRET_ACCESS_KEY",
        "FLOE_S3_REGION",
        "FLOE_DUCKDB_EXTENSION_DIRECTORY",
        "FLOE_DUCKDB_MEMORY_LIMIT",
        "FLOE_DUCKDB_TEMP_DIRECTORY",
        "FLOE_DUCKDB_MAX_TEMP_DIRECTORY_SIZE",
    )
}

#: Ours on Cube Store workers: only a Kubernetes $(POD_NAME) helper for CUBESTORE_SERVER_NAME.
OURS_CUBESTORE: dict[str, str] = {"POD_NAME": "constructs/cubestore.py: expanded into CUBESTORE_SERVER_NAME by the kubelet"}


def unknown_names(names: set[str], *, cubestore: bool) -> set[str]:
    """The names in ``names`` that the container's upstream (or our own code) never reads."""
    known = {**CUBESTORE, **OURS_CUBESTORE} if cubestore else {**CUBE, **OTEL, **OURS_CUBE}
    return names - known.keys()
