import os from 'node:os';
import path from 'node:path';
import { ArgumentError, ArgumentRangeError } from './errors.js';
import { checkBoolean, checkFunction, checkFunctionName, checkInteger, checkKnownKeys, checkMilliseconds, checkObject, checkOneOf, checkString, checkStringArray } from './validate.js';
import type { HostFunction } from './worker/callbacks.js';
import { defaultWorkers } from './container.js';
import type { MeterProviderLike } from './metrics/opentelemetry.js';
import { parseSize } from './util/size.js';
import { resolveMonitorOptions, type MonitorOptions, type ResolvedMonitorOptions } from './memory/monitor.js';
import { AGENT_OWNED, resolveRemoteOptions, type RemoteOptions, type ResolvedRemoteOptions } from './remote/options.js';

/** Options of {@link createPool}. Every one is optional. */
export interface PoolOptions {
  /**
   * Number of Python worker processes.
   * @default Math.min(4, os.availableParallelism(), the container's CPU quota (cgroup), at least 1)
   */
  workers?: number;
  /** Python interpreter to run (a path or a command on PATH). Else `venv`'s, else env `PYWORKERS_PYTHON`, else `python3`. */
  python?: string;
  /** A virtual environment whose `bin/python` to run (relative to `cwd`). Not together with `python`. */
  venv?: string;
  /** Working directory of the workers. @default process.cwd() */
  cwd?: string;
  /** Environment variables added to (or, when `undefined`, removed from) `process.env` for the workers. */
  env?: Record<string, string | undefined>;
  /** Extra `sys.path` entries, put first (relative ones are resolved against `cwd`). */
  pythonPath?: string[];
  /** Python code run in `__main__` of every worker when it starts, before any call. */
  setup?: string | string[];
  /** Default timeout of each call in ms, counted from when it starts running in Python. `0`: none. @default 0 */
  timeout?: number;
  /** After interrupting a call (timeout or abort), how long in ms to wait before the worker is killed and replaced. @default 1000 */
  forceKillAfter?: number;
  /** Most calls waiting for a worker; beyond it calls reject with `ERR_QUEUE_FULL`. @default Infinity */
  maxQueue?: number;
  /** Most calls sent ahead to one worker (they run one after another there). @default 32 */
  pipelineDepth?: number;
  /** How long in ms a worker may take to start. @default 30000 */
  startTimeout?: number;
  /** How long in ms `close()` lets running calls finish before it ends them. @default 30000 */
  closeTimeout?: number;
  /** Write the workers' stdout and stderr to this process's stderr (they are also `'stdout'`/`'stderr'` events). @default true */
  forwardOutput?: boolean;
  /**
   * Hard memory cap of each worker, in bytes or a size string (`'512MB'`): an OS limit (`RLIMIT_DATA`), so an
   * allocation beyond it raises `MemoryError` in Python and the worker serves on.
   */
  maxMemory?: number | string;
  /** Retire and replace workers that grow, without losing a call. See {@link RecycleOptions}. */
  recycle?: RecycleOptions;
  /** Sample every worker's memory on an interval: `'memory'` and `'pressure'` events. See {@link MonitorOptions}. */
  monitor?: MonitorOptions | boolean;
  /**
   * How long in ms a worker may stay stopped (SIGSTOP, a debugger) before it is killed and replaced: its calls
   * fail or move as after a crash. A worker busy in a long C call is not stopped (it runs). @default 10000
   */
  livenessTimeout?: number;
  /**
   * Default bound in ms on the whole wait of each call, from the call to its answer (queue and run): past it, a
   * call that has not started is dropped without running, one that runs is interrupted. `0`: none. @default 0
   */
  deadline?: number;
  /**
   * What typed arrays and `NDArray`s become in Python: `'memoryview'`, a typed `memoryview` of their dtype and
   * shape (standard library only; `numpy.asarray(x)` wraps it without a copy), or `'numpy'`, a `numpy.ndarray`
   * (numpy must be installed for the interpreter: the worker fails to start otherwise). Both are writable.
   * @default 'memoryview'
   */
  arrays?: 'memoryview' | 'numpy';
  /**
   * Functions Python may call, by name: `from pyworkers import host` then `host.fetchUser(42)` (or
   * `host.call('fetchUser', 42)`). Sync or async; arguments and results cross with the value table. More with
   * `pool.expose()`. See docs/callbacks.md.
   */
  functions?: Record<string, HostFunction>;
  /**
   * Count and time calls, and time each worker's garbage collections, for `pool.metrics()` and
   * `pool.prometheus()`. `false` leaves the histograms and the workers' gc timing out (counters remain). @default true
   */
  metrics?: boolean;
  /**
   * Python `logging` records as structured records: `level` (a name such as `'INFO'`, or a number) sets the root
   * logger's level, and each record at or above it goes to `handler` (and to the pool's `'log'` event). Without
   * this option, Python logging writes to the worker's stderr as usual. See docs/operations.md.
   */
  logging?: LoggingOptions;
  /**
   * OpenTelemetry instruments for the pool's figures, when the app has `@opentelemetry/api` (an optional peer
   * dependency): on the global MeterProvider (`true`), on the one given, or none (`false`). @default true
   */
  openTelemetry?: boolean | { meterProvider: MeterProviderLike };
  /**
   * Lease the workers from agents on other machines (`pyworkers serve`) instead of starting processes here. The
   * agents' command lines then set what shapes the processes (workers, maxMemory, recycle, python, venv, ...).
   * See docs/remote.md.
   */
  remote?: RemoteOptions;
}

