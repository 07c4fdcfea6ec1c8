/**
 * Tracing: every call, eval and exec is published on the `diagnostics_channel` tracing channel `pyworkers:call`
 * (the convention of Node's http and undici), so that APM tools see Python calls as spans. Subscribers get the
 * channels `tracing:pyworkers:call:start`, `:end`, `:asyncStart`, `:asyncEnd` and `:error`, each with the call's
 * context object (CallTraceContext). Nothing is published, and nothing costs, without subscribers.
 */
import diagnostics_channel from 'node:diagnostics_channel';

/** What the tracing channel's messages carry for one call (the same object from start to end). */
export interface CallTraceContext {
  /** `'call'`, `'eval'` or `'exec'`; a handle's method call is a `'call'`. */
  kind: 'call' | 'eval' | 'exec';
  /** The module of a call (a handle's: `PyRef<type>`). */
  module?: string;
  /** The function of a call (a handle's: its method). */
  fn?: string;
  /** The code of an eval or exec, cut at 200 characters. */
  code?: string;
  /** Where it ran: set when it settled (absent if it never reached a worker). */
  workerId?: number;
  /** From the call to its answer, in ms: set when it settled. */
  durationMs?: number;
  /** How it failed (set before the `error` message). */
  error?: unknown;
}

export const callChannel = diagnostics_channel.tracingChannel<unknown, CallTraceContext>('pyworkers:call');

/**
 * The same events on plain channels, for subscribers that use `diagnostics_channel.subscribe(name)`:
 * `pyworkers:call:start` (the call is made), `pyworkers:call:end` (it settled, either way) and
 * `pyworkers:call:error` (it failed, before `end`).
 */
export const plainChannels = {
  start: diagnostics_channel.channel('pyworkers:call:start'),
  end: diagnostics_channel.channel('pyworkers:call:end'),
  error: diagnostics_channel.channel('pyworkers:call:error'),
};

/** Whether anyone listens (cheap: checked on every call). */
export function tracing(): boolean {
  return callChannel.hasSubscribers || plainChannels.start.hasSubscribers || plainChannels.end.hasSubscribers || plainChannels.error.hasSubscribers;
}

/** The code of an eval or exec as traced. */
export function tracedCode(code: string): string {
  return code.length > 200 ? `${code.slice(0, 197)}...` : code;
}
