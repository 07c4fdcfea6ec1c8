/**
 * The pool's workers: starting them (in rotation, or a spare started ahead), replaying `exec()` on the ones that
 * start later, recycling (maxRss, maxCalls, idleTimeout, recycle()), and what happens when one exits: its calls
 * that never started go back to the queue, and a replacement starts, unless workers keep dying at start-up.
 */
import { WorkerStartError, type WorkerExitInfo } from '../errors.js';
import { trackWorker } from '../exit-guard.js';
import type { ResolvedPoolOptions } from '../options.js';
import { requestExec } from '../protocol/requests.js';
import type { HandleFactory } from '../protocol/handles.js';
import type { PythonInfo } from '../python.js';
import { CallJob, type Job, type JobOptions } from '../worker/job.js';
import { PythonWorker, type WorkerConfig, type WorkerEvents } from '../worker/worker.js';
import { Slot } from './slot.js';
import { GC_PAUSE_BUCKETS } from '../metrics/histogram.js';
import { RemoteError } from '../errors.js';
import type { AgentConnection } from '../remote/connection.js';
import { Placement } from '../remote/placement.js';
import { after } from '../util/timers.js';

/** Workers that die this many times in a row before answering make the pool stop respawning (a remote pool: that agent, for a while). */
const MAX_START_FAILURES = 3;
/** How long (ms) a remote pool leases nothing on an agent whose workers keep failing to start. */
const AGENT_BACKOFF = 30_000;
/** RSS is read for `recycle.maxRss` after a call at most this often per worker (ms). */
const RSS_CHECK_INTERVAL = 20;
/** The watchdog reads every worker's memory and state from /proc this often (ms) with maxMemory or maxRss set... */
const WATCH_INTERVAL = 100;
/** ... and this often without (it then only looks for stopped workers). */
const WATCH_INTERVAL_IDLE = 500;

/** Why a worker was retired. */
export type RecycleReason = 'maxRss' | 'maxCalls' | 'idleTimeout' | 'manual';
/** The kill reason of a remote worker given back to its agent (it drains, DNS no longer lists it, or our share shrank). */
const RELEASED = 'given back to its agent';

export interface RecycleEvent {
  workerId: number;
  pid: number | undefined;
  reason: RecycleReason;
  /** Its resident memory (bytes) when it was retired, if the OS told. */
  rss: number | undefined;
}

export interface WorkerExitEvent extends WorkerExitInfo {
  /** Why it ended: `'crashed'`, or the host's reason (`'closed'`, an interrupt that was ignored, ...). */
  reason: string;
}

export type WorkerSlot = Slot<PythonWorker>;

/** Makes the worker processes (a fake in unit tests). */
export type WorkerFactory = (id: number, config: WorkerConfig, events: WorkerEvents) => PythonWorker;
const spawnProcess: WorkerFactory = (id, config, events) => new PythonWorker(id, config, events);

/** What the fleet tells the rest of the pool. */
export interface FleetHooks {
  workerStart(worker: PythonWorker): void;
  workerExit(event: WorkerExitEvent): void;
  recycle(event: RecycleEvent): void;
  output(worker: PythonWorker, stream: 'stdout' | 'stderr', text: string): void;
  /** A worker answered a request (it may take more). */
  jobEnded(slot: WorkerSlot): void;
  /** A worker entered rotation: queued calls may go to it. */
  joined(slot: WorkerSlot): void;
  /** A job that never started on a worker that exited: run it elsewhere. */
  requeue(job: Job): void;
  /** A worker was retired: take back the calls sent ahead to it that it has not started. */
  reclaim(slot: WorkerSlot): void;
  /** A worker of the rotation exited (its jobs requeued). */
  left(): void;
  /** The pool cannot start workers any more. */
  broken(error: WorkerStartError): void;
  /** The pool is closing (nothing is restarted or recycled then). */
  closing(): boolean;
  /** Makes the handle objects (PyRefs) of a worker's replies. */
  handles(worker: PythonWorker): HandleFactory;
  /** A Python logging record (with the `logging` option). */
  log(worker: PythonWorker, record: Record<string, unknown>): void;
}

