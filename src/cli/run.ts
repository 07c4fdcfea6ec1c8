/**
 * `pyworkers run script.py [args...]`: run a script as `__main__` in a worker under watch, then report.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Context } from '../pool/context.js';
import { createPool, type Pool } from '../pool/pool.js';
import type { PoolOptions } from '../options.js';
import { UsageError, parseArgs, type OptionSpec } from './args.js';
import { CtrlC, killProcessGroup } from './ctrl-c.js';
import { hintsFor } from './hints.js';
import { htmlReport } from './html/page.js';
import { EXIT, outcomeOf, type RunnerResult } from './outcome.js';
import { Passthrough } from './passthrough.js';
import { Probe } from './probe.js';
import { REPORT_SCHEMA, peakOf, type RunReport, type SiteRow, type StackRow } from './report.js';
import { StatusLine, type StatusMode } from './status.js';
import { paintFor, textReport } from './text-report.js';
import { within } from './time.js';
import { Watcher } from './watch.js';
import { renderHelp, toolVersion, type Io } from './io.js';

export const RUN_OPTIONS: OptionSpec[] = [
  { name: 'top', kind: 'int', value: 'N', min: 1, help: 'allocation sites to list (default 10)' },
  { name: 'mode', kind: 'string', value: 'MODE', help: "'sample' (default: allocations traced in short windows, under 3x slower) or 'full' (every allocation traced, 10-20x slower on allocation-heavy code)" },
  { name: 'frames', kind: 'int', value: 'N', min: 1, help: 'frames per allocation traceback (default 3; more costs more time)' },
  { name: 'no-trace', kind: 'flag', help: 'do not trace allocations: measure RSS only (no slowdown)' },
  { name: 'json', kind: 'string', value: 'FILE', help: "write the report as JSON ('-': to stdout, instead of the text)" },
  { name: 'report', kind: 'string', value: 'FILE.html', help: 'write a self-contained HTML report (chart, table, flame graph)' },
  { name: 'max-memory', kind: 'size', value: 'SIZE', help: 'cap the worker\'s memory, e.g. 512MB or 1GiB (MemoryError beyond it)' },
  { name: 'timeout', kind: 'duration', value: 'TIME', help: 'stop the script after TIME: 30 (seconds), 30s, 500ms, 2m' },
  { name: 'interval', kind: 'int', value: 'MS', min: 20, help: 'how often to read memory, in ms (default 250)' },
  { name: 'python', kind: 'string', value: 'PATH', help: 'the Python interpreter (default: $PYWORKERS_PYTHON, else python3)' },
  { name: 'quiet', short: 'q', kind: 'flag', help: 'no status line while the script runs' },
  { name: 'help', short: 'h', kind: 'flag', help: 'show this help' },
];

export const RUN_HELP = `Usage: pyworkers run [options] script.py [script args...]

Run a Python script as __main__ in a pyworkers worker and watch its memory. Its
output passes through unchanged; a status line shows elapsed time, RSS, traced
memory and gc collections while it runs. At the end, a report on stdout: exit
status, wall time, peak RSS, the lines whose memory grew (or, with --mode full,
the top allocation sites) with what keeps it alive, the garbage collector, and
hints. By default allocations are traced in short windows (--mode sample): the
script runs under 3x as slow on allocation-heavy code; --mode full traces every
allocation (8-20x).

Options may also follow the script; after it, options pyworkers does not know,
and everything after '--', go to the script.

Options:
{options}

The exit code is the script's (1 for an uncaught exception); 124 after
--timeout, 128+N when the Python process is killed by signal N, 130 on Ctrl-C,
2 for bad arguments. Ctrl-C interrupts the script; a second Ctrl-C ends a script
that ignores it. The report is written either way.

Examples:
  pyworkers run app.py --top 5 --report report.html
  pyworkers run --max-memory 256MB --timeout 60 etl.py -- --input data.csv`;

const STACK_LIMIT = 300;
const GARBAGE_LIMIT = 500;
const DRAIN_MS = 2000;

interface RunSettings {
  commandArgs: string[];
  script: string;
  scriptPath: string;
  args: string[];
  top: number;
  frames: number;
  tracing: boolean;
  /** 'sample': tracing windows; 'full': tracemalloc for the whole run; 'off': --no-trace. */
  mode: 'sample' | 'full' | 'off';
  json: string | undefined;
  report: string | undefined;
  maxMemory: number | null;
  /** --max-memory as typed. */
  maxMemoryText: string | null;
  timeoutMs: number | null;
  intervalMs: number;
  python: string | undefined;
  quiet: boolean;
}

