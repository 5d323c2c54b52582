/*
 * floe: how Cube's DuckDB reaches the lakehouse (Iceberg REST catalog + S3), as plain functions.
 *
 * Required by cube.js; needs no Cube package at load time, so `node` can require it in tests
 * (tests/semantic) and compare lakehouseInitStatements() with Python's
 * demo.lakehouse.duckdb.init_sql() for the same FLOE_* settings.
 *
 * Why not the driver's `initSql` option: @cubejs-backend/duckdb-driver runs initSql once per
 * DuckDB instance and swallows its errors (packages/cubejs-duckdb-driver/src/DuckDBDriver.ts,
 * init(): `console.error('DuckDB - error on init sql (skipping)')`), and getInitiatedState()
 * caches the resulting initPromise. A failed ATTACH (Polaris not ready yet) would leave the
 * instance without the `lake` catalog until the pod restarts. Instead, lakeDriverClass() wraps
 * getInitiatedState() -- the one method both query() and stream() await before touching DuckDB --
 * so the catalog statements run before the first query, a failure fails that query, and the next
 * query runs them again. Every statement is idempotent (CREATE OR REPLACE SECRET, ATTACH IF NOT
 * EXISTS, LOAD), so re-running after a partial failure is safe.
 */
'use strict';

/** Extensions in load order: iceberg reads manifests with avro (demo/lakehouse/duckdb.py EXTENSIONS). */
const EXTENSIONS = ['avro', 'httpfs', 'iceberg'];
const DEFAULT_ALIAS = 'lake';

/** The FLOE_* variables (demo/lakehouse/settings.py LakehouseSettings, env_prefix FLOE_) read here. */
const ENV = {
  catalogUri: 'FLOE_CATALOG_URI',
  catalogWarehouse: 'FLOE_CATALOG_WAREHOUSE',
  catalogOauth2Uri: 'FLOE_CATALOG_OAUTH2_URI',
  catalogClientId: 'FLOE_CATALOG_CLIENT_ID',
  catalogClientSecret: 'FLOE_CATALOG_CLIENT_SECRET',
  catalogScope: 'FLOE_CATALOG_SCOPE',
  s3Endpoint: 'FLOE_S3_ENDPOINT',
  s3AccessKeyId: 'FLOE_S3_ACCESS_KEY_ID',
  s3SecretAccessKey: 'FLOE_S3_SECRET_ACCESS_KEY',
  s3Region: 'FLOE_S3_REGION',
  duckdbExtensionDirectory: 'FLOE_DUCKDB_EXTENSION_DIRECTORY',
  // DuckDB settings sized to the container (LakehouseSettings.duckdb_*). Cube's DuckDB driver
  // 1.7.43 has no option or env var for temp_directory / max_temp_directory_size
  // (DuckDBDriver.configureConnection sets only s3_*, memory_limit and schema); Cube sets
  // memory_limit through the driver's own CUBEJS_DB_DUCKDB_MEMORY_LIMIT instead.
  duckdbMemoryLimit: 'FLOE_DUCKDB_MEMORY_LIMIT',
  duckdbTempDirectory: 'FLOE_DUCKDB_TEMP_DIRECTORY',
  duckdbMaxTempDirectorySize: 'FLOE_DUCKDB_MAX_TEMP_DIRECTORY_SIZE',
};

/** Defaults identical to LakehouseSettings'. */
const DEFAULTS = {
  FLOE_CATALOG_SCOPE: 'PRINCIPAL_ROLE:ALL',
  FLOE_S3_REGION: 'us-east-1',
};

/** A SQL string literal (single quotes doubled), like _sql_str in demo/lakehouse/duckdb.py. */
function sqlString(value) {
  return `'${String(value).replace(/'/g, "''")}'`;
}

function setting(env, name) {
  const value = env[name];
  if (value !== undefined && value !== '') return value;
  if (name in DEFAULTS) return DEFAULTS[name];
  throw new Error(`floe: environment variable ${name} is required to attach the lakehouse catalog`);
}

/** host:port of the S3 endpoint (LakehouseSettings.s3_endpoint_hostport). */
function s3HostPort(endpoint) {
  const i = endpoint.indexOf('://');
  return (i >= 0 ? endpoint.slice(i + 3) : endpoint).replace(/\/+$/, '');
}

/**
 * The statements that make the Iceberg catalog available as database `alias`: the same list, in
 * the same order, as Python's init_sql(LakehouseSettings(), alias=alias).
 */
