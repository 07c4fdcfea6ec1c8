/**
 * The public face of a pool: calls, streams, contexts, exec, stats, events, shutdown and the memory API. The work
 * is done by the fleet (workers: start, recycling, exits) and the scheduler (which worker runs what).
 */
import { EventEmitter } from 'node:events';
import { stat } from 'node:fs/promises';
import { PoolClosedError, type WorkerStartError } from '../errors.js';
import { resolveLeakOptions, runLeakSearch, type FindLeaksOptions, type LeakReport, type LeakWorkload } from '../memory/leaks.js';
import { poolMemory, type MemorySnapshot } from '../memory/index.js';
import { MemoryMonitor, type MemoryEvent, type PressureEvent } from '../memory/monitor.js';
import type { AllocatorInfo, AllocatorInfoOptions, GcDebugFlag, GcDebugFlags, GcGarbage, GcGarbageOptions, GcGeneration, MemoryStatsOptions, PoolMemoryStats, SnapshotOptions } from '../memory/types.js';
import { resolveCallOptions, resolvePoolOptions, type CallOptions, type LogRecord, type PoolOptions, type ResolvedPoolOptions, type StreamOptions } from '../options.js';
import { MetricsCollector, type PoolMetrics } from '../metrics/metrics.js';
import { toPrometheus, type PrometheusOptions } from '../metrics/prometheus.js';
import { callChannel, plainChannels, tracedCode, tracing, type CallTraceContext } from '../metrics/tracing.js';
import { registerOpenTelemetry } from '../metrics/opentelemetry.js';
import { readContainer } from '../container.js';
import { resolvePython, type PythonInfo } from '../python.js';
import { checkCode, checkFunction, checkFunctionName, checkKnownKeys, checkMilliseconds, checkObject, checkString } from '../validate.js';
import { callbackScope, type HostFunction } from '../worker/callbacks.js';
import type { CallJob, Job } from '../worker/job.js';
import type { PythonWorker } from '../worker/worker.js';
import { ArgumentError, RefWorkerError } from '../errors.js';
import { Context } from './context.js';
import { PyRef, type RefHost } from './ref.js';
import { Fleet, type RecycleEvent, type RecycleReason, type WorkerExitEvent } from './fleet.js';
import { failJob, Scheduler } from './scheduler.js';
import type { PyStream, StreamState } from './stream.js';
import { publishSettled, streamCall, streamEval, submitCall, submitEval, withCallerStack, type Target } from './submit.js';
import { after, every } from '../util/timers.js';

export type { RecycleEvent, RecycleReason, WorkerExitEvent };

export interface WorkerStats {
  workerId: number;
  pid: number | undefined;
  /** The machine it runs on (`os.hostname()` here; a remote worker's agent's). */
  host: string;
  state: 'starting' | 'ready' | 'retiring' | 'exited';
  /** Requests sent to it and not yet answered. */
  inFlight: number;
  /** Requests it answered. */
  completed: number;
  /** Open contexts pinned to it. */
  contexts: number;
}

export interface PoolStats {
  /** Live worker processes (starting ones included). */
  workers: number;
  /** Workers running a request. */
  busy: number;
  /** Ready workers with nothing to do. */
  idle: number;
  /** Calls waiting to run: in the pool's queue, or sent ahead to a busy worker. */
  queued: number;
  /** Calls that succeeded. */
  completed: number;
  /** Calls that failed (Python errors, timeouts, aborts, crashes). */
  failed: number;
  /** Workers started to replace one that exited. */
  restarts: number;
  /** Open streams: their iterators live in Python (a stream the program drops unclosed is closed once collected). */
  streams: number;
  /** Whether the pool takes calls (false once closing or draining). */
  accepting: boolean;
  perWorker: WorkerStats[];
}


export interface OutputEvent {
  workerId: number;
  pid: number | undefined;
  text: string;
}



