/*
 * Loads cube.js (argv[2]) the way Cube does -- require() with NODE_PATH resolving
 * @cubejs-backend/* (here: this folder's node_modules, Cube 1.7.43's packages) -- builds the driver
 * through its driverFactory, optionally compiles the data model with Cube's own schema compiler,
 * reading it through Cube's own FileRepository (@cubejs-backend/shared, what server-core uses:
 * `new FileRepository(this.options.schemaPath)`) at the schema path argv[3], relative to the
 * working directory as in the image (WORKDIR /cube/conf, CUBEJS_SCHEMA_PATH default 'model').
 * Then it answers one JSON command per stdin line with one JSON line on stdout:
 *
 *   {"op": "query" | "stream", "sql": "..."}  -> {"ok", "rows"}          (driver.query / driver.stream)
 *   {"op": "statements"}                       -> {"ok", "statements"}    (lakehouseInitStatements(env))
 *   {"op": "cube", "query": {...}}             -> {"ok", "sql", "rows"}   Cube's DuckDB SQL for a Cube
 *                                                 query (pre-aggregations off), run through the driver
 *   {"op": "pre_aggregations", "query": {...}} -> {"ok", "pre_aggregations": [{table, external,
 *                                                 rows, build_ms, refresh_key_sql, refresh_key_options,
 *                                                 refresh_key}]}: the rollup build SQL the refresh
 *                                                 worker sends to DuckDB, run (build_ms: how long),
 *                                                 and its refresh key query with Cube's options for
 *                                                 it (renewalThreshold: seconds between two checks)
 *   {"op": "model"}                            -> {"ok", "cubes", "pre_aggregations", "files"} as
 *                                                 compiled (files: what FileRepository returned)
 *   {"op": "pre_aggregation_types"}            -> {"ok", "pre_aggregations": [{id, table, types,
 *                                                 create_table}]}: for EVERY pre-aggregation of the
 *                                                 model, the refresh worker's write-strategy build on
 *                                                 DuckDB (see below) and the CREATE TABLE Cube sends
 *                                                 to Cube Store for it
 * Errors answer {"ok": false, "error"}.
 *
 * Test-only shims, both documented limits of running Cube outside its image:
 *  - @cubejs-backend/native cannot load here (its binary comes from GitHub); the schema compiler
 *    only asks it for a Jinja engine, unused by plain YAML, so that one call is stubbed.
 *  - SQL is planned by Cube's JavaScript planner (useNativeSqlPlanner: false); the image's default
 *    Tesseract planner is native code and produces different (equivalent) SQL.
 */
'use strict';

const path = require('path');
const readline = require('readline');

const configPath = path.resolve(process.argv[2]);
const schemaPath = process.argv[3] || null;
const config = require(configPath);
const lakehouse = require(path.join(path.dirname(configPath), 'lakehouse.js'));
const driver = config.driverFactory({ dataSource: 'default' });

let compiled = null;
async function compilers() {
  if (!compiled) {
    const native = require('@cubejs-backend/native');
    native.NativeInstance.prototype.newJinjaEngine = () => ({
      loadTemplate() { throw new Error('test harness: Jinja templates are not supported'); },
    });
    const { prepareCompiler } = require('@cubejs-backend/schema-compiler');
    const { FileRepository } = require('@cubejs-backend/shared');
    const repository = new FileRepository(schemaPath);
    const files = (await repository.dataSchemaFiles()).map((f) => f.fileName).sort();
    const c = prepareCompiler(repository, { adapter: 'duckdb' });
    await c.compiler.compile();
    compiled = { ...c, files };
  }
  return compiled;
}

function cubeQuery(c, query, extra = {}) {
  const DuckDBQuery = require('@cubejs-backend/duckdb-driver').dialectClass();
  return new DuckDBQuery(c, { timezone: 'UTC', ...query, useNativeSqlPlanner: false, ...extra });
}

async function streamRows(sql) {
  const { rowStream, release } = await driver.stream(sql, [], { highWaterMark: 1000 });
  const rows = [];
  try {
    for await (const row of rowStream) rows.push(row);
  } finally {
    if (release) await release();
  }
  return rows;
}