/** Python logging levels by name (or a number, as Python's `logging` takes). */
export type LogLevel = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR' | 'CRITICAL' | number;

export interface LoggingOptions {
  /** @default 'INFO' */
  level?: LogLevel;
  /** Called with each record. Without it (and without `'log'` listeners), records are written to stderr as lines. */
  handler?: (record: LogRecord) => void;
}

/** A Python logging record, as it reaches the host. */
export interface LogRecord {
  /** `'DEBUG'`, `'INFO'`, `'WARNING'`, `'ERROR'`, `'CRITICAL'` (or a custom level's name). */
  level: string;
  /** Its number (10, 20, 30, 40, 50). */
  levelno: number;
  /** The logger's name (`'myapp.db'`; the root logger: `'root'`). */
  logger: string;
  /** The same (Python's `LogRecord.name`). */
  name: string;
  /** The message, formatted with its arguments. */
  message: string;
  module: string;
  function: string;
  file: string;
  line: number;
  /** When it was made, ms since the epoch. */
  time: number;
  /** The Python thread's name. */
  thread: string;
  /** The formatted traceback of `exc_info` (`logger.exception(...)`), or null. */
  exception: string | null;
  /** `stack_info`, or null. */
  stack: string | null;
  workerId: number;
}

/** When to retire a worker (it finishes its calls; a replacement started ahead takes its place). */
export interface RecycleOptions {
  /** Retire a worker whose resident memory (current RSS, not its peak) is above this after a call. */
  maxRss?: number | string;
  /** Retire a worker after it answered this many calls. */
  maxCalls?: number;
  /** Retire a worker that served calls and then sat idle this many ms (a fresh process gives memory back). */
  idleTimeout?: number;
}

/** Per-call options. */
export interface CallOptions {
  /** Keyword arguments of the Python function. */
  kwargs?: Record<string, unknown>;
  /** Timeout in ms from when the call starts running in Python. Overrides the pool's `timeout`; `0`: none. */
  timeout?: number;
  /** Cancels the call: removed from the queue, or interrupted in Python. */
  signal?: AbortSignal;
  /**
   * Bound in ms on the whole wait, from the call to its answer (queue and run): past it a call that has not
   * started is dropped without running, one that runs is interrupted (`TimeoutError`). Overrides the pool's
   * `deadline`; `0`: none.
   */
  deadline?: number;
  /**
   * `'ref'`: answer with a handle (`PyRef`) to the result, which stays in the worker, instead of the result
   * converted (as `callRef()`/`evalRef()` do). @default 'value'
   */
  returns?: 'value' | 'ref';
}

