/**
 * A service as Kubernetes runs it: Prometheus metrics at /metrics, liveness at /healthz, readiness at /readyz,
 * and on SIGTERM a graceful shutdown: readiness turns false, the server stops accepting connections, running
 * requests finish (the pool drains), then the process exits. Set terminationGracePeriodSeconds above the drain's
 * timeout. The same figures reach OpenTelemetry through the app's MeterProvider: here one read at /metrics/otel
 * (in a service, an exporter of the OpenTelemetry SDK sends them on).
 *
 *   PORT=8080 node --import tsx examples/operations-server.ts
 *   curl localhost:8080/metrics
 */
import http from 'node:http';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { createPool, PROMETHEUS_CONTENT_TYPE } from '../src/index.js';

/** An OpenTelemetry reader collected on demand (a PeriodicExportingMetricReader with an exporter, in a service). */
class OnDemandReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}
const reader = new OnDemandReader();
const meterProvider = new MeterProvider({ readers: [reader] });

const DRAIN_TIMEOUT_MS = 25_000; // below Kubernetes' default terminationGracePeriodSeconds (30 s)

const pool = await createPool({
  workers: 2,
  setup: 'import time\ndef work(seconds):\n    time.sleep(seconds)\n    return "done"',
  logging: { level: 'INFO', handler: (r) => console.log(JSON.stringify({ level: r.level, logger: r.logger, msg: r.message })) },
  openTelemetry: { meterProvider }, // (or register it globally before creating the pool)
});

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  try {
    if (url.pathname === '/metrics') {
      res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE }).end(await pool.prometheus());
    } else if (url.pathname === '/metrics/otel') {
      const { resourceMetrics } = await reader.collect();
      const metrics = resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics);
      const body = Object.fromEntries(metrics.map((m) => [m.descriptor.name, m.dataPoints.map((d) => ({ attributes: d.attributes, value: d.value }))]));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    } else if (url.pathname === '/healthz') {
      res.writeHead(200).end('ok'); // the process is alive (a broken pool shows in readiness and metrics)
    } else if (url.pathname === '/readyz') {
      res.writeHead(pool.ready ? 200 : 503).end(pool.ready ? 'ready' : 'not ready');
    } else if (url.pathname === '/work') {
      res.writeHead(200).end(await pool.call('__main__', 'work', [Number(url.searchParams.get('seconds') ?? 0)]));
    } else {
      res.writeHead(404).end();
    }
  } catch (error) {
    res.writeHead(503).end((error as Error).message);
  }
});
server.listen(Number(process.env.PORT ?? 8080), '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  console.log(`listening on http://127.0.0.1:${port}`);
});

process.once('SIGTERM', async () => {
  console.log('SIGTERM: draining');
  server.close(); // no new connections; open ones finish their requests
  const { drained, pending } = await pool.drain({ timeout: DRAIN_TIMEOUT_MS });
  console.log(`drained: ${drained} (${pending} calls were running or queued)`);
  server.closeAllConnections();
  process.exit(0);
});