function settingsFrom(argv: string[]): RunSettings | 'help' {
  const { options, positionals, rest } = parseArgs(argv, RUN_OPTIONS, { kind: 'script' }, 'run');
  if (options.get('help')) return 'help';
  const script = positionals[0];
  if (!script) throw new UsageError('missing the script to run: pyworkers run script.py [args...]', 'run');
  const scriptPath = path.resolve(script);
  if (!existsSync(scriptPath)) throw new UsageError(`can't open file '${script}': no such file`, 'run');
  const kind = statSync(scriptPath);
  if (kind.isDirectory()) throw new UsageError(`can't run '${script}': it is a directory, not a Python file`, 'run');
  if (!kind.isFile()) throw new UsageError(`can't open file '${script}': not a regular file`, 'run');
  const tracing = !options.get('no-trace');
  if (!tracing && options.has('frames')) throw new UsageError("options '--frames' and '--no-trace' contradict each other", 'run');
  const modeText = options.get('mode') as string | undefined;
  if (modeText !== undefined && modeText !== 'sample' && modeText !== 'full') throw new UsageError(`option '--mode' must be 'sample' or 'full', got '${modeText}'`, 'run');
  if (!tracing && modeText !== undefined) throw new UsageError("options '--mode' and '--no-trace' contradict each other", 'run');
  const mode = !tracing ? 'off' : (modeText as 'sample' | 'full' | undefined) ?? 'sample';
  for (const key of ['json', 'report'] as const) {
    const file = options.get(key) as string | undefined;
    if (file && file !== '-' && !existsSync(path.dirname(path.resolve(file)))) {
      throw new UsageError(`option '--${key}': folder '${path.dirname(file)}' does not exist`, 'run');
    }
  }
  if (options.get('report') === '-') throw new UsageError("option '--report' needs a file name", 'run');
  return {
    commandArgs: argv,
    script,
    scriptPath,
    args: rest,
    top: (options.get('top') as number | undefined) ?? 10,
    frames: (options.get('frames') as number | undefined) ?? 3,
    tracing,
    mode,
    json: options.get('json') as string | undefined,
    report: options.get('report') as string | undefined,
    maxMemory: (options.get('max-memory') as number | undefined) ?? null,
    maxMemoryText: rawOption(argv, 'max-memory'),
    timeoutMs: (options.get('timeout') as number | undefined) ?? null,
    intervalMs: (options.get('interval') as number | undefined) ?? 250,
    python: options.get('python') as string | undefined,
    quiet: Boolean(options.get('quiet')),
  };
}

/** The value of `--name` as typed (the last one), for messages. */
function rawOption(argv: string[], name: string): string | null {
  let found: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--') break;
    if (argv[i] === `--${name}`) found = argv[i + 1] ?? null;
    else if (argv[i]!.startsWith(`--${name}=`)) found = argv[i]!.slice(name.length + 3);
  }
  return found;
}

export async function runCommand(argv: string[], io: Io): Promise<number> {
  const s = settingsFrom(argv);
  if (s === 'help') {
    io.stdout.write(`${renderHelp(RUN_HELP, RUN_OPTIONS)}\n`);
    return EXIT.ok;
  }
  const notes: string[] = [];
  const ctrlC = new CtrlC();
  try {
    const pool = await startPool(s);
    try {
      return await watchScript(pool, s, io, notes, ctrlC);
    } finally {
      await pool.destroy();
    }
  } finally {
    ctrlC.dispose();
  }
}

