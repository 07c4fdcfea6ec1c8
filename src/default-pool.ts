/**
 * `py`: a pool created on first use with the default options. It never keeps a finished script alive (idle
 * workers hold no reference on the event loop) and its workers end with the process.
 */
import type { CallOptions, StreamOptions } from './options.js';
import { createPool, type Pool } from './pool.js';
import type { PyStream } from './stream.js';

let pool: Promise<Pool> | undefined;

function defaultPool(): Promise<Pool> {
  if (!pool) {
    pool = createPool();
    pool.catch(() => (pool = undefined));
  }
  return pool;
}

async function* streamFrom<T>(open: (p: Pool) => PyStream<T>): AsyncGenerator<T, void, undefined> {
  const stream = open(await defaultPool());
  try {
    yield* stream;
  } finally {
    await stream.close();
  }
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
  stream<T = any>(module: string, fn: string, args?: unknown[], options?: StreamOptions): AsyncGenerator<T, void, undefined> {
    return streamFrom((p) => p.stream<T>(module, fn, args, options));
  },
  streamEval<T = any>(code: string, locals?: Record<string, unknown> | null, options?: StreamOptions): AsyncGenerator<T, void, undefined> {
    return streamFrom((p) => p.streamEval<T>(code, locals, options));
  },
  /** Close the default pool (a later use creates a new one). */
  async close(): Promise<void> {
    const current = pool;
    pool = undefined;
    if (current) await (await current).close();
  },
};
