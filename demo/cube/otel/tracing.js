'use strict';
// OpenTelemetry for Cube's API and refresh worker, preloaded with
//   NODE_OPTIONS="--max-old-space-size=<n> --require <this file>"
// before Cube's own code runs, so Cube's image and code stay untouched (constructs/cube.py).
//
// Everything else comes from the environment, read by @opentelemetry/sdk-node itself
// (dist/create-from-env.cjs, dist/utils.cjs): OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_ENDPOINT and
// OTEL_EXPORTER_OTLP_PROTOCOL (OTLP/HTTP protobuf to Jaeger), OTEL_PROPAGATORS (W3C trace context:
// a client's `traceparent` continues into Cube), OTEL_BSP_* (the BatchSpanProcessor's bounded queue:
// spans beyond it are dropped, never buffered without bound), OTEL_METRICS_EXPORTER and
// OTEL_LOGS_EXPORTER (none: Jaeger takes traces only; the SDK's default for both is otlp).
//
// Instrumented: Node's http server and client (one server span per request, probes excluded) and
// express, which Cube's api-gateway serves its REST and GraphQL routes with.
//
// No effect on Cube when tracing cannot work: an SDK that fails to load or start logs one line and
// Cube runs untraced; an unreachable collector only makes the exporter drop batches in the
// background (the request path never waits for an export).

// Cube's health endpoints (@cubejs-backend/api-gateway: /readyz is the readiness probe, /livez the
// liveness endpoint): polled every few seconds, they would fill Jaeger with noise.
const UNTRACED_PATHS = new Set(['/readyz', '/livez']);

function path(url) {
  const end = (url || '').search(/[?#]/);
  return end === -1 ? url || '' : url.slice(0, end);
}

function untraced(request) {
  return UNTRACED_PATHS.has(path(request.url));
}

try {
  const { NodeSDK } = require('@opentelemetry/sdk-node');
  const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
  const { ExpressInstrumentation } = require('@opentelemetry/instrumentation-express');

  const sdk = new NodeSDK({
    instrumentations: [
      new HttpInstrumentation({ ignoreIncomingRequestHook: untraced }),
      new ExpressInstrumentation(),
    ],
  });
  sdk.start();
  // Flush what is queued when Node leaves on its own (not on signals: adding a SIGTERM handler
  // would change how Cube stops). At most OTEL_BSP_SCHEDULE_DELAY of spans is lost on a kill.
  process.once('beforeExit', () => {
    sdk.shutdown().catch(() => {});
  });
} catch (error) {
  const reason = String((error && error.message) || error).split('\n')[0];
  console.error(`floe tracing: OpenTelemetry is off for this process (${reason})`);
}

module.exports = { UNTRACED_PATHS, untraced };
