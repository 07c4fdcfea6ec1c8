/**
 * Python calls as OpenTelemetry spans: pyworkers publishes each call on the diagnostics_channel tracing channel
 * `pyworkers:call`; a few lines turn them into spans (an APM agent that listens to tracing channels needs none).
 * The spans are printed here; in a service, the tracer provider exports them.
 *
 *   node --import tsx examples/tracing-spans.ts
 */
import diagnostics_channel from 'node:diagnostics_channel';
import { SpanStatusCode, type Span } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createPool, type CallTraceContext } from '../src/index.js';

const exporter = new InMemorySpanExporter();
const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer('pyworkers-example');

// One span per call: started on `start`, ended on `asyncEnd`, marked failed on `error`.
const spans = new WeakMap<CallTraceContext, Span>();
diagnostics_channel.tracingChannel('pyworkers:call').subscribe({
  start(message) {
    const call = message as CallTraceContext;
    const name = call.kind === 'call' ? `python ${call.module}.${call.fn}` : `python ${call.kind}`;
    spans.set(call, tracer.startSpan(name, { attributes: { 'pyworkers.kind': call.kind, ...(call.code ? { 'pyworkers.code': call.code } : {}) } }));
  },
  end() {},
  asyncStart() {},
  error(message) {
    const call = message as CallTraceContext;
    spans.get(call)?.setStatus({ code: SpanStatusCode.ERROR, message: (call.error as Error).message });
  },
  asyncEnd(message) {
    const call = message as CallTraceContext;
    const span = spans.get(call);
    if (call.workerId !== undefined) span?.setAttribute('pyworkers.worker', call.workerId);
    span?.end();
  },
});

await using pool = await createPool({ workers: 2 });
await pool.call('math', 'factorial', [30]);
await pool.eval('sum(range(10**5))');
await pool.eval('1 / 0').catch(() => {});

for (const span of exporter.getFinishedSpans()) {
  const ms = (span.duration[0] * 1e3 + span.duration[1] / 1e6).toFixed(2);
  console.log(`${span.name.padEnd(28)} ${ms.padStart(8)} ms  worker ${span.attributes['pyworkers.worker']}  ${span.status.code === SpanStatusCode.ERROR ? `error: ${span.status.message}` : 'ok'}`);
}
