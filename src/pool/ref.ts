/**
 * PyRef: a handle to a Python object that stays in one worker (a model, a connection, an instance of the user's
 * class). Its calls run on that worker; the object lives until the handle is disposed (or collected, see
 * `dropped`), and a worker holding live handles is retired only once they are gone.
 */
import { RefWorkerError } from '../errors.js';
import type { CallOptions } from '../options.js';
import { HANDLE } from '../protocol/handles.js';
import { requestCall } from '../protocol/requests.js';
import { checkArgs, checkString } from '../validate.js';
import { CallJob } from '../worker/job.js';
import type { PythonWorker } from '../worker/worker.js';
import { checkHandle, type HandleState } from './home.js';
import { submit, submitCall, type Target } from './submit.js';

/** What a handle needs of its pool. */
export interface RefHost {
  defaultTimeout(): number | undefined;
  defaultDeadline(): number | undefined;
  checkOpen(): void;
  track(job: CallJob): void;
  /** A handle was released on `worker`: retire it if that was all that kept it. */
  unpinned(worker: PythonWorker): void;
}

interface Held {
  readonly state: HandleState;
  readonly host: RefHost;
}

/** The Python side of handles: python/_pyworkers/refs.py. */
const RUNTIME = '_pyworkers.refs';

/** Handles the program dropped without disposing them: released once collected, in one request per worker. */
const dropped = new FinalizationRegistry<Held>((held) => forget(held));
const toRelease = new Map<PythonWorker, { ids: number[]; host: RefHost }>();
let releaseScheduled = false;

export class PyRef implements AsyncDisposable {
  readonly #state: HandleState;
  readonly #host: RefHost;
  readonly #target: Target;

  /** @internal Handles come from `callRef()`, `evalRef()`, `{ returns: 'ref' }` or `pyworkers.ref(obj)` in Python. */
  constructor(host: RefHost, worker: PythonWorker, id: number, typeName: string) {
    const state: HandleState = { token: worker.token, id, worker, typeName, disposed: false };
    this.#state = state;
    this.#host = host;
    worker.handles.add(id);
    dropped.register(this, { state, host }, this);
    this.#target = {
      ctx: 0,
      pinned: true,
      defaultTimeout: () => host.defaultTimeout(),
      defaultDeadline: () => host.defaultDeadline(),
      check: () => {
        host.checkOpen();
        checkHandle(state);
      },
      track: (job) => host.track(job),
      submit: (job, home) => {
        if (home && home !== worker) throw new RefWorkerError(`A handle of worker ${home.id} was passed to a call on the handle of worker ${worker.id}: a handle works only on its own worker`);
        worker.send(job);
      },
    };
  }

  /** @internal The wire identity and state (see protocol/handles.ts). */
  get [HANDLE](): HandleState {
    return this.#state;
  }

  /** The Python type of the object, e.g. `'sklearn.linear_model._base.LinearRegression'` (builtins: `'dict'`). */
  get typeName(): string {
    return this.#state.typeName;
  }

  /** The id of the worker that holds the object. */
  get workerId(): number {
    return this.#state.worker.id;
  }

  /** Whether `dispose()` was called (or the handle was collected). */
  get disposed(): boolean {
    return this.#state.disposed;
  }

  /** Call the object's method `method` (a dotted path: `'a.b'` calls `obj.a.b`) and convert its result. */
  call<T = any>(method: string, args: unknown[] = [], options?: CallOptions): Promise<T> {
    return this.#call(method, args, options, false) as Promise<T>;
  }

  /** Call the object's method `method`, and answer with a handle to its result. */
  callRef(method: string, args: unknown[] = [], options?: CallOptions): Promise<PyRef> {
    return this.#call(method, args, options, true) as Promise<PyRef>;
  }

  /** The object's attribute `attr` (a dotted path), converted. */
  get<T = any>(attr: string, options?: CallOptions): Promise<T> {
    return this.#runtime('get_attr', [this, checkString(attr, 'attr')], options, false) as Promise<T>;
  }

  /** A handle to the object's attribute `attr`. */
  getRef(attr: string, options?: CallOptions): Promise<PyRef> {
    return this.#runtime('get_attr', [this, checkString(attr, 'attr')], options, true) as Promise<PyRef>;
  }

  /** Set the object's attribute `attr` (a dotted path) to `value`. */
  async set(attr: string, value: unknown, options?: CallOptions): Promise<void> {
    await this.#runtime('set_attr', [this, checkString(attr, 'attr'), value], options, false);
  }

  /** The object itself, converted (a `ConversionError` if it has no JavaScript counterpart). */
  value<T = any>(options?: CallOptions): Promise<T> {
    return this.#runtime('identity', [this], options, false) as Promise<T>;
  }

  /** `repr()` of the object. */
  repr(options?: CallOptions): Promise<string> {
    return submitCall(this.#target, 'builtins', 'repr', [this], options) as Promise<string>;
  }

  /**
   * Release the object in the worker (Python frees it once nothing else holds it). Later uses reject with
   * `ERR_REF_DISPOSED`; disposing again does nothing. Calls sent before it still run.
   */
  async dispose(): Promise<void> {
    const state = this.#state;
    if (state.disposed) return;
    dropped.unregister(this);
    await release(state, this.#host);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  /** @internal */
  toString(): string {
    return `PyRef<${this.#state.typeName}>(worker ${this.#state.worker.id})`;
  }

  #call(method: string, args: unknown[], options: CallOptions | undefined, returnRef: boolean): Promise<unknown> {
    return submit(this.#target, (o) => requestCall(0, this, checkString(method, 'method'), checkArgs(args), o.kwargs), options, returnRef, ['call', `PyRef<${this.#state.typeName}>`, method]);
  }

  #runtime(fn: string, args: unknown[], options: CallOptions | undefined, returnRef: boolean): Promise<unknown> {
    return submit(this.#target, () => requestCall(0, RUNTIME, fn, args, undefined), options, returnRef, ['call', RUNTIME, fn]);
  }
}

/** Mark the handle released, and release its object in the worker. */
function release(state: HandleState, host: RefHost): Promise<void> {
  state.disposed = true;
  state.worker.handles.delete(state.id);
  return releaseInWorker(state.worker, [state.id], host);
}

/** Release objects in `worker`; then retire it if that was all that kept it. (A dead worker took them along.) */
function releaseInWorker(worker: PythonWorker, ids: number[], host: RefHost): Promise<void> {
  if (worker.state === 'exited') return Promise.resolve();
  const request = requestCall(0, RUNTIME, 'release', [ids], undefined);
  const job = new CallJob(request.kind, request.frame, request.flags, { timeout: undefined, signal: undefined }, true);
  worker.send(job);
  const unpinned = () => host.unpinned(worker);
  return job.promise.then(unpinned, unpinned);
}

/** A handle the program dropped was collected. */
function forget({ state, host }: Held): void {
  if (state.disposed) return;
  state.disposed = true;
  state.worker.handles.delete(state.id);
  if (state.worker.state === 'exited') return;
  let batch = toRelease.get(state.worker);
  if (!batch) toRelease.set(state.worker, (batch = { ids: [], host }));
  batch.ids.push(state.id);
  if (!releaseScheduled) {
    releaseScheduled = true;
    setImmediate(releaseDropped);
  }
}

function releaseDropped(): void {
  releaseScheduled = false;
  for (const [worker, { ids, host }] of toRelease) void releaseInWorker(worker, ids, host);
  toRelease.clear();
}