function lakehouseInitStatements(env, alias = DEFAULT_ALIAS) {
  const statements = ['SET autoinstall_known_extensions = false'];
  for (const [name, key] of [
    ['memory_limit', ENV.duckdbMemoryLimit],
    ['temp_directory', ENV.duckdbTempDirectory],
    ['max_temp_directory_size', ENV.duckdbMaxTempDirectorySize],
  ]) {
    if (env[key]) statements.push(`SET ${name} = ${sqlString(env[key])}`);
  }
  const extensionDirectory = env[ENV.duckdbExtensionDirectory];
  if (extensionDirectory) {
    statements.push(`SET extension_directory = ${sqlString(extensionDirectory)}`);
  }
  for (const name of EXTENSIONS) statements.push(`LOAD ${name}`);
  // Iceberg secret options: https://duckdb.org/docs/stable/core_extensions/iceberg/iceberg_rest_catalogs
  statements.push(
    `CREATE OR REPLACE SECRET ${alias}_catalog (TYPE iceberg, `
    + `CLIENT_ID ${sqlString(setting(env, ENV.catalogClientId))}, `
    + `CLIENT_SECRET ${sqlString(setting(env, ENV.catalogClientSecret))}, `
    + `OAUTH2_SERVER_URI ${sqlString(setting(env, ENV.catalogOauth2Uri))}, `
    + `OAUTH2_SCOPE ${sqlString(setting(env, ENV.catalogScope))})`,
  );
  const endpoint = setting(env, ENV.s3Endpoint);
  statements.push(
    `CREATE OR REPLACE SECRET ${alias}_s3 (TYPE s3, `
    + `KEY_ID ${sqlString(setting(env, ENV.s3AccessKeyId))}, `
    + `SECRET ${sqlString(setting(env, ENV.s3SecretAccessKey))}, `
    + `ENDPOINT ${sqlString(s3HostPort(endpoint))}, `
    + `URL_STYLE 'path', USE_SSL ${endpoint.startsWith('https://') ? 'true' : 'false'}, `
    + `REGION ${sqlString(setting(env, ENV.s3Region))})`,
  );
  statements.push(
    `ATTACH IF NOT EXISTS ${sqlString(setting(env, ENV.catalogWarehouse))} AS ${alias} (TYPE iceberg, `
    + `SECRET ${alias}_catalog, ENDPOINT ${sqlString(setting(env, ENV.catalogUri))}, `
    + "ACCESS_DELEGATION_MODE 'none')",
  );
  return statements;
}

/** Runs `statements` one by one on a @duckdb/node-api connection (DuckDBConnection.run). */
async function runStatements(connection, statements) {
  for (const statement of statements) {
    try {
      await connection.run(statement);
    } catch (e) {
      // Name the statement's kind, never its text: the secrets carry credentials.
      const kind = statement.split(' (')[0].replace(/'[^']*'/g, "'…'");
      const error = new Error(
        `floe: lakehouse catalog not attached (${kind}): ${e && e.message ? e.message : e}; `
        + 'the next query retries',
      );
      error.cause = e;
      throw error;
    }
  }
}

/**
 * A subclass of Cube's DuckDBDriver whose DuckDB instance gets the lakehouse catalog before any
 * query runs, retried until it succeeds.
 *
 * Upstream (cube-js/cube packages/cubejs-duckdb-driver/src/DuckDBDriver.ts; checked in the npm
 * release @cubejs-backend/duckdb-driver 1.7.43, which tests/semantic runs this against):
 * `protected async getInitiatedState(): Promise<{defaultConnection, instance}>` creates the
 * instance once (initPromise) and is awaited by both `query()` and `stream()`; `release()` closes
 * the instance. Extra DuckDB connections (stream() opens one per
 * call) share the instance's secrets and attached catalogs, so attaching once per instance is
 * enough -- `USE` would not carry over, which is why the model names tables `lake.<ns>.<table>`.
 * The DuckDB settings (temp_directory, ...) come first, before anything could spill, in the same
 * retried list: a failed SET fails the query instead of leaving DuckDB spilling into a read-only
 * folder (its default temp_directory is `.tmp` under the working directory, /cube/conf).
 */
function lakeDriverClass(DuckDBDriver, statements = () => lakehouseInitStatements(process.env)) {
  if (typeof DuckDBDriver.prototype.getInitiatedState !== 'function') {
    throw new Error('floe: this DuckDBDriver has no getInitiatedState(); check the Cube version (see lakehouse.js)');
  }
  return class LakeDuckDBDriver extends DuckDBDriver {
    async getInitiatedState() {
      const state = await super.getInitiatedState();
      if (this.floeLakeInstance !== state.instance || !this.floeLakeReady) {
        this.floeLakeInstance = state.instance;
        this.floeLakeReady = runStatements(state.defaultConnection, statements()).catch((e) => {
          this.floeLakeReady = null; // the next query tries again
          throw e;
        });
      }
      await this.floeLakeReady;
      return state;
    }
  };
}

module.exports = {
  DEFAULT_ALIAS,
  ENV,
  EXTENSIONS,
  lakeDriverClass,
  lakehouseInitStatements,
  runStatements,
};
