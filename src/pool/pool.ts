/**
 * The pool: workers, the queue of calls waiting for one, routing, crash recovery and shutdown.
 */
import { EventEmitter } from 'node:events';
import { ArgumentError, PoolClosedError, QueueFullError, WorkerStartError, type WorkerExitInfo } from '../errors.js';
import { Context } from './context.js';
import { CallJob, type Job } from '../worker/job.js';
import { resolveCallOptions, resolvePoolOptions, type CallOptions, type PoolOptions, type ResolvedPoolOptions, type StreamOptions } from '../options.js';
import { checkArgs, checkCode, checkLocals, checkString } from '../validate.js';
import { Kind } from '../protocol/frames.js';
import { resolvePython, type PythonInfo } from '../python.js';
import { requestCall, requestEval, requestExec, requestStreamCall, requestStreamEval } from '../protocol/requests.js';
import { failedStream, PyStream } from './stream.js';
import { PythonWorker, type WorkerConfig } from '../worker/worker.js';
import { trackWorker } from '../exit-guard.js';
import { MemoryMonitor, type MemoryEvent, type PressureEvent } from '../memory/monitor.js';
import { resolveLeakOptions, runLeakSearch, type FindLeaksOptions, type LeakReport, type LeakWorkload } from '../memory/leaks.js';
import { poolMemory, type MemorySnapshot } from '../memory/index.js';
import type { AllocatorInfo, AllocatorInfoOptions, GcDebugFlag, GcDebugFlags, GcGarbage, GcGarbageOptions, GcGeneration, MemoryStatsOptions, PoolMemoryStats, SnapshotOptions } from '../memory/types.js';

/** A call waiting behind one that has run this long (ms) may be taken over by an idle worker. */
const STEAL_AFTER = 2;
/** Workers that die this many times in a row before answering make the pool stop respawning. */
const MAX_START_FAILURES = 3;

export interface WorkerStats {
  workerId: number;
  pid: number | undefined;
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
  perWorker: WorkerStats[];
}

export interface WorkerExitEvent extends WorkerExitInfo {
  /** Why it ended: `'crashed'`, or the host's reason (`'closed'`, an interrupt that was ignored, ...). */
  reason: string;
}

export interface OutputEvent {
  workerId: number;
  pid: number | undefined;
  text: string;
}

/** Why a worker was retired. */
export type RecycleReason = 'maxRss' | 'maxCalls' | 'idleTimeout' | 'manual';

export interface RecycleEvent {
  workerId: number;
  pid: number | undefined;
  reason: RecycleReason;
  /** Its resident memory (bytes) when it was retired, if the OS told. */
  rss: number | undefined;
}

export interface PoolEvents {
  workerStart: [{ workerId: number; pid: number | undefined }];
  recycle: [RecycleEvent];
  memory: [MemoryEvent];
  pressure: [PressureEvent];
  workerExit: [WorkerExitEvent];
  stdout: [OutputEvent];
  stderr: [OutputEvent];
  error: [Error];
}

export interface CloseOptions {
  /** Reject everything pending with `ERR_POOL_CLOSED` and kill the workers now. */
  force?: boolean;
  /** How long in ms to let running calls finish before forcing. Defaults to the pool's `closeTimeout`. */
  timeout?: number;
}

/** Internal view of the pool used by contexts and the memory tools. */
export interface PoolCore {
  readonly options: ResolvedPoolOptions;
  liveWorkers(): PythonWorker[];
  pickWorkerForContext(): PythonWorker | undefined;
  checkOpen(): void;
  track(job: CallJob): void;
  streams: Set<PyStream<unknown>>;
  nextContextId(): number;
  /** A context closed or a stream settled on `worker`: retire it if that was all that kept it. */
  unpinned(worker: PythonWorker): void;
  /** Send a job through the pool's queue. */
  submit(job: Job): void;
  /** Set (or with `undefined`, remove) a setting that every worker started from now on receives. */
  setWorkerInit(key: string, value: unknown): void;
}

interface PendingExec {
  request: { frame: Buffer; flags: number };
  options: { timeout: number | undefined; signal: AbortSignal | undefined };
}

