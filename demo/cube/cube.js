/*
 * floe: Cube configuration (mounted at /cube/conf/cube.js, next to lakehouse.js).
 *
 * Everything else comes from the environment the constructs set (constructs/cube.py): the
 * CUBEJS_* variables Cube reads itself, and the FLOE_* lakehouse variables lakehouse.js reads.
 * Cube packages are required lazily, inside driverFactory, so `node --check` and plain `require`
 * work outside the Cube image.
 */
'use strict';

const { lakeDriverClass } = require('./lakehouse');

/**
 * Seconds between two passes of the refresh worker. Cube's default is 30 s
 * (server-core OptsHandler.getScheduledRefreshInterval when CUBEJS_REFRESH_WORKER=true); each pass
 * re-reads every refresh key whose `every` has elapsed (10 s in the model: the marts' Iceberg
 * snapshot) and rebuilds the rollups whose key changed. 10 s + 10 s + the build keep "dbt finished
 * -> Cube serves the new marts" under the 60 s target (tests/semantic/test_cube_freshness.py).
 * Only the refresh worker gets it: a number here would make the API pods refresh too
 * (OptsHandler.configuredForScheduledRefresh).
 */
const REFRESH_WORKER_PASS_SECONDS = 10;
const isRefreshWorker = String(process.env.CUBEJS_REFRESH_WORKER).toLowerCase() === 'true';

module.exports = {
  ...(isRefreshWorker ? { scheduledRefreshTimer: REFRESH_WORKER_PASS_SECONDS } : {}),
  // Cube accepts a driver *instance* from driverFactory (server-core OptsHandler
  // assertDriverFactoryResult: "Must be either DriverConfig or driver instance"). With an instance,
  // the dialect and default concurrency come from CUBEJS_DB_TYPE (OptsHandler.getDbType), which the
  // constructs set to `duckdb`; the driver's own options (CUBEJS_DB_DUCKDB_*) are read from env by
  // the driver as usual, keyed by the data source we pass on.
  driverFactory: ({ dataSource } = {}) => {
    // Resolved through NODE_PATH=/cube/conf/node_modules:/cube/node_modules (Cube's Dockerfile).
    // eslint-disable-next-line global-require
    const { DuckDBDriver } = require('@cubejs-backend/duckdb-driver');
    const LakeDuckDBDriver = lakeDriverClass(DuckDBDriver);
    return new LakeDuckDBDriver({ dataSource });
  },
};
