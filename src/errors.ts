/**
 * Every error pyworkers raises carries a stable `code`. All of them are
 * `instanceof PyWorkersError`, including the argument errors, which are also
 * `TypeError` / `RangeError` so that they behave like Node's own.
 */

const kBrand = Symbol.for('pyworkers.error');

export type ErrorCode =
  | 'ERR_PYTHON'
  | 'ERR_CONVERSION'
  | 'ERR_TIMEOUT'
  | 'ERR_ABORTED'
  | 'ERR_WORKER_CRASHED'
  | 'ERR_WORKER_START'
  | 'ERR_CONTEXT_LOST'
  | 'ERR_CONTEXT_CLOSED'
  | 'ERR_QUEUE_FULL'
  | 'ERR_POOL_CLOSED'
  | 'ERR_PYTHON_NOT_FOUND'
  | 'ERR_NOT_TRACING'
  | 'ERR_PROTOCOL'
  | 'ERR_REF_LOST'
  | 'ERR_REF_DISPOSED'
  | 'ERR_REF_WORKER'
  | 'ERR_REMOTE'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_OUT_OF_RANGE';

function brand(error: Error, code: ErrorCode): void {
  Object.defineProperty(error, kBrand, { value: true });
  Object.defineProperty(error, 'code', { value: code, enumerable: true });
}

/** Base class of every pyworkers error. */
export class PyWorkersError extends Error {
  declare readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    brand(this, code);
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this === PyWorkersError) {
      return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kBrand] === true;
    }
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }
}

/** A bad argument or option: also a `TypeError`. */
export class ArgumentError extends TypeError {
  declare readonly code: 'ERR_INVALID_ARGUMENT';
  constructor(message: string) {
    super(message);
    this.name = 'ArgumentError';
    brand(this, 'ERR_INVALID_ARGUMENT');
  }
}

/** A number outside its allowed range: also a `RangeError`. */
export class ArgumentRangeError extends RangeError {
  declare readonly code: 'ERR_OUT_OF_RANGE';
  constructor(message: string) {
    super(message);
    this.name = 'ArgumentRangeError';
    brand(this, 'ERR_OUT_OF_RANGE');
  }
}

export interface PythonErrorInfo {
  /** The exception class name, e.g. `'ZeroDivisionError'`. */
  type: string;
  /** The module that defines the exception class (`'builtins'` for built-in ones). */
  module: string;
  /** `str(exception)`. */
  message: string;
  /** The formatted Python traceback, without pyworkers' own frames. */
  traceback: string;
}

/** An exception raised by Python code. */
export class PythonError extends PyWorkersError {
  /** The exception class name, e.g. `'ZeroDivisionError'`. */
  readonly type: string;
  /** The module that defines the exception class (`'builtins'` for built-in ones). */
  readonly pythonModule: string;
  /** `str(exception)` in Python. */
  readonly pythonMessage: string;
  /** The formatted Python traceback. */
  readonly traceback: string;
  /** The id of the worker that raised it. */
  readonly workerId: number | undefined;

  /**
   * @param options.cause the exception it was raised from (`raise ... from`) or while handling: a PythonError too.
   */
  constructor(info: PythonErrorInfo, workerId?: number, options?: { cause?: unknown }) {
    super('ERR_PYTHON', info.message ? `${info.type}: ${info.message}` : info.type, options);
    this.type = info.type;
    this.pythonModule = info.module;
    this.pythonMessage = info.message;
    this.traceback = info.traceback;
    this.workerId = workerId;
  }
}

/** A value that cannot cross between JavaScript and Python. */
export class ConversionError extends PyWorkersError {
  /** Where in the value the problem is, e.g. `args[0].handler`, when known. */
  readonly path: string | undefined;
  constructor(message: string, path?: string) {
    super('ERR_CONVERSION', path ? `${message} (at ${path})` : message);
    this.path = path;
  }
}

/** A call ran longer than its `timeout`. */
export class TimeoutError extends PyWorkersError {
  readonly timeout: number;
  constructor(timeout: number, what = 'Python call') {
    super('ERR_TIMEOUT', `${what} timed out after ${timeout} ms`);
    this.timeout = timeout;
  }
}