interface PendingExec {
  request: { kind: number; frame: Buffer; flags: number };
  options: JobOptions;
}

export class Fleet {
  /** The workers in rotation. */
  readonly slots: WorkerSlot[] = [];
  /** With recycling: a worker started ahead, out of rotation, that takes a retired worker's place at once. */
  #spare: WorkerSlot | undefined;
  /** Code that `exec()` ran on every worker: replayed on workers started later. */
  readonly #execs: string[] = [];
  /** `exec()` calls still running: sent to workers that start meanwhile. */
  readonly #pendingExecs = new Set<PendingExec>();
  /** Extra settings every new worker receives at start (e.g. tracemalloc). */
  readonly #workerInit: Record<string, unknown> = {};
  /** Workers that were told to trace at start (the others learn it when they enter rotation). */
  readonly #tracingAtSpawn = new WeakSet<PythonWorker>();
  /** Every worker of the pool (in rotation or not) → its slot. */
  readonly #slotOf = new Map<PythonWorker, WorkerSlot>();
  #nextWorkerId = 1;
  #startFailures = 0;
  #restarts = 0;
  #broken: WorkerStartError | undefined;
  #watchTimer: NodeJS.Timeout | undefined;
  /** A remote pool's agents (undefined: workers are processes of this machine). */
  readonly #placement: Placement | undefined;
  /** A remote pool: each worker's agent. */
  readonly #agentOf = new Map<PythonWorker, AgentConnection>();
  /** The Python version the workers reported. */
  version: string;

