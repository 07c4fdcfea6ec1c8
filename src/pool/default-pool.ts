/**
 * `py`: a pool created on first use with the default options. It never keeps a finished script alive (idle
 * workers hold no reference on the event loop) and its workers end with the process.
 */
import type { CallOptions, StreamOptions } from '../options.js';
import { checkCode } from '../validate.js';
import { createPool, type Pool } from './pool.js';
import type { PyStream } from './stream.js';
import { streamCall, streamEval, submitCall, submitEval, type Target } from './submit.js';

let pool: Promise<Pool> | undefined;

function defaultPool(): Promise<Pool> {
  if (!pool) {
    pool = createPool();
    pool.catch(() => (pool = undefined));
  }
  return pool;
}

/** The default pool's queue, reached once the pool has started (arguments are checked before it starts). */
const target: Target = {
  ctx: 0,
  pinned: false,
  defaultTimeout: () => undefined, // the default options: no timeout, no deadline
  defaultDeadline: () => undefined,
  check: () => {},
  track: (job) => void defaultPool().then((p) => p.core.track(job), () => {}),
  submit: (job) => defaultPool().then((p) => p.core.target.submit(job)),
  registered: (state, stream, open) => void defaultPool().then((p) => p.core.registered(state, stream, open), () => {}),
  unpinned: (worker) => void defaultPool().then((p) => p.core.unpinned(worker), () => {}),
};

export const py = {
  /** The default pool itself (created on first use). */
  pool: defaultPool,
  call<T = any>(module: string, fn: string, args?: unknown[], options?: CallOptions): Promise<T> {
    return submitCall(target, module, fn, args ?? [], options) as Promise<T>;
  },
  eval<T = any>(code: string, locals?: Record<string, unknown> | null, options?: CallOptions): Promise<T> {
    return submitEval(target, code, locals, options) as Promise<T>;
  },
  exec(code: string, options?: CallOptions): Promise<void> {
    try {
      checkCode(code);
    } catch (error) {
      return Promise.reject(error);
    }
    return defaultPool().then((p) => p.exec(code, options));
  },
  stream<T = any>(module: string, fn: string, args: unknown[] = [], options?: StreamOptions): PyStream<T> {
    return streamCall<T>(target, module, fn, args, options);
  },
  streamEval<T = any>(code: string, locals?: Record<string, unknown> | null, options?: StreamOptions): PyStream<T> {
    return streamEval<T>(target, code, locals, options);
  },
  /** Close the default pool (a later use creates a new one). */
  async close(): Promise<void> {
    const current = pool;
    pool = undefined;
    if (current) await (await current).close();
  },
};
