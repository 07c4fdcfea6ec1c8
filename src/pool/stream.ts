/**
 * Streams: a Python iterable consumed from JavaScript as an AsyncIterable, with credit-based flow control.
 *
 * The worker produces at most `highWaterMark` items ahead of the consumer, then pauses the generator and
 * serves other requests. Closing (break, return(), abort, timeout) closes the generator in Python.
 */
import { AbortError, ArgumentError, PoolClosedError, ProtocolError, TimeoutError, WorkerCrashedError } from '../errors.js';
import { Job } from '../worker/job.js';
import { decodePayload, errorFromReply } from '../protocol/replies.js';
import { homeWorker } from './home.js';
import { requestStreamClose, requestStreamMore } from '../protocol/requests.js';
import { Kind } from '../protocol/frames.js';
import type { WireHandle } from '../protocol/handles.js';
import type { PythonWorker } from '../worker/worker.js';
import { after } from '../util/timers.js';
import { onAbort } from '../util/abort.js';

export interface StreamHost {
  /** Send the opening job to some worker (through the pool's queue, or to a context's worker). */
  submit(job: Job, home?: PythonWorker): void | Promise<void>;
  /**
   * The stream opened (is counted among the pool's open streams) or ended. `stream` is held weakly by the host:
   * a stream the program drops is closed when it is garbage-collected (see `dropped` below).
   */
  registered?(state: StreamState, stream: PyStream<unknown> | undefined, open: boolean): void;
  /** The stream no longer holds state on `worker` (which may now be recycled). */
  unpinned?(worker: PythonWorker): void;
}

/** What a stream holds in a worker: all its finalizer needs, without the stream itself. */
export interface StreamState {
  host: StreamHost;
  /** The worker holding the iterator, once the stream has started there. */
  worker: PythonWorker | undefined;
  /** The id of its opening request: the iterator's id in the worker. */
  sid: number;
  /** Counted in its worker's `streams` (which keeps the worker from being recycled under it). */
  pinned: boolean;
  /** Python dropped the iterator (exhausted, failed, or the worker is gone). */
  pythonDone: boolean;
}

/**
 * Streams the program dropped without closing them: once one is garbage-collected (no step of it running, since a
 * running step holds it), its iterator is closed in Python and its worker unpinned.
 */
const dropped = new FinalizationRegistry<StreamState>((state) => {
  const { worker, sid } = state;
  if (!state.pythonDone && worker && worker.state !== 'exited' && sid) {
    const { frame, flags } = requestStreamClose(sid);
    worker.send(new CloseJob(frame, flags, () => {}));
  }
  if (state.pinned && worker) {
    state.pinned = false;
    worker.streams--;
    state.host.unpinned?.(worker);
  }
  state.host.registered?.(state, undefined, false);
});

interface Waiter<T> {
  resolve(result: IteratorResult<T>): void;
  reject(error: unknown): void;
}

/** A stream that failed before anything was sent (bad arguments, a closed pool): its first next() rejects. */
export function failedStream<T>(error: unknown): PyStream<T> {
  const open = (): never => {
    throw error;
  };
  return new PyStream<T>({ submit() {} }, open, { highWaterMark: 1, timeout: undefined, signal: undefined });
}

/** Each step of a stream is a job: it ends when the worker pauses, finishes or fails the iterator. */
class StepJob extends Job {
  constructor(
    kind: number,
    frame: Buffer,
    flags: number,
    pinned: boolean,
    private readonly stream: PyStream<unknown>,
    parts?: Uint8Array[],
  ) {
    super(kind, frame, flags, pinned, parts);
  }

  override start(): void {
    super.start();
    this.stream.onStepStart(this);
  }

  onFrame(kind: number, flags: number, buf: Buffer, start: number, end: number, parts?: Uint8Array[]): boolean {
    return this.stream.onFrame(this, kind, flags, buf, start, end, parts);
  }

  onLost(error: WorkerCrashedError, started: boolean): boolean {
    if (this.kind !== Kind.STREAM_MORE && !started && !this.interrupted && !this.stream.settled && !this.pinned) return true;
    this.stream.onLost(error);
    return false;
  }
}

