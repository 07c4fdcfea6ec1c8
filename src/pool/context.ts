/**
 * A context: a namespace of its own, pinned to one worker for its whole life.
 */
import { ContextClosedError, ContextLostError, RefWorkerError } from '../errors.js';
import { contextMemory, type MemorySnapshot } from '../memory/index.js';
import type { AllocatorInfo, AllocatorInfoOptions, GcDebugFlag, GcDebugFlags, GcGarbage, GcGarbageOptions, GcGeneration, MemoryStatsOptions, ReferenceInfo, ReferencesOptions, SnapshotOptions, WorkerMemoryStats } from '../memory/types.js';
import type { CallOptions, StreamOptions } from '../options.js';
import { requestContextClose } from '../protocol/requests.js';
import { CallJob } from '../worker/job.js';
import type { PythonWorker } from '../worker/worker.js';
import type { PoolCore } from './pool.js';
import type { PyRef } from './ref.js';
import type { PyStream } from './stream.js';
import { streamCall, streamEval, submitCall, submitEval, submitExec, type Target } from './submit.js';

export class Context {
  /** The context's id (unique in its pool). */
  readonly id: number;
  readonly #core: PoolCore;
  readonly #target: Target;
  #worker: PythonWorker | undefined;
  #closed = false;

  /** @internal Use `pool.context()`. */
  constructor(core: PoolCore) {
    this.#core = core;
    this.id = core.nextContextId();
    this.#worker = core.pickWorkerForContext();
    this.#worker?.contexts.add(this.id);
    this.#target = {
      ctx: this.id,
      pinned: true,
      defaultTimeout: () => core.options.timeout || undefined,
      defaultDeadline: () => core.options.deadline || undefined,
      check: () => void this.#usableWorker(),
      track: (job) => core.track(job),
      submit: (job, home) => {
        const worker = this.#usableWorker();
        if (home && home !== worker) {
          throw new RefWorkerError(`A handle of worker ${home.id} was passed to a context on worker ${worker.id}: a handle works only on its own worker`);
        }
        worker.send(job);
      },
      registered: (state, stream, open) => core.registered(state, stream, open),
      unpinned: (worker) => core.unpinned(worker),
    };
  }

  /** The id of the worker holding this context's namespace. */
  get workerId(): number | undefined {
    return this.#worker?.id;
  }

  /** Whether the context was closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Call `module.fn(*args, **kwargs)`; `'__main__'` names this context's namespace. */
  call<T = any>(module: string, fn: string, args: unknown[] = [], options?: CallOptions): Promise<T> {
    return submitCall(this.#target, module, fn, args, options) as Promise<T>;
  }

  /** Evaluate an expression in this context's namespace, with optional locals that do not persist. */
  eval<T = any>(code: string, locals?: Record<string, unknown> | null, options?: CallOptions): Promise<T> {
    return submitEval(this.#target, code, locals, options) as Promise<T>;
  }

  /** Call `module.fn(*args, **kwargs)` in this context and answer with a handle to its result. */
  callRef(module: string, fn: string, args: unknown[] = [], options?: CallOptions): Promise<PyRef> {
    return submitCall(this.#target, module, fn, args, options, true) as Promise<PyRef>;
  }

  /** Evaluate an expression in this context's namespace and answer with a handle to its value. */
  evalRef(code: string, locals?: Record<string, unknown> | null, options?: CallOptions): Promise<PyRef> {
    return submitEval(this.#target, code, locals, options, true) as Promise<PyRef>;
  }

  /** Run statements in this context's namespace; what they define persists until the context closes. */
  async exec(code: string, options?: CallOptions): Promise<void> {
    await submitExec(this.#target, code, options);
  }

  /** Stream the items of the iterable `module.fn(*args, **kwargs)` returns, in this context. */
  stream<T = any>(module: string, fn: string, args: unknown[] = [], options?: StreamOptions): PyStream<T> {
    return streamCall<T>(this.#target, module, fn, args, options);
  }

  /** Stream the items of an expression evaluated in this context's namespace. */
  streamEval<T = any>(code: string, locals?: Record<string, unknown> | null, options?: StreamOptions): PyStream<T> {
    return streamEval<T>(this.#target, code, locals, options);
  }

  /** Free the namespace in the worker. Later calls reject with `ERR_CONTEXT_CLOSED`. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const worker = this.#worker;
    if (!worker || worker.state === 'exited') return;
    const request = requestContextClose(this.id);
    const job = new CallJob(request.kind, request.frame, request.flags, { timeout: undefined, signal: undefined }, true);
    worker.send(job);
    try {
      await job.promise;
    } finally {
      worker.contexts.delete(this.id);
      this.#core.unpinned(worker);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** The worker this context lives on, checked to be usable. */
  #usableWorker(): PythonWorker {
    if (this.#closed) throw new ContextClosedError();
    this.#core.checkOpen();
    if (!this.#worker) {
      this.#worker = this.#core.pickWorkerForContext();
      if (!this.#worker) throw new ContextLostError('No worker is available for this context');
      this.#worker.contexts.add(this.id);
    }
    if (this.#worker.state === 'exited') {
      throw new ContextLostError(
        `The worker that held this context (worker ${this.#worker.id}) has exited; its namespace is gone. Create a new context.`,
      );
    }
    return this.#worker;
  }

  // ---- memory
  // The memory calls act on this context's worker (and so on every context pinned to it). See docs/memory.md.

  get #memory() {
    return contextMemory(() => this.#usableWorker(), this.id);
  }

  /** The memory statistics of this context's worker. Answers while it runs a call. */
  memoryStats(options?: MemoryStatsOptions): Promise<WorkerMemoryStats> {
    return this.#memory.memoryStats(options);
  }

  /** Collect `generation` (default 2: full) on this context's worker; resolves to the objects collected. */
  gc(generation?: GcGeneration): Promise<number> {
    return this.#memory.gc(generation);
  }

  /** Turn automatic collection on (`gc.enable()`). */
  gcEnable(): Promise<void> {
    return this.#memory.gcEnable();
  }

  /** Turn automatic collection off (`gc.disable()`); `gc()` still collects. */
  gcDisable(): Promise<void> {
    return this.#memory.gcDisable();
  }

  /** Whether automatic collection is on (`gc.isenabled()`). */
  gcIsEnabled(): Promise<boolean> {
    return this.#memory.gcIsEnabled();
  }

  /** The collection thresholds (`gc.get_threshold()`). */
  gcGetThreshold(): Promise<number[]> {
    return this.#memory.gcGetThreshold();
  }

  /** Set the collection thresholds (`gc.set_threshold(...)`): 1 to 3 integers >= 0. */
  gcSetThreshold(...thresholds: number[]): Promise<void> {
    return this.#memory.gcSetThreshold(thresholds);
  }

  /** The collector's debug flags (`gc.get_debug()`) by name. */
  gcGetDebug(): Promise<GcDebugFlag[]> {
    return this.#memory.gcGetDebug();
  }

  /** Set the collector's debug flags (`gc.set_debug()`): names such as `'DEBUG_SAVEALL'`, or a mask; `0` or `[]` clears. */
  gcSetDebug(flags: GcDebugFlags): Promise<void> {
    return this.#memory.gcSetDebug(flags);
  }

  /** `gc.garbage`: the count, and the type and a short repr of each object. */
  gcGarbage(options?: GcGarbageOptions): Promise<GcGarbage> {
    return this.#memory.gcGarbage(options);
  }

  /** Empty `gc.garbage`; resolves to the objects removed. */
  gcClearGarbage(): Promise<number> {
    return this.#memory.gcClearGarbage();
  }

  /** Start tracemalloc on this context's worker with `frames` frames per allocation. */
  tracemallocStart(frames = 1): Promise<void> {
    return this.#memory.tracemallocStart(frames);
  }

  /** Stop tracemalloc on this context's worker. */
  tracemallocStop(): Promise<void> {
    return this.#memory.tracemallocStop();
  }

  /** The top allocation sites of this context's worker; rejects with `NotTracingError` when it does not trace. */
  snapshot(options?: SnapshotOptions): Promise<MemorySnapshot> {
    return this.#memory.snapshot(options);
  }

  /** The reference count of what `expression` names in this context (net of the probe's own), and its referrers. */
  references(expression: string, options?: ReferencesOptions): Promise<ReferenceInfo> {
    return this.#memory.references(expression, options);
  }

  /** Which allocator the worker uses (`PYTHONMALLOC`) and pymalloc's arena/pool summary. */
  allocatorInfo(options?: AllocatorInfoOptions): Promise<AllocatorInfo> {
    return this.#memory.allocatorInfo(options);
  }
}