const handlers = {
  statements: async () => ({ statements: lakehouse.lakehouseInitStatements(process.env) }),
  query: async ({ sql }) => ({ rows: await driver.query(sql, []) }),
  stream: async ({ sql }) => ({ rows: await streamRows(sql) }),
  cube: async ({ query }) => {
    const [sql, params] = cubeQuery(await compilers(), query, { disableExternalPreAggregations: true }).buildSqlAndParams();
    return { sql, rows: await driver.query(sql, params) };
  },
  pre_aggregations: async ({ query }) => {
    const descriptions = cubeQuery(await compilers(), query).preAggregations.preAggregationsDescription();
    const result = [];
    for (const d of descriptions) {
      const [sql, params] = d.sql;
      const [keySql, keyParams, keyOptions] = d.invalidateKeyQueries[0];
      const started = Date.now();
      const rows = await driver.query(sql, params);
      result.push({
        table: d.tableName,
        external: d.external,
        rows,
        build_ms: Date.now() - started,
        refresh_key_sql: keySql,
        refresh_key_options: keyOptions || {},
        refresh_key: await driver.query(keySql, keyParams),
      });
    }
    return { pre_aggregations: result };
  },
  pre_aggregation_types: async () => {
    // Cube's refresh worker, for each scheduled pre-aggregation (server-core RefreshScheduler
    // baseQueryForPreAggregation: {...references, preAggregationId}), with a driver that is not
    // readOnly() (DuckDBDriver) and no unload(): PreAggregationLoader.refreshWriteStrategy ->
    // createSchemaIfNotExists + loadPreAggregationIntoTable(loadSql), then
    // getTableDataWithTempTable -> stream() (no types) -> tableColumnTypes(table) (DuckDB's
    // information_schema through the driver's toGenericType), then Cube Store's
    // uploadTableWithIndexes -> createTableSql (CubeStoreDriver.fromGenericType).
    const c = await compilers();
    const { CubeStoreDriver } = require('@cubejs-backend/cubestore-driver');
    const cubeStore = Object.create(CubeStoreDriver.prototype); // only its SQL helpers are used
    const result = [];
    for (const p of c.cubeEvaluator.preAggregations({})) {
      const query = cubeQuery(c, { ...p.references, preAggregationId: p.id });
      const d = query.preAggregations.preAggregationsDescription().find((x) => x.preAggregationId === p.id);
      if (!d) throw new Error(`no build description for pre-aggregation ${p.id}`);
      const [loadSql, params] = d.loadSql;
      await driver.createSchemaIfNotExists(d.preAggregationsSchema);
      await driver.loadPreAggregationIntoTable(d.tableName, loadSql, params, {});
      try {
        const types = await driver.tableColumnTypes(d.tableName);
        result.push({ id: p.id, table: d.tableName, types, create_table: cubeStore.createTableSql(d.tableName, types) });
      } finally {
        await driver.dropTable(d.tableName);
      }
    }
    return { pre_aggregations: result };
  },
  model: async () => {
    const c = await compilers();
    return {
      files: c.files,
      cubes: Object.keys(c.cubeEvaluator.evaluatedCubes).sort(),
      pre_aggregations: c.cubeEvaluator.preAggregations({}).map((p) => ({
        id: p.id, refresh_key: p.preAggregation.refreshKey, external: p.preAggregation.external,
      })),
    };
  },
};

const json = (value) => JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? v.toString() : v));
const lines = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on('line', (line) => {
  queue = queue.then(async () => {
    const command = JSON.parse(line);
    try {
      const answer = await handlers[command.op](command);
      process.stdout.write(`${json({ ok: true, ...answer })}\n`);
    } catch (e) {
      process.stdout.write(`${json({ ok: false, error: String(e && e.message ? e.message : e) })}\n`);
    }
  });
});
lines.on('close', () => {
  queue.then(() => driver.release()).then(() => process.exit(0));
});