/** Closing job: ends when Python has closed the iterator. */
class CloseJob extends Job {
  constructor(frame: Buffer, flags: number, private readonly done: () => void) {
    super(Kind.STREAM_CLOSE, frame, flags, true);
  }
  onFrame(): boolean {
    this.done();
    return true;
  }
  onLost(): boolean {
    this.done();
    return false;
  }
}

/**
 * Items of a Python iterable, as an `AsyncIterable`. Nothing runs in Python until iteration starts.
 * Iterate it once; `toArray()` collects every item.
 */
export class PyStream<T = any> implements AsyncIterable<T>, AsyncIterator<T> {
  /** True once the stream has ended, failed or been closed. */
  settled = false;
  readonly #host: StreamHost;
  readonly #open: () => { kind: number; frame: Buffer; flags: number; pinned: boolean; parts?: Uint8Array[]; handles?: WireHandle[] };
  readonly #highWaterMark: number;
  readonly #timeout: number | undefined;
  readonly #signal: AbortSignal | undefined;
  #forgetAbort: (() => void) | undefined;
  /** ms from the first next() to the end of the stream. */
  readonly #deadline: number | undefined;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #started = false;
  #items: unknown[] = [];
  #head = 0;
  #error: unknown;
  #ended = false; // Python has no more items (or failed)
  #waiter: Waiter<T> | undefined;
  readonly #state: StreamState;
  #step: StepJob | undefined;
  /** A follow-up step sent while `#step` runs, so that the worker goes on producing without a round trip. */
  #next: StepJob | undefined;
  #outstanding = 0;
  #timer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  #onStepEnd: (() => void) | undefined;

  /** @internal */
  constructor(
    host: StreamHost,
    open: (credit: number) => { kind: number; frame: Buffer; flags: number; pinned: boolean; parts?: Uint8Array[]; handles?: WireHandle[] },
    options: { highWaterMark: number; timeout: number | undefined; signal: AbortSignal | undefined; deadline?: number | undefined },
  ) {
    this.#deadline = options.deadline;
    this.#host = host;
    this.#highWaterMark = options.highWaterMark;
    this.#open = () => open(this.#highWaterMark);
    this.#timeout = options.timeout;
    this.#signal = options.signal;
    this.#state = { host, worker: undefined, sid: 0, pinned: false, pythonDone: false };
  }