/** Options of streams: those of calls (but `returns`), plus flow control. */
export interface StreamOptions extends Omit<CallOptions, 'returns'> {
  /** How many items the worker may produce ahead of the consumer. @default 2048 */
  highWaterMark?: number;
}

export interface ResolvedPoolOptions {
  workers: number;
  python: string | undefined;
  venv: string | undefined;
  cwd: string;
  env: NodeJS.ProcessEnv;
  pythonPath: string[];
  setup: string[];
  timeout: number;
  forceKillAfter: number;
  maxQueue: number;
  pipelineDepth: number;
  startTimeout: number;
  closeTimeout: number;
  forwardOutput: boolean;
  maxMemory: number | undefined;
  recycle: { maxRss: number | undefined; maxCalls: number | undefined; idleTimeout: number | undefined };
  monitor: ResolvedMonitorOptions | undefined;
  arrays: 'memoryview' | 'numpy';
  livenessTimeout: number;
  deadline: number;
  functions: Map<string, HostFunction>;
  metrics: boolean;
  logging: { level: number; handler: ((record: LogRecord) => void) | undefined } | undefined;
  /** false: none; true: the global MeterProvider; else this one. */
  openTelemetry: boolean | MeterProviderLike;
  /** Workers leased from agents on other machines (undefined: processes of this one). */
  remote: ResolvedRemoteOptions | undefined;
}

export const DEFAULTS = {
  /** At most 4, the CPUs, and the container's CPU quota (read when a pool is made, see container.ts). */
  workers: (): number => defaultWorkers(os),
  timeout: 0,
  forceKillAfter: 1000,
  maxQueue: Infinity,
  pipelineDepth: 32,
  startTimeout: 30_000,
  closeTimeout: 30_000,
  forwardOutput: true,
  highWaterMark: 2048,
  arrays: 'memoryview',
  livenessTimeout: 10_000,
  deadline: 0,
  metrics: true,
  logLevel: 'INFO',
} as const;

const LOG_LEVELS: Record<string, number> = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40, CRITICAL: 50 };

const POOL_KEYS = new Set<string>([
  'workers', 'python', 'venv', 'cwd', 'env', 'pythonPath', 'setup', 'timeout', 'forceKillAfter', 'maxQueue',
  'pipelineDepth', 'startTimeout', 'closeTimeout', 'forwardOutput', 'maxMemory', 'recycle', 'monitor', 'arrays',
  'livenessTimeout', 'deadline', 'functions', 'metrics', 'logging', 'openTelemetry', 'remote',
]);
const RECYCLE_KEYS = new Set(['maxRss', 'maxCalls', 'idleTimeout']);
/** Below this a Python worker cannot even start. */
export const MIN_MEMORY = 32 * 1024 * 1024;
const RUN_KEYS = ['kwargs', 'timeout', 'signal', 'deadline'];
const CALL_KEYS = new Set([...RUN_KEYS, 'returns']);
const STREAM_KEYS = new Set([...RUN_KEYS, 'highWaterMark']);