/** A pool of Python worker processes. Create it with {@link createPool}. */
export class Pool extends EventEmitter<PoolEvents> {
  readonly #options: ResolvedPoolOptions;
  readonly #python: PythonInfo;
  readonly #workers: PythonWorker[] = [];
  readonly #queue: Job[] = [];
  /** Code that `exec()` ran on every worker: replayed on workers started later. */
  readonly #execs: string[] = [];
  /** `exec()` calls still running: sent to workers that start meanwhile. */
  readonly #pendingExecs = new Set<PendingExec>();
  readonly #streams = new Set<PyStream<unknown>>();
  #nextWorkerId = 1;
  #nextContextId = 1;
  #completed = 0;
  #failed = 0;
  #restarts = 0;
  #startFailures = 0;
  #broken: Error | undefined;
  #closing = false;
  #closed: Promise<void> | undefined;
  #idleWaiters: Array<() => void> = [];
  #version = '';
  #idleTimer: NodeJS.Timeout | undefined;
  /** With recycling: a worker started ahead, out of rotation, that takes a retired worker's place at once. */
  #spare: (PythonWorker & { ready: Promise<unknown> }) | undefined;
  #monitor: MemoryMonitor | undefined;
  /** Extra settings every new worker receives at start (e.g. tracemalloc). */
  readonly #workerInit: Record<string, unknown> = {};
  /** Workers that were told to trace at start (the others learn it when they enter rotation). */
  readonly #tracingAtSpawn = new WeakSet<PythonWorker>();
  /** @internal */
  readonly core: PoolCore;

  /** @internal Use {@link createPool}. */
  constructor(options: ResolvedPoolOptions, python: PythonInfo) {
    super();
    this.#options = options;
    this.#python = python;
    this.#version = python.version;
    this.core = {
      options,
      liveWorkers: () => this.#workers.filter((w) => w.state !== 'exited'),
      pickWorkerForContext: () => this.#pickForContext(),
      checkOpen: () => this.#checkOpen(),
      track: (job) => this.#track(job),
      streams: this.#streams,
      nextContextId: () => this.#nextContextId++,
      unpinned: (worker) => this.#afterUnpinned(worker),
      submit: (job) => {
        this.#checkOpen();
        this.#enqueue(job);
      },
      setWorkerInit: (key, value) => {
        if (value === undefined) delete this.#workerInit[key];
        else this.#workerInit[key] = value;
      },
    };
  }