export interface PoolEvents {
  workerStart: [{ workerId: number; pid: number | undefined }];
  recycle: [RecycleEvent];
  memory: [MemoryEvent];
  pressure: [PressureEvent];
  workerExit: [WorkerExitEvent];
  stdout: [OutputEvent];
  stderr: [OutputEvent];
  log: [LogRecord];
  error: [Error];
}

export interface DrainOptions {
  /** How long in ms to let queued and running calls finish. Defaults to the pool's `closeTimeout`. */
  timeout?: number;
}

export interface DrainResult {
  /** Whether every call finished in time (else the rest were rejected and the workers killed). */
  drained: boolean;
  /** Calls queued or running when the drain began. */
  pending: number;
  durationMs: number;
}

export interface CloseOptions {
  /** The same as `drain()` (close() always lets queued and running calls finish, within `timeout`). */
  drain?: boolean;
  /** Reject everything pending with `ERR_POOL_CLOSED` and kill the workers now. */
  force?: boolean;
  /** How long in ms to let running calls finish before forcing. Defaults to the pool's `closeTimeout`. */
  timeout?: number;
}

/** What contexts, the default pool and the memory API use of a pool (not exported from the package). */
export interface PoolCore {
  readonly options: ResolvedPoolOptions;
  /** Requests through the pool's queue. */
  readonly target: Target;
  liveWorkers(): PythonWorker[];
  pickWorkerForContext(): PythonWorker | undefined;
  checkOpen(): void;
  track(job: CallJob): void;
  /** A stream opened (counted among the pool's streams) or settled. */
  registered(state: StreamState, stream: PyStream<unknown> | undefined, open: boolean): void;
  /** A context closed or a stream settled on `worker`: retire it if that was all that kept it. */
  unpinned(worker: PythonWorker): void;
  nextContextId(): number;
  /** Set (or with `undefined`, remove) a setting that every worker started from now on receives. */
  setWorkerInit(key: string, value: unknown): void;
}

/** A pool of Python worker processes. Create it with {@link createPool}. */
export class Pool extends EventEmitter<PoolEvents> {
  readonly #options: ResolvedPoolOptions;
  readonly #fleet: Fleet;
  readonly #scheduler: Scheduler<PythonWorker>;
  /** Open streams, held weakly: one the program drops is closed when collected. */
  readonly #streams = new Map<StreamState, WeakRef<PyStream<unknown>>>();
  readonly #core: PoolCore;
  #nextContextId = 1;
  #completed = 0;
  #failed = 0;
  #closing = false;
  #closed: Promise<void> | undefined;
  #idleWaiters: Array<() => void> = [];
  #idleTimer: NodeJS.Timeout | undefined;
  #monitor: MemoryMonitor | undefined;
  readonly #collector: MetricsCollector;
  #shutdown: Promise<boolean> | undefined;
  #queueHold: NodeJS.Timeout | undefined;

