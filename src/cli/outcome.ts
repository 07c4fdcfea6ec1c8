/**
 * How a script ended, and the command's exit code for it (see docs/cli.md, "Exit codes").
 */
import os from 'node:os';
import { PyWorkersError, PythonError, WorkerCrashedError } from '../errors.js';
import { bytes, duration } from './format.js';
import type { Outcome } from './report.js';

export const EXIT = {
  ok: 0,
  /** An uncaught exception, as `python` exits. */
  exception: 1,
  usage: 2,
  /** pyworkers itself failed (not the script). */
  internal: 70,
  /** --timeout, as GNU timeout(1). */
  timeout: 124,
  /** No usable Python interpreter. */
  noPython: 127,
  /** Ctrl-C, as a shell reports SIGINT. */
  interrupted: 130,
} as const;

/** What the runner returns. */
export interface RunnerResult {
  exitCode: number;
  exception: { type: string; module: string; message: string } | null;
  /** Memory as the script's code returned (before a failed frame's locals were freed). */
  memory?: { rss: number | null; traced: number | null; tracedPeak: number | null; tracemalloc?: number | null };
}

export interface OutcomeContext {
  maxMemory: number | null;
  /** The cap as the user typed it (`200MB`). */
  capLabel?: string | null;
  timeoutMs: number | null;
  aborted: boolean;
  peakRss: number | null;
}

const signalNumber = (name: string | null): number | undefined =>
  name ? (os.constants.signals as Record<string, number>)[name] : undefined;

function short(text: string, max = 200): string {
  const line = text.split('\n')[0]!.trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

function capText(c: OutcomeContext): string {
  const exact = bytes(c.maxMemory);
  return c.capLabel && c.capLabel.replace(/\s+/g, '') !== exact.replace(/\s+/g, '') ? `--max-memory ${c.capLabel} = ${exact}` : exact;
}

function memoryEnding(c: OutcomeContext, type: string, message: string): Outcome {
  const capped = c.maxMemory !== null;
  return {
    exitCode: EXIT.exception,
    ending: capped ? 'memory-cap' : 'out-of-memory',
    description: capped ? `hit the memory cap (${capText(c)}): ${type}` : `ran out of memory: ${type}${message ? `: ${short(message)}` : ''}`,
    exception: { type, message },
    signal: null,
  };
}

/** The outcome of a finished run: the runner's result, or the error the call ended with. */
export function outcomeOf(result: RunnerResult | undefined, error: unknown, c: OutcomeContext): Outcome {
  if (result) {
    const code = result.exitCode & 0xff;
    const ex = result.exception;
    if (ex && ex.type === 'MemoryError') return { ...memoryEnding(c, ex.type, ex.message), exitCode: code };
    if (ex) {
      return {
        exitCode: code,
        ending: 'exception',
        description: `raised ${ex.type}${ex.message ? `: ${short(ex.message)}` : ''}`,
        exception: { type: ex.type, message: ex.message },
        signal: null,
      };
    }
    return {
      exitCode: code,
      ending: code === 0 ? 'ok' : 'exit',
      description: `exited with status ${result.exitCode}`,
      exception: null,
      signal: null,
    };
  }
  const err = error as PyWorkersError & { code?: string };
  if (err?.code === 'ERR_TIMEOUT') {
    return { exitCode: EXIT.timeout, ending: 'timeout', description: `timed out after ${duration(c.timeoutMs ?? 0)} (--timeout)`, exception: null, signal: null };
  }
  if (err?.code === 'ERR_ABORTED' || (c.aborted && error instanceof PythonError && error.type === 'KeyboardInterrupt')) {
    return { exitCode: EXIT.interrupted, ending: 'interrupted', description: 'interrupted (Ctrl-C)', exception: null, signal: null };
  }
  if (error instanceof WorkerCrashedError) {
    if (error.signal) {
      const capped = c.maxMemory !== null && (c.peakRss === null || c.peakRss >= 0.75 * c.maxMemory);
      return {
        exitCode: 128 + (signalNumber(error.signal) ?? 9),
        ending: capped ? 'memory-cap' : 'killed',
        description: capped
          ? `the Python process was killed by ${error.signal} at the memory cap (${capText(c)})`
          : `the Python process was killed by ${error.signal}`,
        exception: null,
        signal: error.signal,
      };
    }
    // os._exit(n), or the interpreter giving up: the process's own status.
    const code = error.exitCode ?? EXIT.exception;
    return { exitCode: code & 0xff, ending: code === 0 ? 'ok' : 'exit', description: `the Python process exited with status ${code}`, exception: null, signal: null };
  }
  if (error instanceof PythonError) {
    if (error.type === 'MemoryError') return memoryEnding(c, error.type, error.pythonMessage);
    if (error.type === 'KeyboardInterrupt') {
      return { exitCode: EXIT.interrupted, ending: 'interrupted', description: 'raised KeyboardInterrupt', exception: { type: error.type, message: error.pythonMessage }, signal: null };
    }
    return {
      exitCode: EXIT.exception,
      ending: 'exception',
      description: `raised ${error.type}${error.pythonMessage ? `: ${short(error.pythonMessage)}` : ''}`,
      exception: { type: error.type, message: error.pythonMessage },
      signal: null,
    };
  }
  throw error;
}