export function resolvePoolOptions(options: PoolOptions | undefined, where = 'createPool() options'): ResolvedPoolOptions {
  const o: Record<string, unknown> = options === undefined ? {} : (checkObject(options, where), options as Record<string, unknown>);
  checkKnownKeys(o, POOL_KEYS, where);
  if (o.remote !== undefined) {
    const owned = AGENT_OWNED.find((key) => o[key] !== undefined);
    if (owned) throw new ArgumentError(`options.${owned} shapes the worker processes, which a remote pool's agents run: set it on the agent (pyworkers serve), not with options.remote`);
  }
  const opt = (key: string) => `options.${key}`;
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (o.env !== undefined) {
    checkObject(o.env, opt('env'));
    for (const [k, v] of Object.entries(o.env)) {
      if (v === undefined) delete env[k];
      else if (typeof v !== 'string') throw new ArgumentError(`options.env.${k} must be a string or undefined, got ${typeof v}`);
      else env[k] = v;
    }
  }
  if (o.python !== undefined && o.venv !== undefined) {
    throw new ArgumentError('options.python and options.venv both name an interpreter: give one of them');
  }
  const cwd = o.cwd === undefined ? process.cwd() : path.resolve(checkString(o.cwd, opt('cwd')));
  let setup: string[] = [];
  if (o.setup !== undefined) setup = typeof o.setup === 'string' ? [o.setup] : checkStringArray(o.setup, opt('setup'));
  return {
    workers: o.workers === undefined ? DEFAULTS.workers() : checkInteger(o.workers, opt('workers'), 1),
    python: o.python === undefined ? undefined : checkString(o.python, opt('python')),
    venv: o.venv === undefined ? undefined : checkString(o.venv, opt('venv')),
    cwd,
    env,
    pythonPath: o.pythonPath === undefined ? [] : checkStringArray(o.pythonPath, opt('pythonPath')).map((entry) => path.resolve(cwd, entry)),
    setup,
    timeout: o.timeout === undefined ? DEFAULTS.timeout : checkMilliseconds(o.timeout, opt('timeout')),
    forceKillAfter: o.forceKillAfter === undefined ? DEFAULTS.forceKillAfter : checkMilliseconds(o.forceKillAfter, opt('forceKillAfter')),
    maxQueue: o.maxQueue === undefined ? DEFAULTS.maxQueue : checkInteger(o.maxQueue, opt('maxQueue'), 0, { allowInfinity: true }),
    pipelineDepth: o.pipelineDepth === undefined ? DEFAULTS.pipelineDepth : checkInteger(o.pipelineDepth, opt('pipelineDepth'), 1),
    startTimeout: o.startTimeout === undefined ? DEFAULTS.startTimeout : checkMilliseconds(o.startTimeout, opt('startTimeout')),
    closeTimeout: o.closeTimeout === undefined ? DEFAULTS.closeTimeout : checkMilliseconds(o.closeTimeout, opt('closeTimeout')),
    forwardOutput: o.forwardOutput === undefined ? DEFAULTS.forwardOutput : checkBoolean(o.forwardOutput, opt('forwardOutput')),
    maxMemory: o.maxMemory === undefined ? undefined : checkMemory(o.maxMemory, opt('maxMemory')),
    recycle: resolveRecycle(o.recycle),
    monitor: resolveMonitorOptions(o.monitor),
    arrays: o.arrays === undefined ? DEFAULTS.arrays : checkOneOf(o.arrays, opt('arrays'), ['memoryview', 'numpy'] as const),
    livenessTimeout: o.livenessTimeout === undefined ? DEFAULTS.livenessTimeout : checkMilliseconds(o.livenessTimeout, opt('livenessTimeout')),
    deadline: o.deadline === undefined ? DEFAULTS.deadline : checkMilliseconds(o.deadline, opt('deadline')),
    functions: resolveFunctions(o.functions),
    metrics: o.metrics === undefined ? DEFAULTS.metrics : checkBoolean(o.metrics, opt('metrics')),
    logging: resolveLogging(o.logging),
    openTelemetry: resolveOpenTelemetry(o.openTelemetry),
    remote: o.remote === undefined ? undefined : resolveRemoteOptions(o.remote),
  };
}

function resolveOpenTelemetry(value: unknown): ResolvedPoolOptions['openTelemetry'] {
  if (value === undefined || typeof value === 'boolean') return value ?? true;
  checkObject(value, 'options.openTelemetry');
  checkKnownKeys(value, ['meterProvider'], 'options.openTelemetry');
  const provider = value.meterProvider as MeterProviderLike | undefined;
  if (typeof provider !== 'object' || provider === null || typeof provider.getMeter !== 'function') {
    throw new ArgumentError('options.openTelemetry.meterProvider must be an OpenTelemetry MeterProvider (with getMeter())');
  }
  return provider;
}