  /** @internal Use {@link createPool}. */
  constructor(options: ResolvedPoolOptions, python: PythonInfo) {
    super();
    this.#options = options;
    this.#collector = new MetricsCollector(
      {
        workers: () => this.#fleet.slots.map((slot) => slot.worker),
        queued: () => this.#scheduler.waiting(),
        restarts: () => this.#fleet.restarts,
        memoryLimit: () => options.maxMemory ?? null,
      },
      { enabled: options.metrics },
    );
    const closing = () => this.#closing;
    const refHost: RefHost = {
      defaultTimeout: () => options.timeout || undefined,
      defaultDeadline: () => options.deadline || undefined,
      checkOpen: () => this.#checkOpen(),
      track: (job) => this.#track(job),
      unpinned: (worker) => this.#fleet.unpinned(worker),
    };
    this.#fleet = new Fleet(options, python, {
      workerStart: (worker) => this.emit('workerStart', { workerId: worker.id, pid: worker.pid }),
      workerExit: (event) => {
        if (event.reason === 'crashed') this.#collector.crashed();
        this.emit('workerExit', event);
      },
      recycle: (event) => {
        this.#collector.recycled(event.reason);
        this.emit('recycle', event);
      },
      log: (worker, record) => this.#onLog(worker, record as unknown as LogRecord),
      output: (worker, stream, text) => {
        if (options.forwardOutput) process.stderr.write(text);
        this.emit(stream, { workerId: worker.id, pid: worker.pid, text });
      },
      jobEnded: (slot) => {
        this.#fleet.afterJob(slot);
        this.#scheduler.dispatch();
        if (slot.worker.load === 0) this.#scheduler.steal(slot);
      },
      joined: (slot) => {
        this.#scheduler.dispatch();
        this.#scheduler.steal(slot);
      },
      left: () => {
        if (this.#closing) this.#notifyIdle();
        else this.#scheduler.dispatch();
      },
      requeue: (job) => {
        if (this.#closing && !this.#closed) failJob(job, new PoolClosedError());
        else {
          this.#scheduler.enqueue(job, true);
          if (options.remote) this.#holdWhileQueued();
        }
      },
      reclaim: (slot) => this.#scheduler.reclaim(slot),
      broken: (error) => this.#onBroken(error),
      closing,
      handles: (worker) => (_token, id, typeName) => new PyRef(refHost, worker, id, typeName),
    }, (job) => this.#track(job));
    const fleet = this.#fleet;
    this.#scheduler = new Scheduler<PythonWorker>(
      {
        get slots() {
          return fleet.slots;
        },
        get closing() {
          return closing();
        },
        idle: () => this.#notifyIdle(),
      },
      options,
    );
    const target: Target = {
      ctx: 0,
      pinned: false,
      defaultTimeout: () => options.timeout || undefined,
      defaultDeadline: () => options.deadline || undefined,
      check: () => this.#checkOpen(),
      track: (job) => this.#track(job),
      submit: (job, home) => {
        this.#checkOpen();
        if (home) {
          if (!fleet.owns(home)) throw new RefWorkerError(`A handle of another pool's worker was passed to this pool: a handle works only on its own worker`);
          home.send(job); // its handles' objects live there
          return;
        }
        // Made by a host function Python waits for: to that worker, which runs it inside its wait (nested). Queued
        // behind the waiting call, it could wait for it forever.
        const scope = callbackScope.getStore();
        const worker = scope?.active ? scope.worker : undefined;
        if (worker && worker.state !== 'exited' && fleet.owns(worker)) worker.send(job);
        else {
          this.#scheduler.enqueue(job);
          if (options.remote) this.#holdWhileQueued();
        }
      },
      registered: (state, stream, open) => this.#registered(state, stream, open),
      unpinned: (worker) => fleet.unpinned(worker),
    };
    this.#core = {
      options,
      target,
      liveWorkers: () => fleet.live(),
      pickWorkerForContext: () => this.#scheduler.pickForContext()?.worker,
      checkOpen: () => this.#checkOpen(),
      track: (job) => this.#track(job),
      registered: (state, stream, open) => this.#registered(state, stream, open),
      unpinned: (worker) => fleet.unpinned(worker),
      nextContextId: () => this.#nextContextId++,
      setWorkerInit: (key, value) => fleet.setWorkerInit(key, value),
    };
  }

  /** @internal */
  get core(): PoolCore {
    return this.#core;
  }

  /** @internal */
  async start(): Promise<void> {
    try {
      await this.#fleet.start();
    } catch (error) {
      await this.destroy();
      throw error;
    }
    this.#fleet.startWatch();
    warnIfOvercommitted(this.#options);
    if (this.#options.openTelemetry !== false) {
      this.#collector.openTelemetry = await registerOpenTelemetry(this, this.#options.openTelemetry === true ? undefined : this.#options.openTelemetry);
    }
    if (this.#options.monitor) {
      const fleet = this.#fleet;
      this.#monitor = new MemoryMonitor(this.#options.monitor, {
        workers: () => fleet.slots.map((s) => s.worker),
        emitMemory: (event) => this.emit('memory', event),
        emitPressure: (event) => this.emit('pressure', event),
      });
    }
    const idleTimeout = this.#options.recycle.idleTimeout;
    // A remote pool's workers may have their agent's idleTimeout.
    if (idleTimeout !== undefined || this.#options.remote) {
      this.#idleTimer = every(idleTimeout === undefined ? 1000 : Math.max(10, Math.min(idleTimeout / 2, 1000)), () => this.#fleet.retireIdle(idleTimeout));
    }
  }

  /** The Python version of the workers, e.g. `'3.11.7'`. */
  version(): string {
    return this.#fleet.version;
  }

  /** The Python executable the workers run (a remote pool: its first agent's). */
  get executable(): string {
    return this.#fleet.agents.find((a) => a.welcome)?.welcome?.python.executable ?? this.#fleet.config().executable;
  }

  /** Call `module.fn(*args, **kwargs)` on any worker. `module` `'__main__'` names what `exec` defined. */
  call<T = any>(module: string, fn: string, args: unknown[] = [], options?: CallOptions): Promise<T> {
    return submitCall(this.#core.target, module, fn, args, options) as Promise<T>;
  }

  /** Evaluate a Python expression with optional local variables (which never persist in the worker). */
  eval<T = any>(code: string, locals?: Record<string, unknown> | null, options?: CallOptions): Promise<T> {
    return submitEval(this.#core.target, code, locals, options) as Promise<T>;
  }

  /** Call `module.fn(*args, **kwargs)` and answer with a handle to its result, which stays in the worker. */
  callRef(module: string, fn: string, args: unknown[] = [], options?: CallOptions): Promise<PyRef> {
    return submitCall(this.#core.target, module, fn, args, options, true) as Promise<PyRef>;
  }

  /** Evaluate a Python expression and answer with a handle to its value, which stays in the worker. */
  evalRef(code: string, locals?: Record<string, unknown> | null, options?: CallOptions): Promise<PyRef> {
    return submitEval(this.#core.target, code, locals, options, true) as Promise<PyRef>;
  }

  /**
   * Let Python call `fn` as `host.<name>(...)` (`from pyworkers import host`), on every worker, from now on.
   * Replaces a function of that name.
   */
  expose(name: string, fn: HostFunction): void {
    this.#options.functions.set(checkFunctionName(name, 'name'), checkFunction(fn, 'fn'));
  }

  /** Forget the host function `name`; Python calls to it then raise. Returns whether it was registered. */
  unexpose(name: string): boolean {
    return this.#options.functions.delete(checkString(name, 'name'));
  }

  /**
   * Run Python statements in `__main__` of every worker, and of every worker started later (replacements).
   * Resolves when every worker has run it; if it fails anywhere, it rejects and is not replayed.
   */
  async exec(code: string, options?: CallOptions): Promise<void> {
    this.#checkOpen();
    const o = resolveCallOptions(options, false);
    if (o.kwargs) throw new ArgumentError('exec() takes no kwargs');
    checkCode(code);
    if (!tracing()) {
      await this.#fleet.exec(code, { timeout: o.timeout, signal: o.signal }).catch(withCallerStack);
      return;
    }
    const context: CallTraceContext = { kind: 'exec', code: tracedCode(code) };
    const started = performance.now();
    callChannel.start.publish(context);
    plainChannels.start.publish(context);
    callChannel.end.publish(context);
    try {
      await this.#fleet.exec(code, { timeout: o.timeout, signal: o.signal });
      context.durationMs = performance.now() - started;
      publishSettled(context, true, undefined);
    } catch (error) {
      context.durationMs = performance.now() - started;
      publishSettled(context, false, error);
      withCallerStack(error);
    }
  }

  /** Stream the items of the iterable that `module.fn(*args, **kwargs)` returns. */
  stream<T = any>(module: string, fn: string, args: unknown[] = [], options?: StreamOptions): PyStream<T> {
    return streamCall<T>(this.#core.target, module, fn, args, options);
  }

  /** Stream the items of the iterable a Python expression evaluates to. */
  streamEval<T = any>(code: string, locals?: Record<string, unknown> | null, options?: StreamOptions): PyStream<T> {
    return streamEval<T>(this.#core.target, code, locals, options);
  }

  /** A namespace of its own, pinned to one worker. Close it to free the namespace. */
  context(): Context {
    this.#checkOpen();
    return new Context(this.#core);
  }

  /**
   * Retire every worker: each finishes its calls while a replacement starts (running `setup` and what `exec()`
   * defined), then ends. No call is lost. Workers with open contexts are retired once their contexts close.
   * Resolves when the replacements are ready.
   */
  async recycle(): Promise<void> {
    this.#checkOpen();
    await this.#fleet.recycleAll();
  }

  /**
   * Find what leaks: run `workload` (Python code, or `{ module, fn, args }`) repeatedly on a fresh worker of its
   * own under tracemalloc, and report the allocation sites that grow with the iterations. The pool's workers
   * keep serving meanwhile; the dedicated worker (with the pool's `setup` and `exec()` code) ends afterwards.
   */
  async findLeaks(workload: LeakWorkload, options?: FindLeaksOptions): Promise<LeakReport> {
    this.#checkOpen();
    resolveLeakOptions(options);
    const { worker, config } = this.#fleet.detached();
    try {
      await worker.start(config);
      return await runLeakSearch(worker, workload, options);
    } finally {
      worker.kill('leak search finished');
    }
  }

  /** Counters and per-worker state; a fresh plain object each time. */
  stats(): PoolStats {
    const live = this.#fleet.live();
    return {
      workers: live.length,
      busy: live.filter((w) => w.load > 0).length,
      idle: live.filter((w) => w.state === 'ready' && w.load === 0).length,
      queued: this.#scheduler.waiting(),
      completed: this.#completed,
      failed: this.#failed,
      restarts: this.#fleet.restarts,
      streams: this.#streams.size,
      accepting: !this.#closing,
      perWorker: live.map((w) => ({
        workerId: w.id,
        pid: w.pid,
        host: w.host,
        state: w.state,
        inFlight: w.load,
        completed: w.completed,
        contexts: w.contexts.size,
      })),
    };
  }

  /**
   * Counters and histograms of the calls and workers (see docs/operations.md): a fresh plain object. Reads each
   * worker's Python figures on its control channel (answered while it runs a call); cheap enough to call every
   * second.
   */
  metrics(): Promise<PoolMetrics> {
    return this.#collector.collect();
  }

  /** `metrics()` in the Prometheus text format, for a `/metrics` endpoint. */
  async prometheus(options?: PrometheusOptions): Promise<string> {
    return toPrometheus(await this.metrics(), options);
  }

  /**
   * Stop the pool. Accepts nothing new; lets queued and running calls finish (up to `timeout`), then ends the
   * workers. With `force`, rejects everything pending with `ERR_POOL_CLOSED` and kills the workers now.
   */
  close(options: CloseOptions = {}): Promise<void> {
    checkObject(options, 'close() options');
    checkKnownKeys(options, ['force', 'timeout', 'drain'], 'close() options');
    if (options.force && options.drain) return Promise.reject(new ArgumentError('close() options: force and drain exclude each other'));
    if (options.force) return this.destroy();
    const timeout = options.timeout === undefined ? this.#options.closeTimeout : checkMilliseconds(options.timeout, 'options.timeout');
    return this.#shutDown(timeout).then(() => {});
  }

  /**
   * Graceful shutdown (a SIGTERM from Kubernetes, say): stop taking calls at once (they reject with
   * `ERR_POOL_CLOSED`; `ready` and `stats().accepting` turn false), let the queued and running ones finish within
   * `timeout` ms (default: the pool's `closeTimeout`), then end the workers. Calls still unfinished at the deadline
   * reject with `ERR_POOL_CLOSED` and their workers are killed. Resolves to whether every call finished in time.
   */
  async drain(options: DrainOptions = {}): Promise<DrainResult> {
    checkObject(options, 'drain() options');
    checkKnownKeys(options, ['timeout'], 'drain() options');
    const timeout = options.timeout === undefined ? this.#options.closeTimeout : checkMilliseconds(options.timeout, 'options.timeout');
    const started = performance.now();
    const pending = this.#scheduler.waiting() + this.#fleet.slots.filter((s) => s.worker.load > 0).length;
    const drained = await this.#shutDown(timeout);
    return { drained, pending, durationMs: performance.now() - started };
  }

  /** Whether the pool takes calls: false once `close()`, `drain()` or `destroy()` was called. */
  get accepting(): boolean {
    return !this.#closing;
  }

  /** For readiness probes: the pool takes calls and at least one worker is ready to run them. */
  get ready(): boolean {
    return !this.#closing && !this.#fleet.broken && this.#fleet.slots.some((s) => s.worker.state === 'ready');
  }

  /** close() and drain(): resolves to whether everything finished within `timeout` (else it was forced). */
  #shutDown(timeout: number): Promise<boolean> {
    if (this.#shutdown) return this.#shutdown;
    if (this.#closed) return (this.#shutdown = this.#closed.then(() => false));
    this.#closing = true;
    clearInterval(this.#idleTimer);
    this.#fleet.stopWatch();
    this.#monitor?.stop();
    this.#stopOpenTelemetry();
    const shutdown = (async () => {
      const drained = new Promise<boolean>((resolve) => this.#whenIdle(() => resolve(true)));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((resolve) => (timer = after(timeout, () => resolve(false))));
      const finished = await Promise.race([drained, timedOut]);
      clearTimeout(timer);
      if (!finished) {
        await this.#forceClose();
        return false;
      }
      for (const ref of [...this.#streams.values()]) ref.deref()?.abandon();
      await this.#fleet.terminateAll();
      return true;
    })();
    this.#shutdown = shutdown;
    this.#closed = shutdown.then(() => {});
    return shutdown;
  }

  /** Reject everything pending with `ERR_POOL_CLOSED` and kill the workers now. */
  destroy(): Promise<void> {
    this.#closing = true;
    const closing = this.#forceClose();
    this.#closed ??= closing;
    return closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #forceClose(): Promise<void> {
    this.#closing = true;
    this.#stopOpenTelemetry();
    clearInterval(this.#idleTimer);
    this.#fleet.stopWatch();
    this.#monitor?.stop();
    const error = new PoolClosedError('The pool was destroyed');
    for (const job of this.#scheduler.takeAll()) failJob(job, error);
    for (const ref of [...this.#streams.values()]) ref.deref()?.abandon();
    for (const slot of this.#fleet.slots) for (const job of slot.worker.sent) failJob(job, error);
    await this.#fleet.killAll('pool destroyed');
    this.#notifyIdle();
  }

  // ------------------------------------------------------------------ internals

  /**
   * A remote pool whose calls wait in its queue (no agent reachable, all busy): keep Node alive until they leave
   * it, as a local pool's starting workers do. Its agents' reconnection timers do not, so that an idle pool lets
   * the process exit.
   */
  #holdWhileQueued(): void {
    if (this.#queueHold || this.#scheduler.waiting() === 0) return;
    this.#queueHold = setInterval(() => {
      if (this.#scheduler.waiting() > 0 && !this.#closed) return;
      clearInterval(this.#queueHold);
      this.#queueHold = undefined;
    }, 50);
  }

  #checkOpen(): void {
    if (this.#closing) throw new PoolClosedError();
    const broken = this.#fleet.broken;
    if (broken) throw broken;
  }

  #track(job: CallJob): void {
    job.onSettle = (ok, error) => {
      if (ok) this.#completed++;
      else this.#failed++;
      this.#collector.settled(job, ok, error);
      if (job.trace) publishSettled(job.trace, ok, error, job);
    };
  }

  #stopOpenTelemetry(): void {
    this.#collector.openTelemetry?.stop();
    this.#collector.openTelemetry = undefined;
  }

  #onLog(worker: PythonWorker, record: LogRecord): void {
    const handler = this.#options.logging?.handler;
    if (handler) {
      try {
        handler(record);
      } catch (error) {
        process.emitWarning(`options.logging.handler threw: ${(error as Error)?.message ?? String(error)}`, { code: 'PYWORKERS_LOG_HANDLER' });
      }
    }
    if (this.listenerCount('log') > 0) this.emit('log', record);
    else if (!handler) process.stderr.write(`[pyworkers worker ${worker.id}] ${record.level} ${record.logger}: ${record.message}\n${record.exception ? `${record.exception}\n` : ''}`);
  }

  #registered(state: StreamState, stream: PyStream<unknown> | undefined, open: boolean): void {
    if (open && stream) this.#streams.set(state, new WeakRef(stream));
    else this.#streams.delete(state);
  }

  #onBroken(error: WorkerStartError): void {
    for (const job of this.#scheduler.takeAll()) failJob(job, error);
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else process.emitWarning(error.message, { code: 'PYWORKERS_POOL_BROKEN' });
  }

  #whenIdle(fn: () => void): void {
    this.#idleWaiters.push(fn);
    this.#notifyIdle();
  }

  #notifyIdle(): void {
    if (this.#idleWaiters.length === 0 || !this.#scheduler.drained) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const fn of waiters) fn();
  }

  // ---- memory
  // Pool-wide memory calls act on every ready worker; workers starting, or exiting meanwhile, are left out.
  // See docs/memory.md.

  /** Every ready worker's memory statistics, plus totals. Answers while workers run calls. */
  memoryStats(options?: MemoryStatsOptions): Promise<PoolMemoryStats> {
    return poolMemory(this.#core).memoryStats(options);
  }

  /** Collect `generation` (default 2: full) on every worker; resolves to the objects collected, summed. */
  gc(generation?: GcGeneration): Promise<number> {
    return poolMemory(this.#core).gc(generation);
  }

  /** Turn automatic collection on in every worker (`gc.enable()`). */
  gcEnable(): Promise<void> {
    return poolMemory(this.#core).gcEnable(true);
  }

  /** Turn automatic collection off in every worker (`gc.disable()`); `gc()` still collects. */
  gcDisable(): Promise<void> {
    return poolMemory(this.#core).gcEnable(false);
  }

  /** Whether automatic collection is on in every worker. */
  gcIsEnabled(): Promise<boolean> {
    return poolMemory(this.#core).gcIsEnabled();
  }

  /** The collection thresholds (`gc.get_threshold()`) of the workers (per worker: `memoryStats()`). */
  gcGetThreshold(): Promise<number[]> {
    return poolMemory(this.#core).gcGetThreshold();
  }

  /** Set the collection thresholds of every worker (`gc.set_threshold(...)`): 1 to 3 integers >= 0. */
  gcSetThreshold(...thresholds: number[]): Promise<void> {
    return poolMemory(this.#core).gcSetThreshold(thresholds);
  }

  /** The collector's debug flags (`gc.get_debug()`) by name. */
  gcGetDebug(): Promise<GcDebugFlag[]> {
    return poolMemory(this.#core).gcGetDebug();
  }

  /** Set the collector's debug flags on every worker (`gc.set_debug()`): names such as `'DEBUG_SAVEALL'`, or a mask; `0` or `[]` clears. */
  gcSetDebug(flags: GcDebugFlags): Promise<void> {
    return poolMemory(this.#core).gcSetDebug(flags);
  }

  /** `gc.garbage` of each worker: the count, and the type and a short repr of each object. */
  gcGarbage(options?: GcGarbageOptions): Promise<GcGarbage[]> {
    return poolMemory(this.#core).gcGarbage(options);
  }

  /** Empty `gc.garbage` on every worker; resolves to the objects removed. */
  gcClearGarbage(): Promise<number> {
    return poolMemory(this.#core).gcClearGarbage();
  }

  /** Start tracemalloc on every worker, and on every worker started later, with `frames` frames per allocation. */
  tracemallocStart(frames = 1): Promise<void> {
    return poolMemory(this.#core).tracemallocStart(frames);
  }

  /** Stop tracemalloc on every worker (its traces are dropped; snapshots taken stay). */
  tracemallocStop(): Promise<void> {
    return poolMemory(this.#core).tracemallocStop();
  }

  /** The top allocation sites of the tracing workers, merged; rejects with `NotTracingError` when none traces. */
  snapshot(options?: SnapshotOptions): Promise<MemorySnapshot> {
    return poolMemory(this.#core).snapshot(options);
  }

  /** Which allocator each worker uses (`PYTHONMALLOC`) and pymalloc's arena/pool summary. */
  allocatorInfo(options?: AllocatorInfoOptions): Promise<AllocatorInfo[]> {
    return poolMemory(this.#core).allocatorInfo(options);
  }
}

/** Start a pool of Python workers; resolves once every worker has answered. */
export async function createPool(options?: PoolOptions): Promise<Pool> {
  const resolved = resolvePoolOptions(options);
  await checkDirectory(resolved.cwd, 'options.cwd');
  // A remote pool's Python is its agents' (each says its version when it lets the host in).
  const python = resolved.remote ? { executable: 'remote', version: 'unknown' } : await resolvePython(resolved);
  const pool = new Pool(resolved, python);
  await pool.start();
  return pool;
}

export type { Job };

let overcommitWarned = false;

/**
 * Warn once per process when the workers' caps (plus this process) do not fit the container's memory limit: the
 * kernel's OOM killer would then end a worker (or the service) before `maxMemory` does.
 */
function warnIfOvercommitted(options: ResolvedPoolOptions): void {
  if (overcommitWarned || options.maxMemory === undefined) return;
  const { memoryLimit } = readContainer();
  if (memoryLimit === null) return;
  const workers = options.workers + (options.recycle.maxRss !== undefined || options.recycle.maxCalls !== undefined || options.recycle.idleTimeout !== undefined ? 1 : 0);
  const needed = options.maxMemory * workers + process.memoryUsage().rss;
  if (needed <= memoryLimit) return;
  overcommitWarned = true;
  const mib = (n: number) => `${Math.round(n / 2 ** 20)} MiB`;
  process.emitWarning(
    `maxMemory ${mib(options.maxMemory)} × ${workers} workers${workers > options.workers ? ' (the spare included)' : ''} + this process (${mib(process.memoryUsage().rss)}) = ${mib(needed)}, above the container's memory limit of ${mib(memoryLimit)}: the kernel may kill a worker before its cap applies. Lower maxMemory or workers, or raise the limit.`,
    { code: 'PYWORKERS_MEMORY_OVERCOMMIT' },
  );
}

/** The workers' working directory must be one: else spawning fails with an error that names the interpreter. */
async function checkDirectory(dir: string, name: string): Promise<void> {
  let stats;
  try {
    stats = await stat(dir);
  } catch {
    throw new ArgumentError(`${name} ${JSON.stringify(dir)} does not exist`);
  }
  if (!stats.isDirectory()) throw new ArgumentError(`${name} ${JSON.stringify(dir)} is not a directory`);
}
