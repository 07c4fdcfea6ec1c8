/**
 * A context: a namespace of its own, pinned to one worker for its whole life.
 */
import { ArgumentError, ContextClosedError, ContextLostError } from '../errors.js';
import { CallJob } from '../worker/job.js';
import { resolveCallOptions, type CallOptions, type StreamOptions } from '../options.js';
import { checkArgs, checkCode, checkLocals, checkString } from '../validate.js';
import type { PoolCore } from './pool.js';
import { requestCall, requestContextClose, requestEval, requestExec, requestStreamCall, requestStreamEval, type Request } from '../protocol/requests.js';
import { PyStream } from './stream.js';
import type { PythonWorker } from '../worker/worker.js';
import { contextMemory, type MemorySnapshot } from '../memory/index.js';
import type { AllocatorInfo, AllocatorInfoOptions, GcDebugFlag, GcDebugFlags, GcGarbage, GcGarbageOptions, GcGeneration, MemoryStatsOptions, ReferenceInfo, ReferencesOptions, SnapshotOptions, WorkerMemoryStats } from '../memory/types.js';

export class Context {
  /** The context's id (unique in its pool). */
  readonly id: number;
  readonly #core: PoolCore;
  #worker: PythonWorker | undefined;
  #closed = false;

  /** @internal Use `pool.context()`. */
  constructor(core: PoolCore) {
    this.#core = core;
    this.id = core.nextContextId();
    this.#worker = core.pickWorkerForContext();
    this.#worker?.contexts.add(this.id);
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
    return this.#run(() => {
      const o = resolveCallOptions(options, false);
      return [requestCall(this.id, checkString(module, 'module'), checkString(fn, 'fn'), checkArgs(args), o.kwargs), o];
    }) as Promise<T>;
  }

  /** Evaluate an expression in this context's namespace, with optional locals that do not persist. */
  eval<T = any>(code: string, locals?: Record<string, unknown> | null, options?: CallOptions): Promise<T> {
    return this.#run(() => {
      const o = resolveCallOptions(options, false);
      return [requestEval(this.id, checkCode(code), checkLocals(locals)), o];
    }) as Promise<T>;
  }

  /** Run statements in this context's namespace; what they define persists until the context closes. */
  async exec(code: string, options?: CallOptions): Promise<void> {
    await this.#run(() => {
      const o = resolveCallOptions(options, false);
      if (o.kwargs) throw new ArgumentError('exec() takes no kwargs');
      return [requestExec(this.id, checkCode(code)), o];
    });
  }

  /** Stream the items of `module.fn(*args, **kwargs)` from this context's worker. */
  stream<T = any>(module: string, fn: string, args: unknown[] = [], options?: StreamOptions): PyStream<T> {
    const o = resolveCallOptions(options, true); // bad arguments throw here, synchronously
    checkString(module, 'module');
    checkString(fn, 'fn');
    checkArgs(args);
    return this.#stream((credit) => requestStreamCall(this.id, module, fn, args, o.kwargs, credit), o);
  }

  /** Stream the items of an expression evaluated in this context's namespace. */
  streamEval<T = any>(code: string, locals?: Record<string, unknown> | null, options?: StreamOptions): PyStream<T> {
    const o = resolveCallOptions(options, true);
    checkCode(code);
    checkLocals(locals);
    return this.#stream((credit) => requestStreamEval(this.id, code, locals ?? undefined, credit), o);
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

  /** @internal The worker this context lives on, checked to be usable. */
  worker(): PythonWorker {
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

  #run(build: () => [Request, { timeout: number | undefined; signal: AbortSignal | undefined }]): Promise<unknown> {
    try {
      const worker = this.worker();
      const [request, o] = build();
      const job = new CallJob(request.kind, request.frame, request.flags, { timeout: o.timeout ?? (this.#core.options.timeout || undefined), signal: o.signal }, true, request.parts);
      this.#core.track(job);
      if (!job.settled) worker.send(job);
      return job.promise;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #stream<T>(open: (credit: number) => Request, o: { highWaterMark: number; timeout: number | undefined; signal: AbortSignal | undefined }): PyStream<T> {
    return new PyStream<T>(
      {
        submit: (job) => this.worker().send(job),
        sendTo: (worker, job) => worker.send(job),
        registered: (stream, open) => (open ? this.#core.streams.add(stream) : this.#core.streams.delete(stream)),
        unpinned: (worker) => this.#core.unpinned(worker),
      },
      (credit) => ({ ...open(credit), pinned: true }),
      { highWaterMark: o.highWaterMark, timeout: o.timeout ?? (this.#core.options.timeout || undefined), signal: o.signal },
    );
  }

  // ---- memory
  // The memory calls act on this context's worker (and so on every context pinned to it). See docs/memory.md.

  get #memory() {
    return contextMemory(() => this.worker(), this.id);
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
