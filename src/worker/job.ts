/**
 * A job is one request on a worker's data channel: it is queued, sent, runs (when it heads the worker's
 * queue of sent jobs), and ends with exactly one final frame. It settles its caller exactly once.
 */
import type { CallTraceContext } from '../metrics/tracing.js';
import { AbortError, ProtocolError, TimeoutError, WorkerCrashedError } from '../errors.js';
import { Kind } from '../protocol/frames.js';
import { decodePayload, errorFromReply } from '../protocol/replies.js';
import type { PythonWorker } from './worker.js';
import { after } from '../util/timers.js';
import { onAbort } from '../util/abort.js';

export interface JobOptions {
  /** ms from when it starts running in Python. */
  timeout: number | undefined;
  signal: AbortSignal | undefined;
  /** ms from now to the answer, queue and run. */
  deadline?: number | undefined;
}

export abstract class Job {
  /** Request id on the worker; set when sent (fixed in advance for stream steps). */
  id = 0;
  worker: PythonWorker | undefined;
  /** True once the job heads its worker's queue, i.e. runs in Python. */
  running = false;
  /** An interrupt was sent for it. */
  interrupted = false;
  /** Set by the pool while the job waits in its queue. */
  dequeue: (() => void) | undefined;
  /** An idle worker is asking this job's worker to give it back. */
  stealing = false;
  /** When it started running (performance.now()). */
  startedAt = 0;
  /** Sent nested: the request whose callback made it (interrupting that one interrupts this one). */
  parent: Job | undefined;
  #graceTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly kind: number,
    /** The frame, with room for its header at the front. */
    readonly frame: Buffer,
    readonly flags: number,
    /** Jobs pinned to a worker (contexts, broadcasts, stream steps) never move to another one. */
    readonly pinned: boolean,
    /** Large buffers written after the frame from their own memory (see protocol/frames.ts). */
    readonly parts?: Uint8Array[],
  ) {}

  /** Called when the job heads its worker's queue. */
  start(): void {
    this.running = true;
    this.startedAt = performance.now();
    if (this.interrupted) this.armGrace();
  }

  /** A frame for this job arrived; returns true when it was the job's final frame. */
  abstract onFrame(kind: number, flags: number, buf: Buffer, start: number, end: number, parts?: Uint8Array[]): boolean;

  /**
   * The worker died with this job sent; `started`: it had started there (so it must not run again). Returns true
   * when the job wants to be sent again elsewhere.
   */
  abstract onLost(error: WorkerCrashedError, started: boolean): boolean;

  /** The job turned out not to have started (its worker gave it back): undo start(). */
  unstart(): void {
    this.finish();
  }

  /** The job's final frame arrived or its worker died. */
  finish(): void {
    this.running = false;
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
    this.#graceTimer = undefined;
  }

  /** Ask the worker to interrupt this job; kill the worker if it does not end in time. */
  interrupt(): void {
    if (this.interrupted || !this.worker) return;
    this.interrupted = true;
    this.worker.cancel(this);
    if (this.running) this.armGrace();
  }

  private armGrace(): void {
    const worker = this.worker;
    if (!worker || this.#graceTimer) return;
    this.#graceTimer = after(worker.forceKillAfter, () => {
      if (worker.owns(this)) worker.kill(`request ${this.id} did not stop within ${worker.forceKillAfter} ms of its interrupt`);
    });
  }
}

/** A call, eval, exec or other request whose answer is one value. */
export class CallJob extends Job {
  settled = false;
  readonly promise: Promise<unknown>;
  #resolve!: (value: unknown) => void;
  #reject!: (error: unknown) => void;
  #timer: NodeJS.Timeout | undefined;
  readonly #timeout: number | undefined;
  readonly #signal: AbortSignal | undefined;
  #forgetAbort: (() => void) | undefined;
  #deadlineTimer: NodeJS.Timeout | undefined;
  /** When set, the job may be re-sent to another worker if its worker dies before it starts. */
  readonly retryable: boolean;
  /** Called once when the job settles: whether it succeeded, else the error it failed with. */
  onSettle: ((ok: boolean, error?: unknown) => void) | undefined;
  /** Its tracing channel context, while someone listens (see metrics/tracing.ts). */
  trace: CallTraceContext | undefined;
  /** When it was made (performance.now()): its latency and queue wait count from here. */
  readonly createdAt = performance.now();
  /** When it settled (performance.now()), once the pool's metrics have read the clock. */
  settledAt = 0;

  constructor(kind: number, frame: Buffer, flags: number, options: JobOptions, pinned: boolean, parts?: Uint8Array[]) {
    super(kind, frame, flags, pinned, parts);
    this.retryable = !pinned;
    this.#timeout = options.timeout;
    this.#signal = options.signal;
    this.promise = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    if (options.deadline) {
      const deadline = options.deadline;
      this.#deadlineTimer = after(deadline, () => this.cancel(new TimeoutError(deadline, this.running ? 'Python call (deadline)' : 'Python call waiting for a worker (deadline)')));
    }
    if (this.#signal) {
      if (this.#signal.aborted) this.fail(new AbortError(this.#signal.reason));
      else this.#forgetAbort = onAbort(this.#signal, this.#onAbort);
    }
  }

  override start(): void {
    super.start();
    if (!this.settled && this.#timeout) {
      this.#timer = after(this.#timeout, this.#onTimeout);
    }
  }

  override unstart(): void {
    super.unstart();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #onAbort = (): void => this.cancel(new AbortError(this.#signal?.reason));
  #onTimeout = (): void => this.cancel(new TimeoutError(this.#timeout!));

  /** Settle with `error` now and stop the work: out of the queue, or interrupted in Python. */
  cancel(error: Error): void {
    if (this.settled) return;
    this.fail(error);
    if (this.dequeue) this.dequeue();
    else if (this.worker) this.interrupt();
  }

  succeed(value: unknown): void {
    if (this.settled) return;
    this.#cleanup();
    this.#resolve(value);
    this.onSettle?.(true);
  }

  fail(error: unknown): void {
    if (this.settled) return;
    this.#cleanup();
    this.#reject(error);
    this.onSettle?.(false, error);
  }

  #cleanup(): void {
    this.settled = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#forgetAbort?.();
    clearTimeout(this.#deadlineTimer);
  }

  onFrame(kind: number, flags: number, buf: Buffer, start: number, end: number, parts?: Uint8Array[]): boolean {
    if (this.settled) return kind === Kind.OK || kind === Kind.ERROR;
    try {
      const value = decodePayload(flags, buf, start, end, false, parts, this.worker?.handleFactory);
      if (kind === Kind.OK) this.succeed(value);
      else if (kind === Kind.ERROR) this.fail(errorFromReply(value, this.worker?.id ?? 0));
      else this.fail(new ProtocolError(`unexpected frame kind ${kind} for a call`));
    } catch (error) {
      this.fail(error);
    }
    return true;
  }

  onLost(error: WorkerCrashedError, started: boolean): boolean {
    if (this.settled) return false;
    if (this.retryable && !started && !this.interrupted) return true;
    this.fail(error);
    return false;
  }
}