  // The stream's state in its worker lives in #state, which its finalizer keeps (see `dropped`).
  get #worker(): PythonWorker | undefined {
    return this.#state.worker;
  }
  set #worker(worker: PythonWorker | undefined) {
    this.#state.worker = worker;
  }
  get #sid(): number {
    return this.#state.sid;
  }
  set #sid(sid: number) {
    this.#state.sid = sid;
  }
  get #pinned(): boolean {
    return this.#state.pinned;
  }
  set #pinned(pinned: boolean) {
    this.#state.pinned = pinned;
  }
  get #pythonDone(): boolean {
    return this.#state.pythonDone;
  }
  set #pythonDone(done: boolean) {
    this.#state.pythonDone = done;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this;
  }

  /** Read every item into an array. */
  async toArray(): Promise<T[]> {
    const out: T[] = [];
    for await (const item of this) out.push(item);
    return out;
  }

  next(): Promise<IteratorResult<T>> {
    if (!this.#started) this.#begin();
    if (this.#head < this.#items.length) {
      const value = this.#items[this.#head] as T;
      this.#items[this.#head++] = undefined;
      if (this.#head === this.#items.length) {
        this.#items = [];
        this.#head = 0;
      }
      this.#maybeRequestMore();
      return Promise.resolve({ value, done: false });
    }
    if (this.#error !== undefined) {
      const error = this.#error;
      this.#error = undefined;
      this.#finish();
      return Promise.reject(error);
    }
    if (this.#ended) {
      this.#finish();
      return Promise.resolve({ value: undefined, done: true });
    }
    if (this.#waiter) return Promise.reject(new ArgumentError('PyStream: next() called before the previous call settled'));
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
      this.#maybeRequestMore();
    });
  }

  /** Stop reading: the iterator is closed in Python (its `finally` blocks run) before this resolves. */
  async return(): Promise<IteratorResult<T>> {
    await this.close();
    return { value: undefined, done: true };
  }

  async throw(error?: unknown): Promise<IteratorResult<T>> {
    await this.close();
    throw error;
  }

  /** `await using stream = pool.stream(...)`: closed at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Close the stream: no item arrives after; the Python iterator is closed. */
  close(): Promise<void> {
    if (!this.#closing) this.#closing = this.#shutdown(undefined);
    return this.#closing;
  }

  #begin(): void {
    this.#started = true;
    if (this.#signal?.aborted) {
      this.#fail(new AbortError(this.#signal.reason));
      return;
    }
    if (this.#signal) this.#forgetAbort = onAbort(this.#signal, this.#onAbort);
    if (this.#deadline) {
      const deadline = this.#deadline;
      this.#deadlineTimer = after(deadline, () => {
        this.#closing ??= this.#shutdown(new TimeoutError(deadline, 'Python stream (deadline)'));
      });
    }
    const failed = (error: unknown) => {
      this.#step = undefined;
      this.#fail(error);
    };
    try {
      const { kind, frame, flags, pinned, parts, handles } = this.#open();
      const home = handles ? homeWorker(handles) : undefined;
      const job = new StepJob(kind, frame, flags, pinned || home !== undefined, this as PyStream<unknown>, parts);
      this.#outstanding = this.#highWaterMark;
      this.#step = job;
      this.#host.registered?.(this.#state, this as PyStream<unknown>, true);
      dropped.register(this, this.#state, this);
      this.#host.submit(job, home)?.catch(failed);
    } catch (error) {
      failed(error);
    }
  }

  #onAbort = (): void => {
    this.#closing ??= this.#shutdown(new AbortError(this.#signal?.reason));
  };

  /** @internal */
  onStepStart(job: StepJob): void {
    if (job.kind !== Kind.STREAM_MORE) {
      this.#worker = job.worker;
      this.#sid = job.id;
      if (this.#worker && !this.#pinned) {
        this.#pinned = true;
        this.#worker.streams++;
      }
      if (this.#timeout && !this.#timer) {
        this.#timer = after(this.#timeout, () => {
          this.#closing ??= this.#shutdown(new TimeoutError(this.#timeout!, 'Python stream'));
        });
      }
    }
  }

  /** @internal */
  onFrame(job: StepJob, kind: number, flags: number, buf: Buffer, start: number, end: number, parts?: Uint8Array[]): boolean {
    const last = kind !== Kind.ITEMS;
    if (last && this.#step === job) this.#stepEnded();
    if (this.settled) return last;
    let value: unknown;
    try {
      value = decodePayload(flags, buf, start, end, kind !== Kind.ERROR, parts, this.#worker?.handleFactory ?? job.worker?.handleFactory);
    } catch (error) {
      this.#ended = true;
      this.#deliverError(error);
      return last;
    }
    if (kind === Kind.ERROR) {
      this.#ended = true;
      // An error while closing may be the interrupt landing before the step ran: the iterator may live on.
      if (!this.#closing) this.#pythonDone = true;
      this.#deliverError(errorFromReply(value, this.#worker?.id ?? 0));
      return true;
    }
    if (kind !== Kind.ITEMS && kind !== Kind.ITEMS_PAUSE && kind !== Kind.ITEMS_END) {
      this.#ended = true;
      this.#deliverError(new ProtocolError(`unexpected frame kind ${kind} in a stream`));
      return true;
    }
    const items = value as unknown[];
    this.#outstanding -= items.length;
    if (kind === Kind.ITEMS_END) this.#ended = this.#pythonDone = true;
    if (this.#closing) return last;
    for (const item of items) this.#items.push(item);
    this.#wake();
    if (kind === Kind.ITEMS_PAUSE) this.#maybeRequestMore();
    return last;
  }

  /** @internal */
  onLost(error: unknown): void {
    this.#stepEnded();
    this.#ended = this.#pythonDone = true;
    this.#deliverError(error);
  }

  #stepEnded(): void {
    this.#step = this.#next;
    this.#next = undefined;
    const notify = this.#onStepEnd;
    this.#onStepEnd = undefined;
    notify?.();
  }

  #deliverError(error: unknown): void {
    if (this.settled || this.#closing) return;
    this.#error = error;
    this.#wake();
  }

  #wake(): void {
    const waiter = this.#waiter;
    if (!waiter) return;
    if (this.#head < this.#items.length || this.#error !== undefined || this.#ended) {
      this.#waiter = undefined;
      this.next().then(waiter.resolve, waiter.reject);
    }
  }

  /**
   * Grant the worker more credit once there is room for half a window: buffered items plus items granted and not
   * yet received never exceed `highWaterMark`. A grant may be sent while a step still runs (at most one queued
   * behind it), so a fast consumer does not wait for a round trip at each window.
   */
  #maybeRequestMore(): void {
    if (this.#ended || this.#closing || !this.#worker || this.#next) return;
    const buffered = this.#items.length - this.#head;
    const credit = this.#highWaterMark - buffered - this.#outstanding;
    if (credit < this.#highWaterMark / 2) return;
    const worker = this.#worker;
    if (worker.state === 'exited') {
      // The worker died while the stream was paused: its iterator is gone.
      if (!this.#step && !this.#pythonDone) {
        this.#pythonDone = true;
        void worker.exited.then((info) => {
          this.#ended = true;
          this.#deliverError(new WorkerCrashedError(info));
        });
      }
      return;
    }
    const { kind, frame, flags } = requestStreamMore(credit);
    const job = new StepJob(kind, frame, flags, true, this as PyStream<unknown>);
    job.id = this.#sid;
    this.#outstanding += credit;
    if (this.#step) this.#next = job;
    else this.#step = job;
    worker.send(job);
  }

  #fail(error: unknown): void {
    this.#ended = true;
    this.#error = error;
    this.#wake();
  }

  #finish(): void {
    if (this.settled) return;
    this.settled = true;
    if (this.#pinned && this.#worker) {
      this.#pinned = false;
      this.#worker.streams--;
      this.#host.unpinned?.(this.#worker);
    }
    this.#items = [];
    this.#head = 0;
    if (this.#timer) clearTimeout(this.#timer);
    clearTimeout(this.#deadlineTimer);
    this.#forgetAbort?.();
    dropped.unregister(this);
    this.#host.registered?.(this.#state, this as PyStream<unknown>, false);
  }

  /** Stop the stream, close the Python side, and settle a pending next() with `error` (or done). */
  async #shutdown(error: Error | undefined): Promise<void> {
    // From now on no item arrives: a pending next() settles now; later ones give the error (once), then done.
    const waiter = this.#waiter;
    this.#waiter = undefined;
    this.#items = [];
    this.#head = 0;
    const wasEnded = this.#ended;
    this.#ended = true;
    if (waiter) {
      if (error) waiter.reject(error);
      else waiter.resolve({ value: undefined, done: true });
    } else if (error && !wasEnded) {
      this.#error = error;
    }
    if (!this.#started) {
      this.#started = true;
      this.#finish();
      return;
    }
    const step = this.#step;
    if (step && (step.dequeue || !step.worker)) {
      // Still waiting in the pool's queue: never ran.
      step.dequeue?.();
      this.#step = undefined;
    } else if (step) {
      // Sent: running, or waiting for its turn on the worker. Interrupt it: Python closes the iterator as the
      // interrupt unwinds it (or never opens it).
      step.interrupt();
      await new Promise<void>((resolve) => (this.#onStepEnd = resolve));
    }
    // A paused stream, or a step that paused before its interrupt landed: close the iterator in Python (a no-op
    // there when it is already gone).
    const worker = this.#worker ?? step?.worker;
    const sid = this.#sid || (step && step.kind !== Kind.STREAM_MORE ? step.id : 0);
    if (!this.#pythonDone && worker && worker.state !== 'exited' && sid) {
      await new Promise<void>((resolve) => {
        const { frame, flags } = requestStreamClose(sid);
        worker.send(new CloseJob(frame, flags, resolve));
      });
    }
    this.#finish();
  }

  /** @internal Fail the stream because its pool is closing. */
  abandon(): void {
    if (this.settled) return;
    this.#ended = true;
    this.#deliverError(new PoolClosedError());
  }
}