function startPool(s: RunSettings): Promise<Pool> {
  const options: PoolOptions = { workers: 1, forwardOutput: false, startTimeout: 60_000 };
  if (s.python) options.python = s.python;
  if (s.maxMemory !== null) options.maxMemory = s.maxMemory;
  return createPool(options);
}

async function watchScript(pool: Pool, s: RunSettings, io: Io, notes: string[], ctrlC: CtrlC): Promise<number> {
  const ctx = pool.context();
  const probe = new Probe(ctx);
  const pid = pool.stats().perWorker[0]?.pid;
  const marker = `\u0000pyworkers-end-${randomUUID()}\u0000`;

  const mode: StatusMode = s.quiet ? 'off' : io.stderr.isTTY ? 'tty' : 'plain';
  const watcher = new Watcher(probe, pid, s.intervalMs);
  const status = new StatusLine(io.stderr, mode, () =>
    watcher.latest
      ? {
          elapsedMs: watcher.elapsed(),
          rss: watcher.timeline[watcher.timeline.length - 1]?.rss ?? watcher.latest.rss,
          traced: watcher.latest.traced,
          tracedPeak: watcher.latest.tracedPeak,
          collections: watcher.collections(),
        }
      : undefined,
  );
  // With the JSON report on stdout, the script's own stdout goes to stderr: stdout stays one JSON document.
  const out = new Passthrough(s.json === '-' ? io.stderr : io.stdout, marker, () => status.clear(), (t) => status.wrote(t));
  const err = new Passthrough(io.stderr, marker, () => status.clear(), (t) => status.wrote(t));
  pool.on('stdout', (e) => out.push(e.text));
  pool.on('stderr', (e) => err.push(e.text));

  // Import the runner (and what it needs) before tracing starts: its imports are not the script's memory.
  await ctx.call('_pyworkers.runner', 'prepare', []);
  if (s.mode === 'full') {
    try {
      await probe.traceStart(s.frames);
    } catch (error) {
      notes.push(`tracemalloc could not start: ${(error as Error).message}`);
    }
  }
  await watcher.prepare();

  // Ctrl-C: the first interrupts the script, the second ends its process, a third leaves without a report.
  ctrlC.arm(
    () => killProcessGroup(pid),
    () => {
      status.stop();
      io.stderr.write(`\npyworkers: ${s.script} interrupted again: no report\n`);
      killProcessGroup(pid);
      process.exit(EXIT.interrupted);
    },
  );
  const startedAt = new Date();
  const t0 = performance.now();
  watcher.start();
  status.start();
  let result: RunnerResult | undefined;
  let failure: unknown;
  try {
    result = await ctx.call<RunnerResult>('_pyworkers.runner', 'run_script', [s.scriptPath, s.script, s.args, marker, path.dirname(s.scriptPath), s.mode === 'sample' ? s.frames : null], {
      timeout: s.timeoutMs ?? 0,
      signal: ctrlC.signal,
    });
  } catch (error) {
    failure = error;
  }
  // An interrupted call settles at once; the script ends when Python gives up (or its process is ended). The
  // status line keeps going meanwhile, and the wall time and readings run until then.
  if (ctrlC.signal.aborted) await untilIdle(ctx);
  const wallTimeMs = performance.now() - t0;
  const dbg = (what: string) => process.env.PYWORKERS_TIMING && process.stderr.write(`[timing] ${what} ${Math.round(performance.now() - t0)}\n`);
  dbg('call done');

  const alive = () => pool.stats().perWorker.some((w) => w.pid === pid && w.state === 'ready');
  if (result?.memory) {
    const m = result.memory;
    await watcher.stop(false);
    watcher.add({ t: wallTimeMs, rss: m.rss, traced: s.mode === 'full' ? m.traced : null, tracedPeak: s.mode === 'full' ? m.tracedPeak : null, gc: watcher.gcTotal() });
  }
  await watcher.stop(alive());
  if (!alive() || !(await within(Promise.all([out.drained, err.drained]), DRAIN_MS))) {
    out.end();
    err.end();
  }
  status.stop();
  dbg('drained');
  if (watcher.failure) notes.push(`memory readings failed: ${watcher.failure.message}`);

  const timeline = watcher.timeline;
  const last = watcher.latest;
  const rssPeak = peakOf(timeline, 'rss');
  const peakRss = Math.max(last?.peakRss ?? 0, rssPeak.value ?? 0) || null;
  const outcome = outcomeOf(result, failure, { maxMemory: s.maxMemory, capLabel: s.maxMemoryText, timeoutMs: s.timeoutMs, aborted: ctrlC.signal.aborted, peakRss });
  if (failure && outcome.ending === 'exception' && (failure as { traceback?: string }).traceback) {
    io.stderr.write((failure as { traceback: string }).traceback);
  }
  if (['timeout', 'killed', 'interrupted'].includes(outcome.ending) || (failure && outcome.ending === 'memory-cap')) {
    io.stderr.write(`pyworkers: ${s.script} ${outcome.description}\n`);
  }

  const details = alive() ? await collectDetails(probe, s, notes) : emptyDetails();
  dbg('details');
  if (!alive()) notes.push('the Python process had ended: no allocation sites or gc details');

  const gens = last && watcher.base ? last.collections.map((_, i) => ({
    collections: last.collections[i]! - (watcher.base!.collections[i] ?? 0),
    collected: last.collected[i]! - (watcher.base!.collected[i] ?? 0),
    uncollectable: last.uncollectable[i]! - (watcher.base!.uncollectable[i] ?? 0),
  })) : [];
  const facts: Omit<RunReport, 'hints'> = {
    schema: REPORT_SCHEMA,
    tool: { name: 'pyworkers', version: toolVersion() },
    command: 'run',
    commandLine: ['pyworkers', 'run', ...s.commandArgs],
    script: s.script,
    argv: [s.script, ...s.args],
    cwd: process.cwd(),
    python: { version: pool.version(), executable: pool.executable },
    startedAt: startedAt.toISOString(),
    wallTimeMs,
    outcome,
    settings: { tracing: s.tracing, mode: s.mode, frames: s.tracing ? s.frames : null, maxMemory: s.maxMemory, timeoutMs: s.timeoutMs, intervalMs: s.intervalMs },
    sampling: details.sampling,
    memory: {
      peakRss,
      peakRssAt: rssPeak.at,
      finalRss: last?.rss ?? null,
      tracedPeak: s.mode === 'full' ? last?.tracedPeak ?? null : null,
      tracedFinal: s.mode === 'full' ? details.snapshot?.totalSize ?? last?.traced ?? null : null,
      maxMemory: s.maxMemory ?? last?.memoryLimit ?? null,
      tracemallocOverhead: s.mode === 'full' ? result?.memory?.tracemalloc ?? null : null,
    },
    timeline,
    top: details.top,
    snapshot: details.snapshot,
    stacks: details.stacks,
    gc: {
      enabled: last?.gcEnabled ?? null,
      threshold: last?.gcThreshold ?? [],
      generations: gens,
      garbage: details.garbage,
    },
    notes,
  };
  const report: RunReport = { ...facts, hints: hintsFor(facts) };

  if (s.json) {
    const json = `${JSON.stringify(report, null, 2)}\n`;
    if (s.json === '-') io.stdout.write(json);
    else await writeFile(s.json, json);
  }
  if (s.report) await writeFile(s.report, htmlReport(report));
  if (s.json !== '-') {
    io.stdout.write(textReport(report, paintFor(io.stdout), io.stdout.columns ?? 100));
    const written = [s.report && `HTML report: ${s.report}`, s.json && `JSON report: ${s.json}`].filter(Boolean);
    if (written.length) io.stdout.write(`  ${written.join('   ')}\n\n`);
  }
  return outcome.exitCode;
}

