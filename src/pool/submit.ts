/**
 * The one path from a call (or stream) to a job: argument checks, the request, the job with its timeout and
 * signal, and where it goes. Pool, Context and the default pool `py` each give it a Target.
 */
import { ArgumentError, PyWorkersError } from '../errors.js';
import { resolveCallOptions, type CallOptions, type ResolvedCallOptions, type StreamOptions } from '../options.js';
import { requestCall, requestEval, requestExec, requestStreamCall, requestStreamEval, type Request } from '../protocol/requests.js';
import { checkArgs, checkCode, checkLocals, checkString } from '../validate.js';
import { callChannel, plainChannels, tracedCode, tracing, type CallTraceContext } from '../metrics/tracing.js';
import { FLAG_RETURN_REF } from '../protocol/frames.js';
import { CallJob, type Job } from '../worker/job.js';
import type { PythonWorker } from '../worker/worker.js';
import { homeWorker } from './home.js';
import { failedStream, PyStream, type StreamHost } from './stream.js';

/** Where requests go: the pool's queue (any worker) or one worker (a context's). */
export interface Target extends StreamHost {
  /** The namespace requests run in: 0 for `__main__` of whichever worker, a context's id for its own. */
  readonly ctx: number;
  /** Requests stay on one worker (a context's): a crash fails them instead of moving them. */
  readonly pinned: boolean;
  /** The call timeout when the call sets none (ms; undefined: none). */
  defaultTimeout(): number | undefined;
  /** The call deadline when the call sets none (ms; undefined: none). */
  defaultDeadline(): number | undefined;
  /** Throws when nothing can be sent (a closed pool, a closed or lost context). */
  check(): void;
  /** Count the call's outcome in the pool's stats. */
  track(job: CallJob): void;
  /** Send a job; `home`: the worker holding the handles among its values, where it must run. */
  submit(job: Job, home?: PythonWorker): void | Promise<void>;
}

/**
 * Give an error that reaches the caller the caller's stack: it was made where a reply arrived (a socket callback),
 * so its own stack shows only pyworkers' internals. Captured here, as the rejection passes to the `await` of the
 * caller, V8 lists the awaiting functions: the line with `await pool.call(...)`. Costs nothing when calls succeed.
 */
export function withCallerStack(error: unknown): never {
  if (error instanceof PyWorkersError) Error.captureStackTrace(error, withCallerStack);
  throw error;
}

/** What the tracing channel says a request is: `['call', module, fn]`, `['eval', code]` or `['exec', code]`. */
export type TraceAs = readonly ['call', string, string] | readonly ['eval' | 'exec', string];

/**
 * Check, encode and send one request; its promise. `returnRef`: answer with a handle (callRef, evalRef). A request
 * with handles among its values runs on their worker. `as`: how the tracing channel names it.
 */
export function submit(target: Target, build: (o: ResolvedCallOptions) => Request, options: CallOptions | undefined, returnRef: boolean, as: TraceAs): Promise<unknown> {
  if (!tracing()) return submitNow(target, build, options, returnRef, undefined);
  // The tracing channel's events are published by hand: tracePromise's extra promise and closures cost a tenth of
  // a trivial call's throughput. start and end here; error, asyncStart and asyncEnd when the call settles.
  const context: CallTraceContext = as[0] === 'call' ? { kind: 'call', module: as[1], fn: as[2] } : { kind: as[0], code: tracedCode(String(as[1])) };
  callChannel.start.publish(context);
  plainChannels.start.publish(context);
  try {
    return submitNow(target, build, options, returnRef, context);
  } finally {
    callChannel.end.publish(context);
  }
}