  constructor(
    private readonly options: ResolvedPoolOptions,
    private readonly python: PythonInfo,
    private readonly hooks: FleetHooks,
    private readonly track: (job: CallJob) => void,
    private readonly createWorker: WorkerFactory = spawnProcess,
  ) {
    this.version = python.version;
    if (options.remote) {
      this.#placement = new Placement(options.remote, {
        capacity: () => this.#fill(),
        release: (agent) => this.#release(agent),
        regrant: (agent) => this.#regrant(agent),
      });
    }
  }

  /** A remote pool's agents. */
  get agents(): AgentConnection[] {
    return this.#placement?.connections ?? [];
  }

  /** Workers started to replace one that exited. */
  get restarts(): number {
    return this.#restarts;
  }

  /** Set when workers kept dying at start-up: the pool refuses calls with it. */
  get broken(): WorkerStartError | undefined {
    return this.#broken;
  }

  /** Whether `worker` is one of this pool's (in rotation, the spare, or retiring). */
  owns(worker: PythonWorker): boolean {
    return this.#slotOf.has(worker);
  }

  /** The pool's workers in rotation that have not exited. */
  live(): PythonWorker[] {
    return this.slots.map((s) => s.worker).filter((w) => w.state !== 'exited');
  }

  /** Start the pool's workers (and the spare); rejects with the first failure. */
  async start(): Promise<void> {
    let starting: WorkerSlot[];
    if (this.#placement) {
      await this.#placement.start(this.options.startTimeout);
      starting = [...this.slots];
    } else {
      starting = Array.from({ length: this.options.workers }, () => this.#spawn()!);
    }
    this.#ensureSpare();
    if (this.#spare) starting.push(this.#spare);
    if (this.#placement) {
      await this.#firstReady(starting);
      return;
    }
    const results = await Promise.allSettled(starting.map((s) => s.ready));
    const failure = results.find((r) => r.status === 'rejected');
    if (failure) throw (failure as PromiseRejectedResult).reason;
  }

  /** Set (or with `undefined`, remove) a setting that every worker started from now on receives. */
  setWorkerInit(key: string, value: unknown): void {
    if (value === undefined) delete this.#workerInit[key];
    else this.#workerInit[key] = value;
  }

  /**
   * The settings of a worker started now (the pool's options, `exec()` code run so far); on `agent`, with the
   * agent's own (its setup, path, memory cap and recycling).
   */
  config(agent?: AgentConnection): WorkerConfig {
    const o = this.options;
    const welcome = agent?.welcome;
    return {
      executable: this.python.executable,
      cwd: o.cwd,
      env: o.env,
      pythonPath: welcome ? welcome.pythonPath : o.pythonPath,
      setup: [...(welcome?.setup ?? []), ...o.setup, ...this.#execs],
      forceKillAfter: o.forceKillAfter,
      startTimeout: o.startTimeout,
      ...(agent && welcome
        ? {
            link: (_id, _settings, events) => agent.openLink(events),
            recycle: { maxRss: welcome.recycle.maxRss ?? undefined, maxCalls: welcome.recycle.maxCalls ?? undefined, idleTimeout: welcome.recycle.idleTimeout ?? undefined },
          }
        : {}),
      init: {
        ...this.#workerInit,
        memoryLimit: welcome ? welcome.maxMemory : (o.maxMemory ?? null),
        arrays: o.arrays,
        ...(o.metrics ? { gcPauseBuckets: GC_PAUSE_BUCKETS } : {}),
        ...(o.logging ? { logging: o.logging.level } : {}),
      },
      functions: o.functions,
      handles: this.hooks.handles,
    };
  }

  /** A worker of the pool's settings, outside the pool (the leak finder's), and the settings to start it with. */
  detached(): { worker: PythonWorker; config: WorkerConfig } {
    const agent = this.#placement?.choose(this.agents.find((a) => a.open));
    if (this.#placement && !agent) throw new RemoteError('full', this.agents.map((a) => a.endpoint).join(', '), 'No agent has a worker to spare for this host: the leak search needs one');
    const config = this.config(agent);
    const worker = this.createWorker(this.#nextWorkerId++, config, {
      jobEnded: () => {},
      exited: () => {},
      output: (w, stream, text) => this.hooks.output(w, stream, text),
      log: (w, record) => this.hooks.log(w, record),
    });
    trackWorker(worker);
    return { worker, config };
  }

  // ------------------------------------------------------------------ exec

  /** Run `code` on every worker, and on every worker started while it runs; replay it on later ones if it succeeded. */
  async exec(code: string, options: JobOptions): Promise<void> {
    const pending: PendingExec = { request: requestExec(0, code), options };
    this.#pendingExecs.add(pending);
    const targets = [...this.slots, ...(this.#spare ? [this.#spare] : [])].filter((s) => s.worker.state === 'starting' || s.worker.state === 'ready');
    try {
      await Promise.all(targets.map((s) => this.#sendExec(s.worker, pending)));
      this.#execs.push(code);
    } finally {
      this.#pendingExecs.delete(pending);
    }
  }

  #sendExec(worker: PythonWorker, exec: PendingExec): Promise<unknown> {
    const { kind, frame, flags } = exec.request;
    const job = new CallJob(kind, Buffer.from(frame), flags, exec.options, true);
    this.track(job);
    worker.send(job);
    return job.promise;
  }

  // ------------------------------------------------------------------ start and exit

  /**
   * Start a worker; in rotation (takes calls once ready), or not (a spare or a replacement, added later). A
   * remote pool leases it from the agent with the most room (`near`: the agent of the worker it replaces may
   * go one above its grant); undefined when no agent has room.
   */
  #spawn(rotation = true, near?: AgentConnection): WorkerSlot | undefined {
    const agent = this.#placement?.choose(near);
    if (this.#placement && !agent) return undefined;
    const config = this.config(agent);
    const worker = this.createWorker(this.#nextWorkerId++, config, {
      jobEnded: (w) => this.hooks.jobEnded(this.#slotOf.get(w)!),
      exited: (w, info, requeue) => this.#onExit(w, info, requeue),
      output: (w, stream, text) => this.hooks.output(w, stream, text),
      log: (w, record) => this.hooks.log(w, record),
    });
    const slot = new Slot(worker);
    this.#slotOf.set(worker, slot);
    if (agent) this.#agentOf.set(worker, agent);
    trackWorker(worker);
    if (rotation) this.slots.push(slot);
    if (config.init?.tracemalloc) this.#tracingAtSpawn.add(worker);
    const started = worker.start(config);
    for (const exec of this.#pendingExecs) this.#sendExec(worker, exec).catch(() => {});
    slot.ready = started.then(
      (info) => {
        this.#startFailures = 0;
        if (agent) agent.startFailures = 0;
        this.version = info.version;
        if (rotation) {
          this.hooks.workerStart(worker);
          this.hooks.joined(slot);
        }
        return info;
      },
      (error: unknown) => {
        slot.startError = error as Error;
        throw error;
      },
    );
    slot.ready.catch(() => {});
    return slot;
  }

  #onExit(worker: PythonWorker, info: WorkerExitInfo, requeue: Job[]): void {
    const slot = this.#slotOf.get(worker)!;
    this.#slotOf.delete(worker);
    const agent = this.#agentOf.get(worker);
    const remote = this.#agentOf.delete(worker);
    // A worker lost with its agent's connection says nothing about whether workers can start. A remote worker
    // that fails to start counts against its agent, not the pool: one misconfigured agent (a bad --setup, a
    // broken venv) is left alone for a while, and the pool goes on with the others.
    let startFailed = worker.info === undefined && !worker.linkLost;
    if (startFailed && agent && !this.hooks.closing()) {
      startFailed = false;
      if (++agent.startFailures >= MAX_START_FAILURES) this.#benchAgent(agent, slot.startError);
    }
    clearTimeout(slot.stealTimer);
    const at = this.slots.indexOf(slot);
    const closing = this.hooks.closing();
    if (at < 0) {
      // Out of rotation: the spare, or a replacement that never took over. Nothing of the pool's ran there.
      if (slot === this.#spare) this.#spare = undefined;
      if (closing) return;
      if (startFailed && ++this.#startFailures >= MAX_START_FAILURES) this.#breakPool(slot);
      else if (worker.killReason !== 'not needed') this.#ensureSpare();
      if (remote) this.#fill();
      return;
    }
    this.slots.splice(at, 1);
    const crashed = !worker.killReason;
    this.hooks.workerExit({ ...info, reason: worker.killReason ?? 'crashed' });
    for (let i = requeue.length - 1; i >= 0; i--) this.hooks.requeue(requeue[i]!);
    if (closing) {
      this.hooks.left();
      return;
    }
    const neverReady = worker.info === undefined;
    if (startFailed) this.#startFailures++;
    if (this.#startFailures >= MAX_START_FAILURES) {
      this.#breakPool(slot);
      return;
    }
    if (remote) {
      const started = this.#fill();
      if (crashed || neverReady || worker.killReason !== 'recycled') this.#restarts += started;
    } else if (crashed || neverReady || worker.killReason !== 'recycled') {
      this.#restarts++;
      this.#spawn();
    }
    this.hooks.left();
  }

  #breakPool(slot: WorkerSlot): void {
    if (this.#broken) return;
    const cause = slot.startError;
    this.#broken = new WorkerStartError(
      `Python workers keep dying during start-up (${this.#startFailures} in a row); the pool stopped respawning them. ` +
        `Last: ${cause?.message ?? 'no message'}`,
      { cause },
    );
    this.hooks.broken(this.#broken);
  }

  /** End every worker now (the pool is destroyed); resolves when all have exited. */
  async killAll(reason: string): Promise<void> {
    this.#spare?.worker.kill(reason);
    const exited = Promise.all(this.slots.map((s) => (s.worker.kill(reason), s.worker.exited)));
    this.#placement?.close(); // an agent kills the workers of a host that leaves
    await exited;
  }

  /** End every worker politely (the pool closes); resolves when all have exited. */
  async terminateAll(): Promise<void> {
    this.#spare?.worker.kill('closed');
    const exited = Promise.all(this.slots.map((s) => s.worker.terminate()));
    if (this.#placement) {
      // An agent that does not answer (stopped, partitioned) must not hold the close for heartbeatTimeout: its
      // connection is dropped, and an agent kills the workers of a host that leaves.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, this.options.forceKillAfter + 1000)))]);
      clearTimeout(timer);
      this.#placement.close();
    }
    await exited;
  }

  // ------------------------------------------------------------------ remote

  /**
   * A remote pool starts with the workers it could lease: resolves when one is ready (an agent may have had room
   * for fewer than its share, or none yet: more follow as room frees). Rejects with the first start failure when
   * none is ready within startTimeout (a worker that could not start for lack of room is not a failure).
   */
  async #firstReady(starting: WorkerSlot[]): Promise<void> {
    const deadline = Date.now() + this.options.startTimeout;
    let failure: unknown;
    for (const slot of starting) slot.ready.catch((error: unknown) => (failure ??= slot.worker.linkLost ? undefined : error));
    while (!this.slots.some((s) => s.worker.state === 'ready')) {
      if (this.#broken) throw this.#broken;
      if (failure !== undefined && !this.slots.some((s) => s.worker.state === 'starting')) throw failure;
      if (Date.now() > deadline) {
        throw failure ?? new RemoteError('full', this.agents.map((a) => a.endpoint).join(', '), `No remote worker was ready within ${this.options.startTimeout} ms (startTimeout): the agents had no room for this host`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** An agent whose workers keep failing to start: lease nothing there for AGENT_BACKOFF ms, then try again. */
  #benchAgent(agent: AgentConnection, cause: Error | undefined): void {
    agent.startFailures = 0;
    agent.failingUntil = Date.now() + AGENT_BACKOFF;
    agent.lastStartError = cause;
    process.emitWarning(`Workers on agent ${agent.endpoint} keep failing to start (${MAX_START_FAILURES} in a row): none is leased there for ${AGENT_BACKOFF / 1000} s. Last: ${cause?.message ?? 'no message'}`, { code: 'PYWORKERS_AGENT_FAILING' });
    after(AGENT_BACKOFF, () => this.#fill());
  }

  /** A remote pool: lease workers on the agents with room; resolves to how many were started. */
  #fill(): number {
    if (!this.#placement || this.hooks.closing() || this.#broken) return 0;
    let started = 0;
    const most = this.agents.reduce((n, a) => n + (a.welcome?.grant ?? 0), 0);
    while (started < most && this.#spawn()) started++;
    return started;
  }

  /**
   * An agent drains (or DNS no longer lists it): its workers take nothing new and end once their calls are done
   * and nothing pins them (the agent kills what is left when its grace ends); others are leased elsewhere.
   */
  #release(agent: AgentConnection, count = Infinity): void {
    // Idle and unpinned workers first: they go at once.
    const mine = this.slots
      .filter((s) => this.#agentOf.get(s.worker) === agent && (s.worker.state === 'ready' || s.worker.state === 'starting'))
      .sort((a, b) => Number(a.worker.pinned) - Number(b.worker.pinned) || a.worker.load - b.worker.load);
    for (const slot of mine.slice(0, count)) {
      const { worker } = slot;
      worker.retire(RELEASED);
      if (worker.load === 0 && !worker.pinned) void worker.terminate();
      else this.hooks.reclaim(slot);
    }
    // All given back: replacements still starting there (out of rotation) are not needed any more.
    if (count === Infinity) {
      for (const [worker, where] of this.#agentOf) {
        if (where === agent && worker.state !== 'exited' && !this.slots.some((s) => s.worker === worker)) worker.kill('not needed');
      }
    }
    this.#fill();
  }

  /** A worker given back to its agent ends once it has no call and nothing pins it. */
  #endIfGivenBack(worker: PythonWorker): void {
    if (worker.killReason === RELEASED && worker.state === 'retiring' && worker.load === 0 && !worker.pinned) void worker.terminate();
  }

  /** The agent shared its workers out again: give back what is over our share (others wait for it), lease what is under. */
  #regrant(agent: AgentConnection): void {
    // What we hold there, replacements still starting included.
    let held = 0;
    for (const [worker, where] of this.#agentOf) if (where === agent && (worker.state === 'ready' || worker.state === 'starting')) held++;
    const over = held - (agent.welcome?.grant ?? 0);
    if (over > 0) this.#release(agent, over);
    else this.#fill();
  }

  // ------------------------------------------------------------------ recycling

  /** After each answered job: retire the worker if it passed a threshold; end retired workers once drained. */
  afterJob(slot: WorkerSlot): void {
    const { worker } = slot;
    slot.lastActive = Date.now();
    if (worker.state === 'retiring') {
      if (worker.killReason === 'recycled' && worker.load === 0) void worker.terminate();
      else this.#endIfGivenBack(worker);
      return;
    }
    if (worker.state !== 'ready' || slot.replacing || this.hooks.closing()) return;
    const { maxCalls, maxRss } = worker.recycle ?? this.options.recycle;
    if (maxCalls !== undefined && worker.served >= maxCalls) {
      void this.retire(slot, 'maxCalls');
    } else if (maxRss !== undefined && slot.lastActive - slot.rssCheckedAt >= RSS_CHECK_INTERVAL) {
      slot.rssCheckedAt = slot.lastActive;
      const rss = worker.rss()?.rss;
      if (rss !== undefined && rss > maxRss) void this.retire(slot, 'maxRss', rss);
    }
  }

  /** Retire the workers that served calls and then sat idle `idleTimeout` ms (a remote worker: its agent's). */
  retireIdle(defaultIdleTimeout: number | undefined): void {
    const now = Date.now();
    for (const slot of this.slots) {
      const { worker } = slot;
      const idleTimeout = worker.recycle ? worker.recycle.idleTimeout : defaultIdleTimeout;
      if (idleTimeout === undefined) continue;
      if (worker.state === 'ready' && worker.load === 0 && worker.served > 0 && !slot.replacing && now - slot.lastActive >= idleTimeout) {
        void this.retire(slot, 'idleTimeout');
      }
    }
  }

  /** Retire every worker (`pool.recycle()`); resolves when the replacements are ready. */
  async recycleAll(): Promise<void> {
    await Promise.all(this.slots.filter((s) => s.worker.state === 'ready' || s.worker.state === 'starting').map((s) => this.retire(s, 'manual')));
  }

  /** A context closed, a stream ended or a handle was released on `worker`: retire it if that was all that kept it. */
  unpinned(worker: PythonWorker): void {
    this.#endIfGivenBack(worker);
    const slot = this.#slotOf.get(worker);
    if (slot?.retireWhenFree && !worker.pinned) void this.retire(slot, slot.retireWhenFree);
  }

  /**
   * Retire a worker: its replacement (the spare, started ahead, or a new worker) takes its place; the old worker
   * takes no new calls, finishes those it has, and ends. A worker with open contexts, open streams or live handles
   * is retired when they end.
   */
  retire(slot: WorkerSlot, reason: RecycleReason, rss = slot.worker.rss()?.rss): Promise<void> {
    const { worker } = slot;
    if (this.hooks.closing() || slot.replacing || (worker.state !== 'ready' && worker.state !== 'starting')) return Promise.resolve();
    if (worker.pinned) {
      slot.retireWhenFree = reason; // contexts, open streams and handles keep their state: retire when they end
      return Promise.resolve();
    }
    slot.retireWhenFree = undefined;
    slot.replacing = true;
    const replacement = this.#spare ?? this.#spawn(false, this.#agentOf.get(worker));
    if (!replacement) {
      slot.replacing = false; // no agent has room now: keep it serving; a later trigger tries again
      return Promise.resolve();
    }
    this.#spare = undefined;
    const takeOver = () => {
      const agent = this.#agentOf.get(replacement.worker);
      if (this.hooks.closing() || worker.state === 'exited' || (agent && (agent.draining || !agent.welcome))) {
        replacement.worker.kill('not needed');
        slot.replacing = false;
        return;
      }
      this.slots.push(replacement);
      const tracing = this.#workerInit.tracemalloc;
      if (tracing && replacement.worker.info && !this.#tracingAtSpawn.has(replacement.worker)) void replacement.worker.control('tracemalloc_start', [tracing]).catch(() => {});
      this.hooks.workerStart(replacement.worker);
      worker.retire('recycled');
      this.hooks.recycle({ workerId: worker.id, pid: worker.pid, reason, rss });
      if (worker.load === 0) void worker.terminate();
      else this.hooks.reclaim(slot); // the calls sent ahead to it run on the others
      this.#ensureSpare();
      this.hooks.joined(replacement);
    };
    if (replacement.worker.info) {
      takeOver(); // the spare is ready: at once, before the caller's next call
      return Promise.resolve();
    }
    return replacement.ready.then(takeOver, () => {
      slot.replacing = false; // keep the old one serving; a later trigger tries again
      this.#ensureSpare();
    });
  }

  // ------------------------------------------------------------------ watchdog

  /**
   * Start reading every worker's memory and state from /proc on an interval: a worker whose own memory (anonymous
   * and shared, which RLIMIT_DATA misses for shared mappings) passes `maxMemory` is killed (reason 'maxMemory'); one
   * over `recycle.maxRss` between calls is retired; one stopped (SIGSTOP) for `livenessTimeout` is killed.
   */
  startWatch(): void {
    const { maxMemory, recycle } = this.options;
    const interval = maxMemory !== undefined || recycle.maxRss !== undefined ? WATCH_INTERVAL : WATCH_INTERVAL_IDLE;
    this.#watchTimer = setInterval(() => this.#watch(), interval);
    this.#watchTimer.unref();
  }

  stopWatch(): void {
    clearInterval(this.#watchTimer);
  }

  #watch(): void {
    const { maxMemory, recycle, livenessTimeout } = this.options;
    const now = Date.now();
    for (const slot of [...this.slots]) {
      const { worker } = slot;
      if (worker.state === 'exited') continue;
      const m = worker.rss();
      if (!m) continue;
      if (m.stopped) {
        slot.stoppedSince ??= now;
        if (now - slot.stoppedSince >= livenessTimeout) worker.kill(`stopped for ${now - slot.stoppedSince} ms (SIGSTOP?)`);
        continue;
      }
      slot.stoppedSince = undefined;
      if (maxMemory !== undefined && m.own > maxMemory) worker.kill('maxMemory');
      else if ((worker.recycle ?? recycle).maxRss !== undefined && m.rss > (worker.recycle ?? recycle).maxRss! && worker.state === 'ready' && !slot.replacing) void this.retire(slot, 'maxRss', m.rss);
    }
  }

  /** With recycling configured, keep one worker started ahead. */
  #ensureSpare(): void {
    const { maxRss, maxCalls, idleTimeout } = this.options.recycle;
    if (this.#spare || this.hooks.closing() || this.#broken || this.#placement) return;
    if (maxRss === undefined && maxCalls === undefined && idleTimeout === undefined) return;
    this.#spare = this.#spawn(false);
  }
}
