/**
 * `pyworkers eval 'code'`: evaluate Python in a worker and print the result, as Python's repr() (or as JSON).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createPool } from '../pool/pool.js';
import type { PoolOptions } from '../options.js';
import { PythonError } from '../errors.js';
import { UsageError, parseArgs, type OptionSpec } from './args.js';
import { EXIT, outcomeOf } from './outcome.js';
import { Passthrough } from './passthrough.js';
import { renderHelp, type Io } from './io.js';
import { within } from './time.js';

export const EVAL_OPTIONS: OptionSpec[] = [
  { name: 'json', kind: 'flag', help: 'print the value as JSON, converted as pyworkers converts results' },
  { name: 'timeout', kind: 'duration', value: 'TIME', help: 'stop after TIME: 30 (seconds), 30s, 500ms, 2m' },
  { name: 'max-memory', kind: 'size', value: 'SIZE', help: "cap the worker's memory, e.g. 512MB" },
  { name: 'python', kind: 'string', value: 'PATH', help: 'the Python interpreter (default: $PYWORKERS_PYTHON, else python3)' },
  { name: 'help', short: 'h', kind: 'flag', help: 'show this help' },
];

export const EVAL_HELP = `Usage: pyworkers eval [options] 'code'

Evaluate Python in a pyworkers worker and print the result as repr() shows it,
as the Python prompt does. The code may hold statements; the value of its last
line is printed when that line is an expression. '-' reads the code from stdin.
What the code prints passes through.

Options:
{options}

Exit code: 0; 1 when the code raises (the traceback goes to stderr).

Examples:
  pyworkers eval '2 ** 100'
  pyworkers eval 'import sys; sys.version_info[:3]'
  pyworkers eval --json '{"squares": [i * i for i in range(5)]}'`;

/** JSON for what the library hands back (BigInt, Buffer, Map, Set, Date included). */
export function toJson(value: unknown): string {
  return JSON.stringify(
    value,
    function (this: unknown, key: string, v: unknown) {
      const raw = (this as Record<string, unknown>)[key];
      if (typeof raw === 'bigint') return Number.isSafeInteger(Number(raw)) ? Number(raw) : raw.toString();
      if (raw instanceof Uint8Array) return Buffer.from(raw).toString('base64');
      if (raw instanceof Map) return Object.fromEntries(raw);
      if (raw instanceof Set) return [...raw];
      if (typeof raw === 'number' && !Number.isFinite(raw)) return String(raw);
      return v;
    },
    2,
  );
}

export async function evalCommand(argv: string[], io: Io): Promise<number> {
  const { options, positionals } = parseArgs(argv, EVAL_OPTIONS, { kind: 'fixed', max: 1 }, 'eval');
  if (options.get('help')) {
    io.stdout.write(`${renderHelp(EVAL_HELP, EVAL_OPTIONS)}\n`);
    return EXIT.ok;
  }
  let code = positionals[0];
  if (code === undefined) throw new UsageError("missing the code to evaluate: pyworkers eval 'expression'", 'eval');
  if (code === '-') code = readFileSync(0, 'utf8');
  const poolOptions: PoolOptions & { maxMemory?: number } = { workers: 1, forwardOutput: false };
  if (options.has('python')) poolOptions.python = options.get('python') as string;
  if (options.has('max-memory')) poolOptions.maxMemory = options.get('max-memory') as number;
  const pool = await createPool(poolOptions);
  const marker = `\u0000pyworkers-end-${randomUUID()}\u0000`;
  const out = new Passthrough(io.stdout, marker);
  const err = new Passthrough(io.stderr, marker);
  pool.on('stdout', (e) => out.push(e.text));
  pool.on('stderr', (e) => err.push(e.text));
  const asJson = Boolean(options.get('json'));
  const timeout = (options.get('timeout') as number | undefined) ?? 0;
  try {
    let value: unknown;
    let failure: unknown;
    try {
      value = await pool.call('_pyworkers.runner', 'evaluate', [code, marker, !asJson], { timeout });
    } catch (error) {
      failure = error;
    }
    await within(Promise.all([out.drained, err.drained]), 1000);
    out.end();
    err.end();
    if (failure === undefined) {
      if (asJson) io.stdout.write(`${toJson(value) ?? 'null'}\n`);
      else if (value !== null && value !== undefined) io.stdout.write(`${String(value)}\n`);
      return EXIT.ok;
    }
    if (failure instanceof PythonError) {
      io.stderr.write(failure.traceback || `${failure.message}\n`);
      return failure.type === 'KeyboardInterrupt' ? EXIT.interrupted : EXIT.exception;
    }
    const outcome = outcomeOf(undefined, failure, {
      maxMemory: (options.get('max-memory') as number | undefined) ?? null,
      timeoutMs: timeout || null,
      aborted: false,
      peakRss: null,
    });
    io.stderr.write(`pyworkers: ${outcome.description}\n`);
    return outcome.exitCode;
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_CONVERSION') {
      io.stderr.write(`pyworkers: ${(error as Error).message}; print it without --json to see its repr()\n`);
      return EXIT.exception;
    }
    throw error;
  } finally {
    await pool.destroy();
  }
}