function submitNow(target: Target, build: (o: ResolvedCallOptions) => Request, options: CallOptions | undefined, returnRef: boolean, traced: CallTraceContext | undefined): Promise<unknown> {
  try {
    target.check();
    const o = resolveCallOptions(options, false);
    const request = build(o);
    const home = request.handles ? homeWorker(request.handles) : undefined;
    const deadline = o.deadline ?? target.defaultDeadline();
    const flags = returnRef || o.returnRef ? request.flags | FLAG_RETURN_REF : request.flags;
    const job = new CallJob(request.kind, request.frame, flags, { timeout: o.timeout ?? target.defaultTimeout(), signal: o.signal, deadline: deadline || undefined }, target.pinned || home !== undefined, request.parts);
    job.trace = traced;
    target.track(job);
    if (!job.settled) {
      const sent = target.submit(job, home);
      if (sent) sent.catch((error: unknown) => job.fail(error));
    }
    return job.promise.then(undefined, withCallerStack);
  } catch (error) {
    if (traced) publishSettled(traced, false, error);
    return Promise.reject(error);
  }
}

/** The tracing channel's events of a settled call (`job`: where it ran). */
export function publishSettled(context: CallTraceContext, ok: boolean, error: unknown, job?: CallJob): void {
  if (job) {
    context.workerId = job.worker?.id;
    context.durationMs = (job.settledAt || performance.now()) - job.createdAt;
  }
  if (!ok) {
    context.error = error;
    callChannel.error.publish(context);
    plainChannels.error.publish(context);
  }
  callChannel.asyncStart.publish(context);
  callChannel.asyncEnd.publish(context);
  plainChannels.end.publish(context);
}

/** `module.fn(*args, **kwargs)`. */
export function submitCall(target: Target, module: string, fn: string, args: unknown, options: CallOptions | undefined, returnRef = false): Promise<unknown> {
  return submit(target, (o) => requestCall(target.ctx, checkString(module, 'module'), checkString(fn, 'fn'), checkArgs(args), o.kwargs), options, returnRef, ['call', module, fn]);
}

/** An expression with optional locals. */
export function submitEval(target: Target, code: string, locals: Record<string, unknown> | null | undefined, options: CallOptions | undefined, returnRef = false): Promise<unknown> {
  return submit(target, () => requestEval(target.ctx, checkCode(code), checkLocals(locals)), options, returnRef, ['eval', code]);
}

/** Statements in the target's namespace (one worker: the pool's exec() reaches every worker, see Fleet). */
export function submitExec(target: Target, code: string, options: CallOptions | undefined): Promise<unknown> {
  return submit(target, (o) => {
    if (o.kwargs) throw new ArgumentError('exec() takes no kwargs');
    if (o.returnRef) throw new ArgumentError("exec() returns nothing: it takes no returns: 'ref'");
    return requestExec(target.ctx, checkCode(code));
  }, options, false, ['exec', code]);
}

/** Bad arguments throw here, synchronously; a target that cannot take the stream makes it reject when read. */
function openStream<T>(target: Target, options: StreamOptions | undefined, check: () => void, open: (o: ResolvedCallOptions, credit: number) => Request): PyStream<T> {
  const o = resolveCallOptions(options, true);
  check();
  try {
    target.check();
  } catch (error) {
    return failedStream<T>(error);
  }
  return new PyStream<T>(target, (credit) => ({ ...open(o, credit), pinned: target.pinned }), {
    highWaterMark: o.highWaterMark,
    timeout: o.timeout ?? target.defaultTimeout(),
    signal: o.signal,
    deadline: (o.deadline ?? target.defaultDeadline()) || undefined,
  });
}

/** The items of the iterable `module.fn(*args, **kwargs)` returns. */
export function streamCall<T>(target: Target, module: string, fn: string, args: unknown, options: StreamOptions | undefined): PyStream<T> {
  return openStream<T>(
    target,
    options,
    () => {
      checkString(module, 'module');
      checkString(fn, 'fn');
      checkArgs(args);
    },
    (o, credit) => requestStreamCall(target.ctx, module, fn, args as unknown[], o.kwargs, credit),
  );
}

/** The items of the iterable an expression evaluates to. */
export function streamEval<T>(target: Target, code: string, locals: Record<string, unknown> | null | undefined, options: StreamOptions | undefined): PyStream<T> {
  return openStream<T>(
    target,
    options,
    () => {
      checkCode(code);
      checkLocals(locals);
    },
    (_o, credit) => requestStreamEval(target.ctx, code, locals ?? undefined, credit),
  );
}