/** Resolves when the context's worker has finished what it was running (or has died). */
async function untilIdle(ctx: Context): Promise<void> {
  try {
    await ctx.call('_pyworkers.runner', 'prepare', []);
  } catch {
    // the worker died: it is idle too
  }
}

interface Details {
  top: SiteRow[];
  snapshot: { totalSize: number; totalCount: number } | null;
  stacks: StackRow[];
  garbage: RunReport['gc']['garbage'];
  sampling: RunReport['sampling'];
}

function emptyDetails(): Details {
  return { top: [], snapshot: null, stacks: [], garbage: { count: 0, types: [], objects: [] }, sampling: null };
}

type SiteTuple = [string, number, number, number, string | null, string, [string, number, string | null] | null, string | null];

function siteRow([file, line, size, count, fn, code, lib, chain]: SiteTuple): SiteRow {
  return { file, line, size, count, function: fn, code, library: lib ? { file: lib[0], line: lib[1], function: lib[2] } : null, keptAliveBy: chain ?? null };
}

interface FinalSites {
  top: SiteTuple[];
  totalSize: number;
  totalCount: number;
  stacks: Array<{ frames: Array<[string, number, string | null]>; size: number; count: number; truncated: boolean }>;
}

/** After the script: the allocation sites still held (with their source lines), their tracebacks, gc.garbage. */
async function collectDetails(probe: Probe, s: RunSettings, notes: string[]): Promise<Details> {
  const details = emptyDetails();
  const runner = (fn: string, args: unknown[]) => probe.context.call('_pyworkers.runner', fn, args);
  // After MemoryError the script still holds what it allocated: give the analysis room.
  if (s.maxMemory !== null) await runner('lift_memory_cap', []).catch(() => {});
  if (s.mode === 'sample') {
    try {
      const found = (await runner('sampled_sites', [s.top])) as { top: SiteTuple[]; windows: number; tracedSeconds: number; failure: string | null } | null;
      if (found) {
        details.top = found.top.map(siteRow);
        details.sampling = { windows: found.windows, tracedSeconds: found.tracedSeconds };
        if (found.failure) notes.push(`sampling: ${found.failure}`);
      }
    } catch (error) {
      notes.push(`the sampled sites could not be read: ${(error as Error).message}`);
    }
  }
  if (s.mode === 'full') {
    try {
      const found = (await runner('final_sites', [s.top, STACK_LIMIT])) as FinalSites | null;
      if (found) {
        details.top = found.top.map(siteRow);
        details.snapshot = { totalSize: found.totalSize, totalCount: found.totalCount };
        details.stacks = found.stacks.map((st) => ({
          stack: st.frames.map(([file, line, fn]) => ({ file, line, function: fn })),
          size: st.size,
          count: st.count,
          truncated: st.truncated,
        }));
      } else notes.push('tracemalloc was not tracing at the end (the script stopped it?): no allocation sites');
    } catch (error) {
      notes.push(`the final snapshot failed: ${(error as Error).message}`);
      await probe.traceStop().catch(() => {});
    }
  }
  try {
    const g = await probe.garbage(GARBAGE_LIMIT);
    const types = new Map<string, number>();
    for (const o of g.objects) types.set(o.type, (types.get(o.type) ?? 0) + 1);
    const often = (type: string) => types.get(type) ?? 0;
    details.garbage = {
      count: g.count,
      types: [...types].sort((a, b) => b[1] - a[1]).map(([type, count]) => ({ type, count })),
      // The most common types first: those are what the script left behind.
      objects: [...g.objects].sort((a, b) => often(b.type) - often(a.type)).slice(0, 20),
    };
    if (g.count > g.objects.length) notes.push(`gc.garbage: types counted among its first ${g.objects.length} objects`);
  } catch (error) {
    notes.push(`gc.garbage could not be read: ${(error as Error).message}`);
  }
  return details;
}