  /** @internal */
  async start(): Promise<void> {
    const starting = Array.from({ length: this.#options.workers }, () => this.#spawn());
    this.#ensureSpare();
    if (this.#spare) starting.push(this.#spare);
    const results = await Promise.allSettled(starting.map((w) => w.ready));
    const failure = results.find((r) => r.status === 'rejected');
    if (failure) {
      await this.destroy();
      throw (failure as PromiseRejectedResult).reason;
    }
    if (this.#options.monitor) {
      this.#monitor = new MemoryMonitor(this.#options.monitor, {
        workers: () => this.#workers,
        emitMemory: (event) => this.emit('memory', event),
        emitPressure: (event) => this.emit('pressure', event),
      });
    }
    const idleTimeout = this.#options.recycle.idleTimeout;
    if (idleTimeout !== undefined) {
      this.#idleTimer = setInterval(() => this.#retireIdle(idleTimeout), Math.max(10, Math.min(idleTimeout / 2, 1000)));
      this.#idleTimer.unref();
    }
  }

  /** The Python version of the workers, e.g. `'3.11.7'`. */
  version(): string {
    return this.#version;
  }

  /** The Python executable the workers run. */
  get executable(): string {
    return this.#python.executable;
  }

  /** Call `module.fn(*args, **kwargs)` on any worker. `module` `'__main__'` names what `exec` defined. */
  call<T = any>(module: string, fn: string, args: unknown[] = [], options?: CallOptions): Promise<T> {
    return this.#submitNew(() => {
      const o = resolveCallOptions(options, false);
      return [requestCall(0, checkString(module, 'module'), checkString(fn, 'fn'), checkArgs(args), o.kwargs), o];
    }, Kind.CALL) as Promise<T>;
  }

  /** Evaluate a Python expression with optional local variables (which never persist in the worker). */
  eval<T = any>(code: string, locals?: Record<string, unknown> | null, options?: CallOptions): Promise<T> {
    return this.#submitNew(() => {
      const o = resolveCallOptions(options, false);
      return [requestEval(0, checkCode(code), checkLocals(locals)), o];
    }, Kind.EVAL) as Promise<T>;
  }

  /**
   * Run Python statements in `__main__` of every worker, and of every worker started later (replacements).
   * Resolves when every worker has run it; if it fails anywhere, it rejects and is not replayed.
   */
  async exec(code: string, options?: CallOptions): Promise<void> {
    this.#checkOpen();
    const o = resolveCallOptions(options, false);
    if (o.kwargs) throw new ArgumentError('exec() takes no kwargs');
    const request = requestExec(0, checkCode(code));
    const pending = { request, options: o };
    this.#pendingExecs.add(pending);
    const jobs = [...this.#workers, ...(this.#spare ? [this.#spare] : [])]
      .filter((w) => w.state === 'starting' || w.state === 'ready')
      .map((worker) => this.#sendExec(worker, pending));
    try {
      await Promise.all(jobs);
      this.#execs.push(code);
    } finally {
      this.#pendingExecs.delete(pending);
    }
  }

  #sendExec(worker: PythonWorker, exec: PendingExec): Promise<unknown> {
    const job = new CallJob(Kind.EXEC, Buffer.from(exec.request.frame), exec.request.flags, exec.options, true);
    this.#track(job);
    worker.send(job);
    return job.promise;
  }

  /** Stream the items of the iterable that `module.fn(*args, **kwargs)` returns. */
  stream<T = any>(module: string, fn: string, args: unknown[] = [], options?: StreamOptions): PyStream<T> {
    const o = resolveCallOptions(options, true); // bad arguments throw here, synchronously
    checkString(module, 'module');
    checkString(fn, 'fn');
    checkArgs(args);
    return this.#newStream((credit) => requestStreamCall(0, module, fn, args, o.kwargs, credit), o);
  }

  /** Stream the items of the iterable a Python expression evaluates to. */
  streamEval<T = any>(code: string, locals?: Record<string, unknown> | null, options?: StreamOptions): PyStream<T> {
    const o = resolveCallOptions(options, true);
    checkCode(code);
    checkLocals(locals);
    return this.#newStream((credit) => requestStreamEval(0, code, locals ?? undefined, credit), o);
  }

  /** A namespace of its own, pinned to one worker. Close it to free the namespace. */
  context(): Context {
    this.#checkOpen();
    return new Context(this.core);
  }

  /**
   * Retire every worker: each finishes its calls while a replacement starts (running `setup` and what `exec()`
   * defined), then ends. No call is lost. Workers with open contexts are retired once their contexts close.
   * Resolves when the replacements are ready.
   */
  async recycle(): Promise<void> {
    this.#checkOpen();
    const retiring = this.#workers.filter((w) => w.state === 'ready' || w.state === 'starting').map((w) => this.#retire(w, 'manual'));
    await Promise.all(retiring);
  }

  /**
   * Find what leaks: run `workload` (Python code, or `{ module, fn, args }`) repeatedly on a fresh worker of its
   * own under tracemalloc, and report the allocation sites that grow with the iterations. The pool's workers
   * keep serving meanwhile; the dedicated worker (with the pool's `setup` and `exec()` code) ends afterwards.
   */
  async findLeaks(workload: LeakWorkload, options?: FindLeaksOptions): Promise<LeakReport> {
    this.#checkOpen();
    resolveLeakOptions(options);
    const config = this.#config();
    const worker = new PythonWorker(this.#nextWorkerId++, config, {
      jobEnded: () => {},
      exited: () => {},
      output: (w, stream, text) => this.#output(w, stream, text),
    });
    trackWorker(worker);
    try {
      await worker.start(config);
      return await runLeakSearch(worker, workload, options);
    } finally {
      worker.kill('leak search finished');
    }
  }

  /** Counters and per-worker state; a fresh plain object each time. */
  stats(): PoolStats {
    const live = this.#workers.filter((w) => w.state !== 'exited');
    return {
      workers: live.length,
      busy: live.filter((w) => w.load > 0).length,
      idle: live.filter((w) => w.state === 'ready' && w.load === 0).length,
      queued: this.#waiting(),
      completed: this.#completed,
      failed: this.#failed,
      restarts: this.#restarts,
      perWorker: live.map((w) => ({
        workerId: w.id,
        pid: w.pid,
        state: w.state,
        inFlight: w.load,
        completed: w.completed,
        contexts: w.contexts.size,
      })),
    };
  }

  /**
   * Stop the pool. Accepts nothing new; lets queued and running calls finish (up to `timeout`), then ends the
   * workers. With `force`, rejects everything pending with `ERR_POOL_CLOSED` and kills the workers now.
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (options.force) return this.destroy();
    if (this.#closed) return this.#closed;
    this.#closing = true;
    clearInterval(this.#idleTimer);
    this.#monitor?.stop();
    const timeout = options.timeout ?? this.#options.closeTimeout;
    this.#closed = (async () => {
      const drained = new Promise<boolean>((resolve) => this.#whenIdle(() => resolve(true)));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeout)));
      const finished = await Promise.race([drained, timedOut]);
      clearTimeout(timer);
      if (!finished) return this.#forceClose();
      for (const stream of this.#streams) stream.abandon();
      this.#spare?.kill('closed');
      await Promise.all(this.#workers.map((w) => w.terminate()));
    })();
    return this.#closed;
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
    clearInterval(this.#idleTimer);
    this.#monitor?.stop();
    const error = new PoolClosedError('The pool was destroyed');
    for (const job of this.#queue.splice(0)) failJob(job, error);
    for (const stream of this.#streams) stream.abandon();
    this.#spare?.kill('pool destroyed');
    const exits = this.#workers.map((w) => {
      for (const job of w.sent) failJob(job, error);
      w.kill('pool destroyed');
      return w.exited;
    });
    await Promise.all(exits);
    this.#notifyIdle();
  }

  // ------------------------------------------------------------------ internals

  #checkOpen(): void {
    if (this.#closing) throw new PoolClosedError();
    if (this.#broken) throw this.#broken;
  }

  #submitNew(build: () => [{ frame: Buffer; flags: number; parts?: Uint8Array[] }, { timeout: number | undefined; signal: AbortSignal | undefined }], kind: number): Promise<unknown> {
    try {
      this.#checkOpen();
      const [request, options] = build();
      const job = new CallJob(kind, request.frame, request.flags, { timeout: options.timeout ?? (this.#options.timeout || undefined), signal: options.signal }, false, request.parts);
      this.#track(job);
      if (!job.settled) this.#enqueue(job);
      return job.promise;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #track(job: CallJob): void {
    job.onSettle = (ok) => {
      if (ok) this.#completed++;
      else this.#failed++;
    };
  }

  #newStream<T>(open: (credit: number) => { frame: Buffer; flags: number; kind: number; parts?: Uint8Array[] }, o: { highWaterMark: number; timeout: number | undefined; signal: AbortSignal | undefined }): PyStream<T> {
    try {
      this.#checkOpen();
    } catch (error) {
      return failedStream<T>(error); // a closed pool: the stream rejects when read, as calls reject
    }
    return new PyStream<T>(
      {
        submit: (job) => this.core.submit(job),
        sendTo: (worker, job) => worker.send(job),
        registered: (stream, open) => (open ? this.#streams.add(stream) : this.#streams.delete(stream)),
        unpinned: (worker) => this.#afterUnpinned(worker),
      },
      (credit) => ({ ...open(credit), pinned: false }),
      { highWaterMark: o.highWaterMark, timeout: o.timeout ?? (this.#options.timeout || undefined), signal: o.signal },
    );
  }

  #enqueue(job: Job, front = false): void {
    const worker = this.#queue.length === 0 ? this.#pick() : undefined;
    if (worker && worker.load === 0) {
      worker.send(job); // starts at once
      return;
    }
    // It will wait (sent ahead behind another call, or in the queue): that counts against maxQueue.
    if (!front && this.#waiting() >= this.#options.maxQueue) {
      failJob(job, new QueueFullError(this.#options.maxQueue));
      return;
    }
    if (worker) {
      worker.send(job);
      return;
    }
    if (front) this.#queue.unshift(job);
    else this.#queue.push(job);
    job.dequeue = () => {
      job.dequeue = undefined;
      const at = this.#queue.indexOf(job);
      if (at >= 0) this.#queue.splice(at, 1);
    };
    this.#dispatch();
  }

  /**
   * An idle worker takes over a call that waits behind a running one on another worker (calls are sent ahead to
   * busy workers for throughput; a long call must not hold up the calls behind it while a worker is free). The
   * other worker gives the call back only if it has not started it ('revoke' on its control channel), so a call
   * never runs twice.
   */
  #steal(idle: PythonWorker): void {
    if (this.#queue.length > 0 || idle.load > 0 || idle.state !== 'ready' || idle.stealing || this.#closing) return;
    let victim: PythonWorker | undefined;
    for (const w of this.#workers) {
      if (w !== idle && w.load > 1 && (!victim || w.load > victim.load)) victim = w;
    }
    if (!victim) return;
    // Only from behind a call that has run a while: with short calls the waiting ones start soon anyway, and
    // taking them back would cost more than it saves. Look again when the running call gets old enough.
    const age = performance.now() - victim.sent[0]!.startedAt;
    if (age < STEAL_AFTER) {
      if (!idle.stealTimer) {
        idle.stealTimer = setTimeout(() => {
          idle.stealTimer = undefined;
          this.#steal(idle);
        }, STEAL_AFTER - age + 0.1);
        idle.stealTimer.unref();
      }
      return;
    }
    let job: CallJob | undefined;
    for (let i = victim.sent.length - 1; i >= 1; i--) {
      const candidate = victim.sent[i];
      if (candidate instanceof CallJob && candidate.retryable && !candidate.settled && !candidate.stealing) {
        job = candidate;
        break;
      }
    }
    if (!job) return;
    const from = victim;
    const stolen = job;
    stolen.stealing = idle.stealing = true;
    from.control('revoke', [stolen.id]).then(
      (revoked) => {
        idle.stealing = stolen.stealing = false;
        if (revoked === true) {
          // It will not run there (it may already be off that worker's list: see PythonWorker#onDataFrame).
          from.take(stolen);
          stolen.worker = undefined;
          stolen.id = 0;
          if (!stolen.settled) this.#enqueue(stolen, true);
        }
        this.#steal(idle);
      },
      () => {
        idle.stealing = stolen.stealing = false;
      },
    );
  }

  /** Calls waiting to run: in the pool's queue, or sent ahead to a worker behind the call it runs. */
  #waiting(): number {
    let waiting = this.#queue.length;
    for (const worker of this.#workers) if (worker.load > 1) waiting += worker.load - 1;
    return waiting;
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      const worker = this.#pick();
      if (!worker) break;
      const job = this.#queue.shift()!;
      job.dequeue = undefined;
      if (job instanceof CallJob && job.settled) continue;
      worker.send(job);
    }
    if (this.#queue.length === 0) this.#notifyIdle();
  }

  /** The ready worker with the fewest requests in flight, if one has room. */
  #pick(): PythonWorker | undefined {
    let best: PythonWorker | undefined;
    let retiring: PythonWorker | undefined; // due for retirement: used only when no other worker has room
    for (const worker of this.#workers) {
      if (worker.state !== 'ready' || worker.load >= this.#options.pipelineDepth) continue;
      if (worker.replacing) {
        if (!retiring || worker.load < retiring.load) retiring = worker;
        continue;
      }
      if (!best || worker.load < best.load) best = worker;
      if (worker.load === 0) break;
    }
    return best ?? retiring;
  }

  #pickForContext(): PythonWorker | undefined {
    let best: PythonWorker | undefined;
    for (const worker of this.#workers) {
      if ((worker.state !== 'ready' && worker.state !== 'starting') || worker.replacing) continue;
      if (!best || worker.contexts.size < best.contexts.size || (worker.contexts.size === best.contexts.size && worker.load < best.load)) best = worker;
    }
    return best;
  }

  #afterUnpinned(worker: PythonWorker): void {
    if (worker.retireWhenFree && worker.contexts.size === 0 && worker.streams === 0) void this.#retire(worker, worker.retireWhenFree);
  }

  // ------------------------------------------------------------------ recycling

  /** After each answered job: retire the worker if it passed a threshold; end retired workers once drained. */
  #afterJob(worker: PythonWorker): void {
    worker.lastActive = Date.now();
    if (worker.state === 'retiring') {
      if (worker.load === 0 && worker.killReason === 'recycled') void worker.terminate();
      return;
    }
    if (worker.state !== 'ready' || worker.replacing || this.#closing) return;
    const { maxCalls, maxRss } = this.#options.recycle;
    if (maxCalls !== undefined && worker.served >= maxCalls) {
      void this.#retire(worker, 'maxCalls');
    } else if (maxRss !== undefined && worker.lastActive - worker.rssCheckedAt >= 20) {
      worker.rssCheckedAt = worker.lastActive;
      const rss = worker.rss()?.rss;
      if (rss !== undefined && rss > maxRss) void this.#retire(worker, 'maxRss', rss);
    }
  }

  #retireIdle(idleTimeout: number): void {
    const now = Date.now();
    for (const worker of this.#workers) {
      if (worker.state === 'ready' && worker.load === 0 && worker.served > 0 && !worker.replacing && now - worker.lastActive >= idleTimeout) {
        void this.#retire(worker, 'idleTimeout');
      }
    }
  }

  /**
   * Retire `worker`: its replacement (the spare, started ahead, or a new worker) takes its place; the old worker
   * takes no new calls, finishes those it has, and ends. A worker with open contexts or streams is retired when
   * they end.
   */
  #retire(worker: PythonWorker, reason: RecycleReason, rss = worker.rss()?.rss): Promise<void> {
    if (this.#closing || worker.replacing || (worker.state !== 'ready' && worker.state !== 'starting')) return Promise.resolve();
    if (worker.contexts.size > 0 || worker.streams > 0) {
      worker.retireWhenFree = reason; // contexts and open streams keep their state: retire when they end
      return Promise.resolve();
    }
    worker.retireWhenFree = undefined;
    worker.replacing = true;
    const replacement = this.#spare ?? this.#spawn(false);
    this.#spare = undefined;
    const takeOver = () => {
      if (this.#closing || (worker.state as PythonWorker['state']) === 'exited') {
        replacement.kill('not needed');
        return;
      }
      this.#workers.push(replacement);
      const tracing = this.#workerInit.tracemalloc;
      if (tracing && replacement.info && !this.#tracingAtSpawn.has(replacement)) void replacement.control('tracemalloc_start', [tracing]).catch(() => {});
      this.emit('workerStart', { workerId: replacement.id, pid: replacement.pid });
      worker.state = 'retiring';
      worker.killReason = 'recycled';
      this.emit('recycle', { workerId: worker.id, pid: worker.pid, reason, rss });
      if (worker.load === 0) void worker.terminate();
      this.#ensureSpare();
      this.#dispatch();
      this.#steal(replacement);
    };
    if (replacement.info) {
      takeOver(); // the spare is ready: at once, before the caller's next call
      return Promise.resolve();
    }
    return replacement.ready.then(takeOver, () => {
      worker.replacing = false; // keep the old one serving; a later trigger tries again
      this.#ensureSpare();
    });
  }

  /** With recycling configured, keep one worker started ahead. */
  #ensureSpare(): void {
    const { maxRss, maxCalls, idleTimeout } = this.#options.recycle;
    if (this.#spare || this.#closing || this.#broken) return;
    if (maxRss === undefined && maxCalls === undefined && idleTimeout === undefined) return;
    this.#spare = this.#spawn(false);
  }

  #config(): WorkerConfig {
    const o = this.#options;
    return {
      executable: this.#python.executable,
      cwd: o.cwd,
      env: o.env,
      pythonPath: o.pythonPath,
      setup: [...o.setup, ...this.#execs],
      forceKillAfter: o.forceKillAfter,
      startTimeout: o.startTimeout,
      init: { ...this.#workerInit, memoryLimit: o.maxMemory ?? null, arrays: o.arrays },
    };
  }

  #output(worker: PythonWorker, stream: 'stdout' | 'stderr', text: string): void {
    if (this.#options.forwardOutput) process.stderr.write(text);
    this.emit(stream, { workerId: worker.id, pid: worker.pid, text });
  }

  /** Start a worker; in rotation (takes calls once ready), or not (a spare or a replacement, added later). */
  #spawn(rotation = true): PythonWorker & { ready: Promise<unknown> } {
    const config = this.#config();
    const worker = new PythonWorker(this.#nextWorkerId++, config, {
      jobEnded: (w) => {
        this.#afterJob(w);
        this.#dispatch();
        if (w.load === 0) this.#steal(w);
      },
      exited: (w, info, requeue) => this.#onExit(w, info, requeue),
      output: (w, stream, text) => this.#output(w, stream, text),
    });
    trackWorker(worker);
    if (rotation) this.#workers.push(worker);
    if (config.init?.tracemalloc) this.#tracingAtSpawn.add(worker);
    const started = worker.start(config);
    for (const exec of this.#pendingExecs) this.#sendExec(worker, exec).catch(() => {});
    const ready = started.then(
      (info) => {
        this.#startFailures = 0;
        this.#version = info.version;
        if (rotation) {
          this.emit('workerStart', { workerId: worker.id, pid: worker.pid });
          this.#dispatch();
          this.#steal(worker);
        }
        return info;
      },
      (error: unknown) => {
        worker.startError = error as Error;
        throw error;
      },
    );
    ready.catch(() => {});
    return Object.assign(worker, { ready });
  }

  #onExit(worker: PythonWorker, info: WorkerExitInfo, requeue: Job[]): void {
    const at = this.#workers.indexOf(worker);
    if (at >= 0) this.#workers.splice(at, 1);
    else {
      // Out of rotation: the spare, or a replacement that never took over. Nothing of the pool's ran there.
      if (worker === this.#spare) this.#spare = undefined;
      if (this.#closing) return;
      if (worker.info === undefined && ++this.#startFailures >= MAX_START_FAILURES) this.#breakPool(worker);
      else if (worker.killReason !== 'not needed') this.#ensureSpare();
      return;
    }
    const crashed = !worker.killReason;
    this.emit('workerExit', { ...info, reason: worker.killReason ?? 'crashed' });
    for (let i = requeue.length - 1; i >= 0; i--) {
      const job = requeue[i]!;
      if (this.#closing && !this.#closed) failJob(job, new PoolClosedError());
      else this.#enqueue(job, true);
    }
    if (this.#closing) {
      this.#notifyIdle();
      return;
    }
    const neverReady = worker.info === undefined;
    if (neverReady) this.#startFailures++;
    if (this.#startFailures >= MAX_START_FAILURES) {
      this.#breakPool(worker);
      return;
    }
    if (crashed || neverReady || worker.killReason !== 'recycled') {
      this.#restarts++;
      this.#spawn();
    }
    this.#dispatch();
  }

  #breakPool(worker: PythonWorker): void {
    if (this.#broken) return;
    const cause = worker.startError;
    const error = new WorkerStartError(
      `Python workers keep dying during start-up (${this.#startFailures} in a row); the pool stopped respawning them. ` +
        `Last: ${cause?.message ?? 'no message'}`,
      { cause },
    );
    this.#broken = error;
    for (const job of this.#queue.splice(0)) failJob(job, error);
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else process.emitWarning(error.message, { code: 'PYWORKERS_POOL_BROKEN' });
  }

  #whenIdle(fn: () => void): void {
    this.#idleWaiters.push(fn);
    this.#notifyIdle();
  }

  #notifyIdle(): void {
    if (this.#idleWaiters.length === 0) return;
    if (this.#queue.length > 0 || this.#workers.some((w) => w.load > 0)) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const fn of waiters) fn();
  }

  // ---- memory
  // Pool-wide memory calls act on every ready worker; workers starting, or exiting meanwhile, are left out.
  // See docs/memory.md.

  /** Every ready worker's memory statistics, plus totals. Answers while workers run calls. */
  memoryStats(options?: MemoryStatsOptions): Promise<PoolMemoryStats> {
    return poolMemory(this.core).memoryStats(options);
  }

  /** Collect `generation` (default 2: full) on every worker; resolves to the objects collected, summed. */
  gc(generation?: GcGeneration): Promise<number> {
    return poolMemory(this.core).gc(generation);
  }

  /** Turn automatic collection on in every worker (`gc.enable()`). */
  gcEnable(): Promise<void> {
    return poolMemory(this.core).gcEnable(true);
  }

  /** Turn automatic collection off in every worker (`gc.disable()`); `gc()` still collects. */
  gcDisable(): Promise<void> {
    return poolMemory(this.core).gcEnable(false);
  }

  /** Whether automatic collection is on in every worker. */
  gcIsEnabled(): Promise<boolean> {
    return poolMemory(this.core).gcIsEnabled();
  }

  /** The collection thresholds (`gc.get_threshold()`) of the workers (per worker: `memoryStats()`). */
  gcGetThreshold(): Promise<number[]> {
    return poolMemory(this.core).gcGetThreshold();
  }

  /** Set the collection thresholds of every worker (`gc.set_threshold(...)`): 1 to 3 integers >= 0. */
  gcSetThreshold(...thresholds: number[]): Promise<void> {
    return poolMemory(this.core).gcSetThreshold(thresholds);
  }

  /** The collector's debug flags (`gc.get_debug()`) by name. */
  gcGetDebug(): Promise<GcDebugFlag[]> {
    return poolMemory(this.core).gcGetDebug();
  }

  /** Set the collector's debug flags on every worker (`gc.set_debug()`): names such as `'DEBUG_SAVEALL'`, or a mask; `0` or `[]` clears. */
  gcSetDebug(flags: GcDebugFlags): Promise<void> {
    return poolMemory(this.core).gcSetDebug(flags);
  }

  /** `gc.garbage` of each worker: the count, and the type and a short repr of each object. */
  gcGarbage(options?: GcGarbageOptions): Promise<GcGarbage[]> {
    return poolMemory(this.core).gcGarbage(options);
  }

  /** Empty `gc.garbage` on every worker; resolves to the objects removed. */
  gcClearGarbage(): Promise<number> {
    return poolMemory(this.core).gcClearGarbage();
  }

  /** Start tracemalloc on every worker, and on every worker started later, with `frames` frames per allocation. */
  tracemallocStart(frames = 1): Promise<void> {
    return poolMemory(this.core).tracemallocStart(frames);
  }

  /** Stop tracemalloc on every worker (its traces are dropped; snapshots taken stay). */
  tracemallocStop(): Promise<void> {
    return poolMemory(this.core).tracemallocStop();
  }

  /** The top allocation sites of the tracing workers, merged; rejects with `NotTracingError` when none traces. */
  snapshot(options?: SnapshotOptions): Promise<MemorySnapshot> {
    return poolMemory(this.core).snapshot(options);
  }

  /** Which allocator each worker uses (`PYTHONMALLOC`) and pymalloc's arena/pool summary. */
  allocatorInfo(options?: AllocatorInfoOptions): Promise<AllocatorInfo[]> {
    return poolMemory(this.core).allocatorInfo(options);
  }
}

function failJob(job: Job, error: Error): void {
  if (job instanceof CallJob) job.fail(error);
  else job.onLost(error as never);
}

/** Start a pool of Python workers; resolves once every worker has answered. */
export async function createPool(options?: PoolOptions): Promise<Pool> {
  const resolved = resolvePoolOptions(options);
  const python = await resolvePython(resolved);
  const pool = new Pool(resolved, python);
  await pool.start();
  return pool;
}

export type { Job };
