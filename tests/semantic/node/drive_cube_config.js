/*
 * Loads demo/cube/cube.js (argv[2]) the way Cube does -- require() with NODE_PATH resolving
 * @cubejs-backend/* (here: this folder's node_modules, Cube 1.7.43's packages) -- builds the driver
 * through its driverFactory, optionally compiles the data model (argv[3]) with Cube's own schema
 * compiler, then answers one JSON command per stdin line with one JSON line on stdout:
 *
 *   {"op": "query" | "stream", "sql": "..."}  -> {"ok", "rows"}          (driver.query / driver.stream)
 *   {"op": "statements"}                       -> {"ok", "statements"}    (lakehouseInitStatements(env))
 *   {"op": "cube", "query": {...}}             -> {"ok", "sql", "rows"}   Cube's DuckDB SQL for a Cube
 *                                                 query (pre-aggregations off), run through the driver
 *   {"op": "pre_aggregations", "query": {...}} -> {"ok", "pre_aggregations": [{table, external,
 *                                                 rows, refresh_key_sql, refresh_key}]}: the rollup
 *                                                 build SQL the refresh worker sends to DuckDB, run
 *   {"op": "model"}                            -> {"ok", "cubes", "pre_aggregations"} as compiled
 * Errors answer {"ok": false, "error"}.
 *
 * Test-only shims, both documented limits of running Cube outside its image:
 *  - @cubejs-backend/native cannot load here (its binary comes from GitHub); the schema compiler
 *    only asks it for a Jinja engine, unused by plain YAML, so that one call is stubbed.
 *  - SQL is planned by Cube's JavaScript planner (useNativeSqlPlanner: false); the image's default
 *    Tesseract planner is native code and produces different (equivalent) SQL.
 */
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');

const configPath = path.resolve(process.argv[2]);
const modelDir = process.argv[3] ? path.resolve(process.argv[3]) : null;
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
    const repository = {
      localPath: () => modelDir,
      dataSchemaFiles: async () => fs.readdirSync(modelDir)
        .filter((f) => f.endsWith('.yml'))
        .map((f) => ({ fileName: f, content: fs.readFileSync(path.join(modelDir, f), 'utf8') })),
    };
    compiled = prepareCompiler(repository, { adapter: 'duckdb' });
    await compiled.compiler.compile();
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
      const [keySql, keyParams] = d.invalidateKeyQueries[0];
      result.push({
        table: d.tableName,
        external: d.external,
        rows: await driver.query(sql, params),
        refresh_key_sql: keySql,
        refresh_key: await driver.query(keySql, keyParams),
      });
    }
    return { pre_aggregations: result };
  },
  model: async () => {
    const c = await compilers();
    return {
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
