/**
 * Callbacks: Python calling functions of the host (`from pyworkers import host; host.fetchUser(42)`).
 *
 * A CALLBACK frame from the worker (id: the callback's number; payload: (request, name, args)) runs the function
 * registered under `name`, and its outcome goes back as one CALLBACK_REPLY with the same id. The function runs in
 * a callback scope (AsyncLocalStorage): requests it makes to the worker that waits for it are sent as nested
 * requests, which that worker runs at once, inside its wait (PythonWorker.send). That is what lets Python call
 * TypeScript call Python, to any depth, without deadlock.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { HandleFactory } from '../protocol/handles.js';
import { decodePayload } from '../protocol/replies.js';
import { requestCallbackReply, type Request } from '../protocol/requests.js';
import type { Job } from './job.js';
import type { PythonWorker } from './worker.js';

/** A function Python may call: sync or async; its arguments and result cross with the value table. */
export type HostFunction = (...args: any[]) => unknown;

/** Where a callback runs: requests to `worker` made from it run nested while `active`. */
export interface CallbackScope {
  readonly worker: PythonWorker;
  /** The request whose Python code made the callback, if the host knows it. */
  readonly job: Job | undefined;
  active: boolean;
}

export const callbackScope = new AsyncLocalStorage<CallbackScope>();

/** The answer to a callback whose request was interrupted. */
const CANCELLED = ['error', ['AbortError', 'the Python call waiting for this callback was interrupted', '']];

interface InFlight {
  /** The id of the request that made it (0: none, e.g. a thread started earlier). */
  readonly outer: number;
  readonly scope: CallbackScope;
}

export interface CallbackHost {
  readonly worker: PythonWorker;
  functions(): ReadonlyMap<string, HostFunction> | undefined;
  handles(): HandleFactory | undefined;
  jobById(id: number): Job | undefined;
  /** Write a frame (a reply) on the worker's data channel. */
  write(request: Request, id: number): void;
}

/** The callbacks in flight on one worker. */
export class WorkerCallbacks {
  readonly #inFlight = new Map<number, InFlight>();

  constructor(private readonly host: CallbackHost) {}

  /** Callbacks whose function has not settled yet. */
  get size(): number {
    return this.#inFlight.size;
  }

  /** A CALLBACK frame arrived. */
  onCallback(id: number, flags: number, buf: Buffer, start: number, end: number, parts?: Uint8Array[]): void {
    let outer: number, name: string, args: unknown[];
    try {
      [outer, name, args] = decodePayload(flags, buf, start, end, false, parts, this.host.handles()) as [number, string, unknown[]];
    } catch (error) {
      this.#reply(id, failure(error));
      return;
    }
    const functions = this.host.functions();
    const fn = functions?.get(name);
    if (!fn) {
      this.#reply(id, ['unknown', functions ? [...functions.keys()] : []]);
      return;
    }
    const job = this.host.jobById(outer);
    if (job?.interrupted) {
      this.#reply(id, CANCELLED); // made after its request was interrupted: the wait must end
      return;
    }
    const scope: CallbackScope = { worker: this.host.worker, job, active: true };
    const entry: InFlight = { outer, scope };
    this.#inFlight.set(id, entry); // before the call: requests the function sends at once run nested
    let result: unknown;
    try {
      result = callbackScope.run(scope, fn, ...args);
    } catch (error) {
      this.#settle(id, entry, failure(error));
      return;
    }
    if (!isThenable(result)) {
      this.#settle(id, entry, ['ok', result]);
      return;
    }
    try {
      result.then(
        (value) => this.#settle(id, entry, ['ok', value]),
        (error: unknown) => this.#settle(id, entry, failure(error)),
      );
    } catch (error) {
      this.#settle(id, entry, failure(error));
    }
  }

  #settle(id: number, entry: InFlight, reply: unknown[]): void {
    entry.scope.active = false;
    if (this.#inFlight.get(id) !== entry) return; // answered already (its request was interrupted)
    this.#inFlight.delete(id);
    this.#reply(id, reply);
  }

  /** The request `jobId` was interrupted: answer the callbacks it waits for, so that the wait ends. */
  cancelFor(jobId: number): void {
    for (const [id, entry] of this.#inFlight) {
      if (entry.outer !== jobId) continue;
      entry.scope.active = false;
      this.#inFlight.delete(id);
      this.#reply(id, CANCELLED);
    }
  }

  /** The worker exited: nothing is answered any more. */
  abandon(): void {
    for (const entry of this.#inFlight.values()) entry.scope.active = false;
    this.#inFlight.clear();
  }

  #reply(id: number, reply: unknown[]): void {
    let request: Request;
    try {
      request = requestCallbackReply(reply);
    } catch (error) {
      request = requestCallbackReply(failure(error));
    }
    this.host.write(request, id);
  }
}

/** ['error', [name, message, stack]] for what a host function threw; the stack without pyworkers' own frames. */
function failure(error: unknown): unknown[] {
  if (error instanceof Error) return ['error', [error.name, error.message, userStack(error.stack)]];
  let text: string;
  try {
    text = String(error);
  } catch {
    text = Object.prototype.toString.call(error);
  }
  return ['error', ['Error', text, '']];
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as PromiseLike<unknown>).then === 'function';
}

/** A host function's stack up to where pyworkers called it. */
function userStack(stack: string | undefined): string {
  if (!stack) return '';
  const lines = stack.split('\n');
  const cut = lines.findIndex((line) => line.includes('AsyncLocalStorage.run') || line.includes(OWN_FILE));
  return (cut > 0 ? lines.slice(0, cut) : lines).join('\n');
}

const OWN_FILE = new URL(import.meta.url).pathname;
