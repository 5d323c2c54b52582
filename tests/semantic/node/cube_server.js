/*
 * Cube 1.7.43's own API server code from npm, serving demo/cube over HTTP on 127.0.0.1: server-core's
 * CubejsServerCore (options from our cube.js, CompilerApi, OrchestratorApi, RefreshScheduler) and
 * api-gateway's ApiGateway (REST /cubejs-api/v1/*, GraphQL /cubejs-api/graphql through
 * express-graphql and makeSchema) mounted on express, as `cubejs-server` does. Prints
 * `PORT <n>` once listening. Run with the working directory as the image's /cube/conf.
 *
 * What is replaced, and why (each is native code or a binary that cannot be installed offline):
 *  - @cubejs-backend/native is not loadable here. Three of its functions are stubbed:
 *    NativeInstance.newJinjaEngine (the schema compiler asks for it; plain YAML never uses it),
 *    setupLogger (called by the SQL API's constructor; the SQL API is not started: no
 *    CUBEJS_PG_SQL_PORT), and getFinalQueryResult, the Rust transform that turns the driver's rows
 *    (columnar, keyed by SQL alias) into the response: replaced by its plain meaning (each alias
 *    named by the gateway's own aliasToMemberNameMap, values as the driver returned them, merged
 *    into the gateway's own root object). Everything around it (query normalisation, planning,
 *    pre-aggregation matching, the root object with external/usedPreAggregations) is Cube's.
 *  - Cube Store (a Rust binary): no external driver. The caller sets CUBEJS_EXTERNAL_DEFAULT=false,
 *    so rollups are built and read in the source DuckDB, and CUBEJS_CACHE_AND_QUEUE_DRIVER=memory.
 *  - The Tesseract SQL planner (native): CUBEJS_TESSERACT_SQL_PLANNER=false, the JS planner.
 */
'use strict';

const path = require('path');

const native = require('@cubejs-backend/native');

native.NativeInstance.prototype.newJinjaEngine = () => ({
  loadTemplate() { throw new Error('test harness: Jinja templates are not supported'); },
});
native.setupLogger = () => {};
// ResultWrapper.getFinalResult calls the module's own export (dist/js/index getFinalQueryResult).
const nativeIndex = require('@cubejs-backend/native/dist/js/index');

nativeIndex.getFinalQueryResult = async (transformData, rawData, rootResultObject) => {
  const raw = Buffer.isBuffer(rawData) ? JSON.parse(rawData.toString()) : rawData;
  const { members = [], columns = [] } = raw;
  const names = members.map((alias) => transformData.aliasToMemberNameMap[alias] || alias);
  const rows = (columns[0] || []).map((_, i) => Object.fromEntries(names.map((name, j) => [name, columns[j][i]])));
  return Buffer.from(JSON.stringify({ ...rootResultObject, data: rows }));
};

const express = require('express');
const { CubejsServerCore } = require('@cubejs-backend/server-core');

const config = require(path.resolve('cube.js'));

async function main() {
  const core = new CubejsServerCore({
    ...config,
    devServer: false,
    logger: (message, params) => process.stderr.write(`${message} ${JSON.stringify(params || {}).slice(0, 500)}\n`),
  });
  const app = express();
  await core.initApp(app);
  const server = app.listen(0, '127.0.0.1', () => process.stdout.write(`PORT ${server.address().port}\n`));
  const stop = async () => {
    server.close();
    await core.shutdown().catch(() => {});
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  process.stderr.write(`${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
