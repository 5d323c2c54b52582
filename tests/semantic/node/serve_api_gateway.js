/*
 * Serves Cube 1.7.43's own HTTP API the way its server does, for the tracing tests: the express app
 * of @cubejs-backend/server's CubejsServer.listen() (express() + body-parser JSON, then the core's
 * initApp, which is ApiGateway.initApp: /readyz, /livez, /cubejs-api/v1/*, /cubejs-api/graphql),
 * on http.createServer(app), listening on getEnv('port') (PORT, as Cube reads it).
 *
 * Loaded with the container's own NODE_OPTIONS, so the preload (--require .../tracing.js) is in
 * place before express and http are required, as in the pod.
 *
 * Test-only shims, each a documented limit of running Cube outside its image:
 *  - @cubejs-backend/native cannot load here (its binary comes from GitHub): the SQL API's logger
 *    hook (native setupLogger, called by ApiGateway's SQLServer constructor) is stubbed.
 *  - No data source, orchestrator or compiled model behind the gateway: the compiler API answers an
 *    empty model, the probes' connection tests succeed. Only the HTTP path (http -> express -> the
 *    gateway's routes and middlewares: checkAuth, request context, logging) is Cube's, which is
 *    what the instrumentations hook.
 *  - cors (CubejsServer's first middleware) is not installed in this test folder; it is one more
 *    express middleware layer and does not change which requests are traced.
 * Prints "listening <port>" once ready.
 */
'use strict';

const native = require('@cubejs-backend/native');

native.setupLogger = () => {};

const http = require('http');
const express = require('express');
const bodyParser = require('body-parser');
const { ApiGateway } = require('@cubejs-backend/api-gateway');
const { getEnv } = require('@cubejs-backend/shared');

const connections = {
  addDataSeenSource() {},
  async testConnection() {},
  async testOrchestratorConnections() {},
  async testConnections() { return []; },
};
const compilerApi = {
  async metaConfig() { return { cubes: [], compilerId: 'floe-test' }; },
  getGraphQLSchema() { return null; },
  setGraphQLSchema() {},
};

const gateway = new ApiGateway(
  process.env.CUBEJS_API_SECRET,
  async () => compilerApi,
  async () => connections,
  () => {},
  {
    standalone: true,
    basePath: '/cubejs-api',
    dataSourceStorage: connections,
    refreshScheduler: () => ({}),
  },
);

const app = express();
app.use(bodyParser.json({ limit: getEnv('maxRequestSize') }));
gateway.initApp(app);

const port = getEnv('port');
const server = http.createServer({}, app);
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