function resolveLogging(value: unknown): ResolvedPoolOptions['logging'] {
  if (value === undefined) return undefined;
  checkObject(value, 'options.logging');
  checkKnownKeys(value, ['level', 'handler'], 'options.logging');
  const level = value.level ?? DEFAULTS.logLevel;
  let levelno: number;
  if (typeof level === 'number') levelno = checkInteger(level, 'options.logging.level', 0, { max: 100 });
  else levelno = LOG_LEVELS[checkOneOf(level, 'options.logging.level', Object.keys(LOG_LEVELS))]!;
  const handler = value.handler === undefined ? undefined : checkFunction<(record: LogRecord) => void>(value.handler, 'options.logging.handler');
  return { level: levelno, handler };
}

function resolveFunctions(value: unknown): Map<string, HostFunction> {
  const functions = new Map<string, HostFunction>();
  if (value === undefined) return functions;
  checkObject(value, 'options.functions');
  for (const [name, fn] of Object.entries(value)) functions.set(checkFunctionName(name, `options.functions[${JSON.stringify(name)}]`), checkFunction(fn, `options.functions.${name}`));
  return functions;
}

function checkMemory(value: unknown, name: string): number {
  const bytes = parseSize(value, name);
  if (bytes < MIN_MEMORY) throw new ArgumentRangeError(`${name} must be at least 32MiB (a Python worker needs that much to start), got ${bytes} bytes`);
  return bytes;
}

function resolveRecycle(value: unknown): ResolvedPoolOptions['recycle'] {
  if (value === undefined) return { maxRss: undefined, maxCalls: undefined, idleTimeout: undefined };
  checkObject(value, 'options.recycle');
  checkKnownKeys(value, RECYCLE_KEYS, 'options.recycle');
  return {
    maxRss: value.maxRss === undefined ? undefined : parseSize(value.maxRss, 'options.recycle.maxRss'),
    maxCalls: value.maxCalls === undefined ? undefined : checkInteger(value.maxCalls, 'options.recycle.maxCalls', 1),
    idleTimeout: value.idleTimeout === undefined ? undefined : checkMilliseconds(value.idleTimeout, 'options.recycle.idleTimeout'),
  };
}

export interface ResolvedCallOptions {
  kwargs: Record<string, unknown> | undefined;
  timeout: number | undefined;
  signal: AbortSignal | undefined;
  deadline: number | undefined;
  highWaterMark: number;
  /** Answer with a handle (`returns: 'ref'`). */
  returnRef: boolean;
}

export function resolveCallOptions(options: CallOptions | StreamOptions | undefined, stream: boolean): ResolvedCallOptions {
  const where = stream ? 'stream options' : 'call options';
  if (options === undefined) return { kwargs: undefined, timeout: undefined, signal: undefined, deadline: undefined, highWaterMark: DEFAULTS.highWaterMark, returnRef: false };
  checkObject(options, where);
  checkKnownKeys(options, stream ? STREAM_KEYS : CALL_KEYS, where);
  const o = options as StreamOptions;
  if (o.kwargs !== undefined) checkObject(o.kwargs, 'options.kwargs');
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new ArgumentError('options.signal must be an AbortSignal');
  return {
    kwargs: o.kwargs,
    timeout: o.timeout === undefined ? undefined : checkMilliseconds(o.timeout, 'options.timeout'),
    signal: o.signal,
    deadline: o.deadline === undefined ? undefined : checkMilliseconds(o.deadline, 'options.deadline'),
    highWaterMark: o.highWaterMark === undefined ? DEFAULTS.highWaterMark : checkInteger(o.highWaterMark, 'options.highWaterMark', 1),
    returnRef: !stream && (options as CallOptions).returns !== undefined && checkOneOf((options as CallOptions).returns, 'options.returns', ['value', 'ref'] as const) === 'ref',
  };
}
