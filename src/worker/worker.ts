/**
 * One Python worker process: spawn, handshake, the jobs sent to it, control requests, interrupts, kill.
 */
import { randomInt } from 'node:crypto';
import { PyWorkersError, TimeoutError, WorkerCrashedError, WorkerStartError, type WorkerExitInfo } from '../errors.js';
import { CallJob, type Job } from './job.js';
import { callbackScope, WorkerCallbacks, type HostFunction } from './callbacks.js';
import type { HandleFactory } from '../protocol/handles.js';
import { FLAG_NESTED, FrameReader, FrameWriter, Kind, PROTOCOL_VERSION, WORKER_CONTROL_KINDS, WORKER_DATA_KINDS, writeHeader } from '../protocol/frames.js';
import { decodePayload, errorFromReply } from '../protocol/replies.js';
import { partsSize, requestCancel, requestControl, requestInit, type Request } from '../protocol/requests.js';
import { processLink, type Channel, type LinkFactory, type ProcessMemory, type WorkerLink } from './link.js';
import { after } from '../util/timers.js';

export type { ProcessMemory };
const STDERR_TAIL = 4096;
/** A worker whose channel ended and that has not exited this long after (ms) is deaf: it is killed. */
const DEAF_AFTER = 200;
/** How long a control request may go unanswered (ms). */
const CONTROL_TIMEOUT = 60_000;

export type WorkerState = 'starting' | 'ready' | 'retiring' | 'exited';

export interface WorkerConfig {
  executable: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  pythonPath: string[];
  setup: string[];
  forceKillAfter: number;
  startTimeout: number;
  /** Extra settings sent to the worker at start (memory limit, ...). */
  init?: Record<string, unknown>;
  /** The functions Python may call (`pyworkers.host`). */
  functions?: ReadonlyMap<string, HostFunction>;
  /** Makes the handle objects (PyRefs) of this worker's replies. */
  handles?: (worker: PythonWorker) => HandleFactory;
  /** Starts its process (default: on this machine). */
  link?: LinkFactory;
  /** Its own recycling thresholds (a remote worker's come from its agent), instead of the pool's. */
  recycle?: { maxRss: number | undefined; maxCalls: number | undefined; idleTimeout: number | undefined };
}

export interface WorkerEvents {
  /** A job ended: the worker may take more. */
  jobEnded(worker: PythonWorker): void;
  /** The process exited; `requeue` holds jobs that never started and may run elsewhere. */
  exited(worker: PythonWorker, info: WorkerExitInfo, requeue: Job[]): void;
  output(worker: PythonWorker, stream: 'stdout' | 'stderr', text: string): void;
  /** A logging record (with the pool option `logging`). */
  log?(worker: PythonWorker, record: Record<string, unknown>): void;
}

export interface ReadyInfo {
  pid: number;
  version: string;
  implementation: string;
  executable: string;
  /** The protocol version the worker's runtime speaks. */
  protocol: number;
}

interface ControlRequest {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

export class PythonWorker {
  readonly id: number;
  readonly startedAt = Date.now();
  readonly forceKillAfter: number;
  /** What the worker said when it started (undefined until then). */
  info: ReadyInfo | undefined;
  /** Jobs sent and not yet ended, in the order the worker runs them. */
  readonly sent: Job[] = [];
  /** Requests answered. */
  completed = 0;
  /** Calls answered (the start-up handshake not counted). */
  served = 0;
  /** Open contexts whose namespace lives here (their ids). */
  readonly contexts = new Set<number>();
  /** Open streams whose Python iterator lives here. */
  streams = 0;
  /** Handles (PyRefs) to objects that live here, not disposed: their numbers. */
  readonly handles = new Set<number>();
  /** Tells this worker's handles from another's (sent at start; in every handle). */
  readonly token = randomInt(1, 2 ** 31 - 1);
  /** Makes the PyRefs of this worker's replies. */
  readonly handleFactory: HandleFactory | undefined;
  /** Requests made by callbacks this worker waits for: they run inside the wait, by id (see callbacks.ts). */
  readonly #nested = new Map<number, Job>();
  readonly #callbacks: WorkerCallbacks;
  #busyMs = 0;
  #busySince: number | undefined;
  #state: WorkerState = 'starting';
  #killReason: string | undefined;
  readonly #link: WorkerLink;
  /** Its own recycling thresholds (a remote worker's, from its agent); undefined: the pool's. */
  readonly recycle: WorkerConfig['recycle'];
  readonly #data: Channel;
  readonly #control: Channel;
  readonly #writer: FrameWriter;
  readonly #events: WorkerEvents;
  readonly #controlRequests = new Map<number, ControlRequest>();
  #nextId = 1;
  #nextControlId = 1;
  #stderrTail = '';
  #referenced = true;
  #unrefScheduled = false;
  #exitInfo: WorkerExitInfo | undefined;
  readonly exited: Promise<WorkerExitInfo>;
  #resolveExited!: (info: WorkerExitInfo) => void;

