/**
 * `py`: a pool created on first use with the default options. It never keeps a finished script alive (idle
 * workers hold no reference on the event loop) and its workers end with the process.
 */
import { resolveCallOptions, type CallOptions, type StreamOptions } from '../options.js';
import { createPool, type Pool } from './pool.js';
import { requestStreamCall, requestStreamEval, type Request } from '../protocol/requests.js';
import { PyStream } from './stream.js';

let pool: Promise<Pool> | undefined;

function defaultPool(): Promise<Pool> {
  if (!pool) {
    pool = createPool();
    pool.catch(() => (pool = undefined));
  }
  return pool;
}

/** A stream on the default pool, which may still be starting: its first step waits for it. */
function deferredStream<T>(open: (credit: number) => Request, options: StreamOptions | undefined): PyStream<T> {
  const o = resolveCallOptions(options, true); // bad arguments throw here, synchronously
  const later = (fn: (p: Pool) => void) => void defaultPool().then(fn, () => {});
  return new PyStream<T>(
    {
      submit: (job) => defaultPool().then((p) => p.core.submit(job)),
      sendTo: (worker, job) => worker.send(job),
      registered: (stream, opened) => later((p) => (opened ? p.core.streams.add(stream) : p.core.streams.delete(stream))),
      unpinned: (worker) => later((p) => p.core.unpinned(worker)),
    },
    (credit) => ({ ...open(credit), pinned: false }),
    { highWaterMark: o.highWaterMark, timeout: o.timeout, signal: o.signal },
  );
}

export const py = {
  /** The default pool itself (created on first use). */
  pool: defaultPool,
  call<T = any>(module: string, fn: string, args?: unknown[], options?: CallOptions): Promise<T> {
    return defaultPool().then((p) => p.call<T>(module, fn, args, options));
  },
  eval<T = any>(code: string, locals?: Record<string, unknown> | null, options?: CallOptions): Promise<T> {
    return defaultPool().then((p) => p.eval<T>(code, locals, options));
  },
  exec(code: string, options?: CallOptions): Promise<void> {
    return defaultPool().then((p) => p.exec(code, options));
  },
  stream<T = any>(module: string, fn: string, args: unknown[] = [], options?: StreamOptions): PyStream<T> {
    const kwargs = options?.kwargs;
    return deferredStream((credit) => requestStreamCall(0, module, fn, args, kwargs, credit), options);
  },
  streamEval<T = any>(code: string, locals?: Record<string, unknown> | null, options?: StreamOptions): PyStream<T> {
    return deferredStream((credit) => requestStreamEval(0, code, locals ?? undefined, credit), options);
  },
  /** Close the default pool (a later use creates a new one). */
  async close(): Promise<void> {
    const current = pool;
    pool = undefined;
    if (current) await (await current).close();
  },
};