/** A call was cancelled through its `signal`. */
export class AbortError extends PyWorkersError {
  constructor(reason?: unknown) {
    super('ERR_ABORTED', 'The operation was aborted', { cause: reason });
  }
}

export interface WorkerExitInfo {
  workerId: number;
  pid: number | undefined;
  exitCode: number | null;
  signal: string | null;
  /** The last lines the worker wrote to its stderr. */
  stderr: string;
}

function describeExit(info: WorkerExitInfo): string {
  const how = info.signal ? `was killed by ${info.signal}` : `exited with code ${info.exitCode}`;
  const tail = info.stderr.trim() ? `; last stderr:\n${info.stderr.trimEnd()}` : '';
  return `Python worker ${info.workerId} (pid ${info.pid ?? '?'}) ${how}${tail}`;
}

/** The worker process running a call died. */
export class WorkerCrashedError extends PyWorkersError {
  readonly workerId: number;
  readonly pid: number | undefined;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly stderr: string;
  constructor(info: WorkerExitInfo, message?: string) {
    super('ERR_WORKER_CRASHED', message ?? describeExit(info));
    this.workerId = info.workerId;
    this.pid = info.pid;
    this.exitCode = info.exitCode;
    this.signal = info.signal;
    this.stderr = info.stderr;
  }
}

/** Workers could not be started (bad interpreter, failing `setup`, repeated deaths at start). */
export class WorkerStartError extends PyWorkersError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_WORKER_START', message, options);
  }
}

/** The worker that held a context's namespace is gone. */
export class ContextLostError extends PyWorkersError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_CONTEXT_LOST', message, options);
  }
}

/** The worker that held a handle's object is gone (it crashed, was recycled or killed): so is the object. */
export class RefLostError extends PyWorkersError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_REF_LOST', message, options);
  }
}

/** The handle was disposed: its object was released in the worker. */
export class RefDisposedError extends PyWorkersError {
  constructor(typeName: string) {
    super('ERR_REF_DISPOSED', `The handle (to a Python '${typeName}') was disposed`);
  }
}

/** A handle was sent to a worker other than the one holding its object (a context on another worker). */
export class RefWorkerError extends PyWorkersError {
  constructor(message: string) {
    super('ERR_REF_WORKER', message);
  }
}

/** The context was closed. */
export class ContextClosedError extends PyWorkersError {
  constructor() {
    super('ERR_CONTEXT_CLOSED', 'The context is closed');
  }
}

/** The pool's queue is at `maxQueue`. */
export class QueueFullError extends PyWorkersError {
  constructor(maxQueue: number) {
    super('ERR_QUEUE_FULL', `The pool's queue is full (maxQueue: ${maxQueue})`);
  }
}

/** The pool is closed or closing. */
export class PoolClosedError extends PyWorkersError {
  constructor(message = 'The pool is closed') {
    super('ERR_POOL_CLOSED', message);
  }
}

/** No usable Python interpreter. */
export class PythonNotFoundError extends PyWorkersError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_PYTHON_NOT_FOUND', message, options);
  }
}

/** A snapshot or leak search needs tracemalloc to be tracing. */
export class NotTracingError extends PyWorkersError {
  constructor(message = 'tracemalloc is not tracing on this worker: call tracemallocStart() first') {
    super('ERR_NOT_TRACING', message);
  }
}

/** The worker sent something the host cannot understand. */
export class ProtocolError extends PyWorkersError {
  constructor(message: string) {
    super('ERR_PROTOCOL', message);
  }
}

/** Why an agent could not be used. */
export type RemoteReason = 'unreachable' | 'tls' | 'auth' | 'version' | 'full' | 'draining' | 'protocol';

/** No agent of a remote pool could be used (unreachable, refused us, or spoke another protocol). */
export class RemoteError extends PyWorkersError {
  /** `'auth'` (wrong token), `'version'`, `'full'` (its workers are leased), `'draining'`, `'tls'`, `'unreachable'`, `'protocol'`. */
  readonly reason: RemoteReason;
  /** The agent, `'host:port'`. */
  readonly endpoint: string;

  constructor(reason: RemoteReason, endpoint: string, message: string, options?: { cause?: unknown }) {
    super('ERR_REMOTE', message, options);
    this.reason = reason;
    this.endpoint = endpoint;
  }
}