  constructor(id: number, config: WorkerConfig, events: WorkerEvents) {
    this.id = id;
    this.forceKillAfter = config.forceKillAfter;
    this.#events = events;
    this.exited = new Promise((resolve) => (this.#resolveExited = resolve));
    this.handleFactory = config.handles?.(this);
    this.recycle = config.recycle;
    const functions = config.functions;
    this.#callbacks = new WorkerCallbacks({
      worker: this,
      functions: () => functions,
      handles: () => this.handleFactory,
      jobById: (jobId) => this.#nested.get(jobId) ?? this.sent.find((job) => job.id === jobId),
      write: (request, callbackId) => this.#write(request, callbackId),
    });
    this.#link = (config.link ?? processLink)(id, { executable: config.executable, cwd: config.cwd, env: config.env, memoryLimit: config.init?.memoryLimit as number | null | undefined }, {
      output: (stream, text) => {
        if (stream === 'stderr') this.#stderrTail = (this.#stderrTail + text).slice(-STDERR_TAIL);
        events.output(this, stream, text);
      },
      exit: (code, signal, error) => {
        if (error) this.#killReason ??= error.message;
        this.#onExit(code, signal, error);
      },
      suspend: (reason) => {
        if (this.#state !== 'ready' && this.#state !== 'starting') return;
        this.#killReason ??= reason;
        this.#state = 'retiring';
        this.#updateRef();
      },
    });
    this.#data = this.#link.data;
    this.#control = this.#link.control;
    this.#writer = new FrameWriter(this.#data);
    const dataReader = new FrameReader(this.#onDataFrame, WORKER_DATA_KINDS, this.#link.directRead);
    const controlReader = new FrameReader(this.#onControlFrame, WORKER_CONTROL_KINDS);
    this.#data.on('data', (chunk: Buffer) => this.#guard(() => dataReader.push(chunk)));
    this.#control.on('data', (chunk: Buffer) => this.#guard(() => controlReader.push(chunk)));
    for (const socket of [this.#data, this.#control]) {
      socket.on('error', () => {});
      // User code that closes fd 3 or 4 leaves a worker that cannot answer (a deaf worker): replace it. (A worker
      // that dies closes them too: it is given a moment to be seen exiting, as a crash.)
      socket.once('end', () => {
        after(DEAF_AFTER, () => {
          if (this.#state === 'ready' || this.#state === 'starting') this.kill(`its ${socket === this.#data ? 'data' : 'control'} channel was closed`);
        });
      });
    }
  }

  /** starting → ready → retiring (takes nothing new) → exited. */
  get state(): WorkerState {
    return this.#state;
  }

  /** Why the host ended the worker, when it did (undefined: it crashed, or runs). */
  get killReason(): string | undefined {
    return this.#killReason;
  }

  get pid(): number | undefined {
    return this.#link.pid;
  }

  /** The machine its process runs on. */
  get host(): string {
    return this.#link.host;
  }

  /** Whether it ended because the connection to its machine was lost (a remote worker). */
  get linkLost(): boolean {
    return this.#link.lost !== undefined;
  }

  /** Jobs sent and not ended (the running one included, and requests running nested in a callback's wait). */
  get load(): number {
    return this.sent.length + this.#nested.size;
  }

  /** Open contexts, open streams and live handles: state that keeps the worker from being retired. */
  get pinned(): boolean {
    return this.contexts.size > 0 || this.streams > 0 || this.handles.size > 0;
  }

  /** Send INIT and resolve once the worker is ready. */
  start(config: WorkerConfig): Promise<ReadyInfo> {
    const { kind, frame, flags } = requestInit({ workerId: this.id, path: config.pythonPath, setup: config.setup, ...config.init, token: this.token });
    const job = new CallJob(kind, frame, flags, { timeout: undefined, signal: undefined }, true);
    const timer = after(config.startTimeout, () => {
      job.fail(new WorkerStartError(`Python worker ${this.id} did not start within ${config.startTimeout} ms`));
      this.kill('start timeout');
    });
    this.send(job);
    return (job.promise as Promise<ReadyInfo>).then(
      (info) => {
        clearTimeout(timer);
        if (info.protocol !== PROTOCOL_VERSION) {
          throw new WorkerStartError(`Python worker ${this.id} speaks protocol version ${String(info.protocol)}, not ${PROTOCOL_VERSION}: its runtime (python/_pyworkers) is not this package's`);
        }
        this.info = info;
        if (this.#state === 'starting') this.#state = 'ready';
        this.#updateRef();
        return info;
      },
      (error: unknown) => {
        clearTimeout(timer);
        this.kill('failed to start');
        if (error instanceof WorkerCrashedError) {
          throw new WorkerStartError(`Python worker ${this.id} exited during start-up: ${error.message}`, { cause: error });
        }
        throw error instanceof PyWorkersError && error.code === 'ERR_WORKER_START'
          ? error
          : new WorkerStartError(`Python worker ${this.id} failed to start: ${(error as Error).message}`, { cause: error });
      },
    );
  }

  /** Send a job; it runs after the jobs already sent. */
  send(job: Job): void {
    if (job.id === 0) {
      job.id = this.#nextId;
      this.#nextId = this.#nextId >= 0xfffffff0 ? 1 : this.#nextId + 1;
    }
    job.worker = this;
    if (this.#callbacks.size !== 0) {
      const scope = callbackScope.getStore();
      if (scope?.active && scope.worker === this) {
        this.#sendNested(job, scope.job);
        return;
      }
    }
    this.#writer.write(writeHeader(job.frame, job.kind, job.flags, job.id, partsSize(job.parts)), this.sent.length === 0, job.parts);
    this.sent.push(job);
    if (this.sent.length === 1) {
      this.#busySince = performance.now();
      this.#updateRef();
      job.start();
    }
  }

  /** How long (ms) it has had requests to run, since it started. */
  get busyMs(): number {
    return this.#busyMs + (this.#busySince === undefined ? 0 : performance.now() - this.#busySince);
  }

  /** Its last request ended: the busy period too. */
  #becameIdle(): void {
    this.#endBusyPeriod();
    this.#updateRef();
  }

  #endBusyPeriod(): void {
    if (this.#busySince !== undefined) this.#busyMs += performance.now() - this.#busySince;
    this.#busySince = undefined;
  }

  /**
   * A request made by a callback this worker waits for (Python → TypeScript → this worker): the worker runs it at
   * once, inside the wait, and answers it by id. Queued behind the waiting request, it would never run.
   */
  #sendNested(job: Job, parent: Job | undefined): void {
    job.parent = parent;
    this.#nested.set(job.id, job);
    this.#writer.write(writeHeader(job.frame, job.kind, job.flags | FLAG_NESTED, job.id, partsSize(job.parts)), true, job.parts);
    this.#updateRef();
    job.start();
  }

  /** Whether `job` is still sent and not ended here. */
  owns(job: Job): boolean {
    return this.sent.includes(job) || this.#nested.get(job.id) === job;
  }

  /**
   * Ask the worker to interrupt job `job` (now if it runs, else as soon as it starts); with it, what runs on its
   * behalf: the callbacks it waits for are answered (so that the wait ends) and its nested requests interrupted.
   */
  cancel(job: Job): void {
    if (this.state === 'exited') return;
    const { kind, frame, flags } = requestCancel();
    this.#writeControl(writeHeader(frame, kind, flags, job.id));
    if (this.#callbacks.size !== 0) this.#callbacks.cancelFor(job.id);
    for (const child of this.#nested.values()) if (child.parent === job) child.interrupt();
  }

  /** Write a frame that is not a request (a callback's reply) on the data channel. */
  #write(request: Request, id: number): void {
    if (this.#state === 'exited') return;
    this.#writer.write(writeHeader(request.frame, request.kind, request.flags, id, partsSize(request.parts)), true, request.parts);
    this.#updateRef();
  }

  /**
   * A request on the control channel, answered even while user code runs. Rejects with a TimeoutError if no
   * answer comes within `timeout` ms (the control thread needs the GIL: a long C call holding it delays answers).
   */
  control(op: string, args: unknown[] = [], timeout = CONTROL_TIMEOUT): Promise<unknown> {
    if (this.state === 'exited') return Promise.reject(this.#crashError());
    let request: ReturnType<typeof requestControl>;
    try {
      request = requestControl(op, args);
    } catch (error) {
      return Promise.reject(error);
    }
    const id = this.#nextControlId++;
    return new Promise((resolve, reject) => {
      const timer = after(timeout, () => {
        if (!this.#controlRequests.delete(id)) return;
        this.#updateRef();
        reject(new TimeoutError(timeout, `control request '${op}' to worker ${this.id}`));
      });
      const settle = <T>(fn: (v: T) => void) => (v: T) => {
        clearTimeout(timer);
        fn(v);
      };
      this.#controlRequests.set(id, { resolve: settle(resolve), reject: settle(reject) });
      this.#updateRef();
      this.#writeControl(writeHeader(request.frame, request.kind, request.flags, id));
    });
  }

  /** Take nothing new; the owner ends it (`terminate()`) once its jobs are done. */
  retire(reason: string): void {
    if (this.#state === 'exited') return;
    this.#state = 'retiring';
    this.#killReason = reason;
    this.#updateRef();
  }

  /** Kill the process now (SIGKILL). Jobs still sent are failed or moved when it has exited. */
  kill(reason: string): void {
    this.#killReason ??= reason;
    if (this.#state !== 'exited') {
      this.#state = 'retiring';
      this.#updateRef();
      this.#endGroup();
    }
  }

  /** End the process politely: it exits when its channels close; killed if it lingers. */
  terminate(graceMs = 1000): Promise<WorkerExitInfo> {
    if (this.#state !== 'exited') {
      this.#state = 'retiring';
      this.#killReason ??= 'closed';
      this.#updateRef();
      this.#data.end();
      this.#control.end();
      const timer = after(graceMs, () => this.#endGroup());
      void this.exited.then(() => clearTimeout(timer));
    }
    return this.exited;
  }

  /** Keep the Node process alive only while this worker has work. */
  #updateRef(): void {
    if (this.state === 'exited') return;
    if (this.#busy()) {
      if (!this.#referenced) this.#setRef(true);
    } else if (this.#referenced && !this.#unrefScheduled) {
      // Unref a turn later: a caller that sends its next call right after an answer costs no ref/unref pair.
      this.#unrefScheduled = true;
      setImmediate(() => {
        this.#unrefScheduled = false;
        if (this.#referenced && !this.#busy() && this.state !== 'exited') this.#setRef(false);
      });
    }
  }

  #busy(): boolean {
    return this.state === 'starting' || this.state === 'retiring' || this.sent.length > 0 || this.#nested.size > 0 || this.#callbacks.size > 0 || this.#controlRequests.size > 0;
  }

  #setRef(on: boolean): void {
    this.#referenced = on;
    this.#link.setRef(on);
  }

  #writeControl(frame: Buffer): void {
    if (!this.#control.destroyed) this.#control.write(frame);
  }

  #guard(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.kill(`protocol error: ${(error as Error).message}`);
    }
  }

  /**
   * Take back a job the worker has given back without running it (see the pool's work stealing). Returns whether
   * it was still listed here.
   */
  take(job: Job): boolean {
    const at = this.sent.indexOf(job);
    if (at < 0) return false;
    this.sent.splice(at, 1);
    if (at === 0) {
      job.unstart();
      const next = this.sent[0];
      if (next) next.start();
      else this.#becameIdle();
    }
    // A retiring worker ends once its last job is gone, however it left: tell the owner, as an answer would.
    if (this.sent.length === 0 && this.#state === 'retiring') this.#events.jobEnded(this);
    return true;
  }

  #onDataFrame = (kind: number, flags: number, id: number, buf: Buffer, start: number, end: number, parts?: Uint8Array[]): void => {
    if (kind >= Kind.CALLBACK) {
      // Frames that answer nothing: a callback, printed text, a logging record. They come before the reply of
      // the request that made them, so they are handled before it resolves.
      if (kind === Kind.CALLBACK) {
        this.#callbacks.onCallback(id, flags, buf, start, end, parts);
        this.#updateRef();
      } else if (kind === Kind.OUTPUT) {
        this.#events.output(this, 'stdout', buf.toString('utf8', start, end));
      } else {
        this.#events.log?.(this, decodePayload(flags, buf, start, end, false, parts) as Record<string, unknown>);
      }
      return;
    }
    if (this.#nested.size !== 0) {
      const nested = this.#nested.get(id);
      if (nested) {
        if (!nested.onFrame(kind, flags, buf, start, end, parts)) return;
        this.#nested.delete(id);
        nested.finish();
        this.completed++;
        this.served++;
        this.#updateRef();
        this.#events.jobEnded(this);
        return;
      }
    }
    let job = this.sent[0];
    // A frame for a later request while the head is being taken back: the worker skipped the head (it gave it
    // back, and its answer on the control channel has not arrived yet).
    while (job && job.id !== id && job.stealing) {
      this.take(job);
      job = this.sent[0];
    }
    if (!job || job.id !== id) {
      throw new Error(`frame for request ${id} while ${job ? `request ${job.id}` : 'nothing'} runs`);
    }
    if (!job.onFrame(kind, flags, buf, start, end, parts)) return;
    this.sent.shift();
    job.finish();
    this.completed++;
    if (job.kind !== Kind.INIT) this.served++;
    const next = this.sent[0];
    if (next) next.start();
    else this.#becameIdle();
    this.#events.jobEnded(this);
  };

  #onControlFrame = (kind: number, flags: number, id: number, buf: Buffer, start: number, end: number, parts?: Uint8Array[]): void => {
    const request = this.#controlRequests.get(id);
    if (!request) return;
    this.#controlRequests.delete(id);
    this.#updateRef();
    try {
      const value = decodePayload(flags, buf, start, end, false, parts);
      if (kind === Kind.OK) request.resolve(value);
      else request.reject(errorFromReply(value, this.id));
    } catch (error) {
      request.reject(error);
    }
  };

  #crashError(): WorkerCrashedError {
    const info = this.#exitInfo ?? { workerId: this.id, pid: this.pid, exitCode: null, signal: null, stderr: this.#stderrTail };
    const why = this.killReason ? ` (${this.killReason})` : '';
    const base = new WorkerCrashedError(info);
    return why ? new WorkerCrashedError(info, base.message.replace(/(exited with code \S+|was killed by \S+)/, `$1${why}`)) : base;
  }

  /** SIGKILL the worker and every process of its group (what user code started and left running). */
  #endGroup(): void {
    this.#link.kill();
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null, error?: Error): void {
    if (this.#state === 'exited') return;
    this.#endGroup(); // what user code started goes with the worker, however it ended
    this.#state = 'exited';
    this.#endBusyPeriod();
    this.#exitInfo = { workerId: this.id, pid: this.pid, exitCode: code, signal, stderr: lastLines(this.#stderrTail, 20) };
    const crash = this.#crashError();
    if (error) Object.defineProperty(crash, 'cause', { value: error });
    // Jobs up to the last one the worker started did start (it runs them in order); without a progress file, only
    // the one the host saw at the head.
    const started = this.#link.lastStarted();
    const lastStartedAt =
      started === 'all' ? this.sent.length - 1 : started === 'head' ? this.sent.findIndex((job) => job.running) : this.sent.findIndex((job) => job.id === started);
    const requeue: Job[] = [];
    for (const [i, job] of this.sent.splice(0).entries()) {
      const retry = job.onLost(crash, i <= lastStartedAt || job.interrupted);
      job.finish();
      if (retry) {
        job.worker = undefined;
        job.id = 0;
        requeue.push(job);
      }
    }
    for (const job of this.#nested.values()) {
      job.onLost(crash, true);
      job.finish();
    }
    this.#nested.clear();
    this.#callbacks.abandon();
    for (const request of this.#controlRequests.values()) request.reject(crash);
    this.#controlRequests.clear();
    this.#data.destroy();
    this.#control.destroy();
    this.#resolveExited(this.#exitInfo);
    this.#events.exited(this, this.#exitInfo, requeue);
  }

  /** Current and peak resident memory of the process, read from the OS. */
  rss(): ProcessMemory | undefined {
    if (this.state === 'exited') return undefined;
    return this.#link.rss();
  }
}

function lastLines(text: string, count: number): string {
  const lines = text.split('\n');
  return lines.slice(-count - 1).join('\n');
}
