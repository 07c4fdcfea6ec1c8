/**
 * `pyworkers leaks module:function`: the library's leak finder (`pool.findLeaks`) from the command line: call a
 * function many times, and list the lines whose memory grows with every call.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createPool, type Pool } from '../pool/pool.js';
import type { PoolOptions } from '../options.js';
import type { LeakReport, LeakSite } from '../memory/leaks.js';
import { UsageError, parseArgs, type OptionSpec } from './args.js';
import { bytes, count, duration, site, table, truncate } from './format.js';
import { chartLegend, memoryChart } from './html/chart.js';
import { esc } from './html/escape.js';
import { page } from './html/page.js';
import { renderHelp, toolVersion, type Io } from './io.js';
import { EXIT } from './outcome.js';
import { paintFor } from './text-report.js';

export const LEAKS_OPTIONS: OptionSpec[] = [
  { name: 'iterations', short: 'n', kind: 'int', value: 'N', min: 2, help: 'calls to measure (default 50)' },
  { name: 'warmup', kind: 'int', value: 'N', min: 0, help: 'calls before measuring: caches and imports settle (default 5)' },
  { name: 'frames', kind: 'int', value: 'N', min: 1, help: 'frames per allocation traceback (default 5)' },
  { name: 'args', kind: 'string', value: 'JSON', help: 'the positional arguments of each call, as a JSON array' },
  { name: 'top', kind: 'int', value: 'N', min: 1, help: 'sites to list (default 10)' },
  { name: 'json', kind: 'string', value: 'FILE', help: "write the leak report as JSON ('-': to stdout, instead of the table)" },
  { name: 'report', kind: 'string', value: 'FILE.html', help: 'write a self-contained HTML report' },
  { name: 'check', kind: 'flag', help: 'exit with 1 when memory grows steadily (for CI)' },
  { name: 'max-memory', kind: 'size', value: 'SIZE', help: "cap the worker's memory, e.g. 512MB" },
  { name: 'timeout', kind: 'duration', value: 'TIME', help: 'give up after TIME: 30 (seconds), 30s, 2m' },
  { name: 'python', kind: 'string', value: 'PATH', help: 'the Python interpreter (default: $PYWORKERS_PYTHON, else python3)' },
  { name: 'help', short: 'h', kind: 'flag', help: 'show this help' },
];

export const LEAKS_HELP = `Usage: pyworkers leaks [options] module:function
       pyworkers leaks [options] path/to/file.py:function

Call a Python function again and again in a worker (after a few warm-up calls)
with tracemalloc on, and list the lines whose memory grows with every call:
what a leak looks like. The module is imported as Python would (from the
working directory, or from the file's folder).

Options:
{options}

Exit code: 0 (with --check: 1 when memory grows steadily); 1 when the function
raises; 2 for bad arguments.

Examples:
  pyworkers leaks app.py:handle_request --iterations 50
  pyworkers leaks mypkg.handlers:parse --args '["sample.json"]' --report leaks.html`;

interface Target {
  module: string;
  fn: string;
  /** A folder to put first on sys.path, for a file target. */
  folder: string | undefined;
  label: string;
}

export function parseTarget(raw: string): Target {
  const at = raw.lastIndexOf(':');
  if (at <= 0 || at === raw.length - 1) throw new UsageError(`the target must look like module:function or file.py:function, got '${raw}'`, 'leaks');
  const where = raw.slice(0, at);
  const fn = raw.slice(at + 1);
  if (!/^[A-Za-z_][\w.]*$/.test(fn)) throw new UsageError(`'${fn}' is not a Python function name`, 'leaks');
  if (where.endsWith('.py') || where.includes('/') || where.includes(path.sep)) {
    const file = path.resolve(where);
    return { module: path.basename(file).replace(/\.py$/, ''), fn, folder: path.dirname(file), label: raw };
  }
  if (!/^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$/.test(where)) throw new UsageError(`'${where}' is not a Python module name`, 'leaks');
  return { module: where, fn, folder: undefined, label: raw };
}

/** Whether the report shows a leak: a site whose memory grew steadily with the calls. */
export function isLeaking(r: LeakReport): boolean {
  return r.leaks.length > 0;
}

export async function leaksCommand(argv: string[], io: Io): Promise<number> {
  const { options, positionals } = parseArgs(argv, LEAKS_OPTIONS, { kind: 'fixed', max: 1 }, 'leaks');
  if (options.get('help')) {
    io.stdout.write(`${renderHelp(LEAKS_HELP, LEAKS_OPTIONS)}\n`);
    return EXIT.ok;
  }
  if (!positionals[0]) throw new UsageError('missing the function to test: pyworkers leaks module:function', 'leaks');
  const target = parseTarget(positionals[0]);
  let args: unknown[] = [];
  if (options.has('args')) {
    try {
      args = JSON.parse(options.get('args') as string) as unknown[];
    } catch {
      throw new UsageError("option '--args' must be a JSON array, e.g. '[1, \"a\"]'", 'leaks');
    }
    if (!Array.isArray(args)) throw new UsageError("option '--args' must be a JSON array, e.g. '[1, \"a\"]'", 'leaks');
  }
  const settings = {
    iterations: (options.get('iterations') as number | undefined) ?? 50,
    warmup: (options.get('warmup') as number | undefined) ?? 5,
    frames: (options.get('frames') as number | undefined) ?? 5,
  };
  const top = (options.get('top') as number | undefined) ?? 10;
  const poolOptions: PoolOptions & { maxMemory?: number } = { workers: 1, forwardOutput: false, cwd: process.cwd() };
  if (target.folder) poolOptions.pythonPath = [target.folder];
  if (options.has('python')) poolOptions.python = options.get('python') as string;
  if (options.has('max-memory')) poolOptions.maxMemory = options.get('max-memory') as number;
  const pool = await createPool(poolOptions);
  pool.on('stdout', (e) => io.stderr.write(e.text));
  pool.on('stderr', (e) => io.stderr.write(e.text));
  try {
    let report: LeakReport;
    try {
      const why = (await pool.call('_pyworkers.leaks', 'check_target', [target.module, target.fn])) as string | null;
      if (why) throw new UsageError(`cannot test '${target.label}': ${why}`, 'leaks');
      report = await pool.findLeaks({ module: target.module, fn: target.fn, args }, { ...settings, limit: top, timeout: options.get('timeout') as number | undefined });
    } catch (error) {
      const e = error as { code?: string; traceback?: string; message: string };
      if (e.code === 'ERR_PYTHON') {
        io.stderr.write(e.traceback || `${e.message}\n`);
        return EXIT.exception;
      }
      if (e.code === 'ERR_TIMEOUT') {
        io.stderr.write(`pyworkers: the leak search timed out (--timeout)\n`);
        return EXIT.timeout;
      }
      throw error;
    }
    const code = await describeSites(pool, report.sites.slice(0, top));
    const json = options.get('json') as string | undefined;
    if (json) {
      const text = `${JSON.stringify({ tool: { name: 'pyworkers', version: toolVersion() }, command: 'leaks', target: target.label, ...report }, null, 2)}\n`;
      if (json === '-') io.stdout.write(text);
      else await writeFile(json, text);
    }
    const html = options.get('report') as string | undefined;
    if (html) await writeFile(html, leaksHtml(target.label, report, code, top));
    if (json !== '-') io.stdout.write(leaksText(target.label, report, code, top, paintFor(io.stdout)));
    return options.get('check') && isLeaking(report) ? EXIT.exception : EXIT.ok;
  } finally {
    await pool.destroy();
  }
}

/** Source lines and function names of the sites: [function, code] each. */
async function describeSites(pool: Pool, sites: LeakSite[]): Promise<Array<[string | null, string]>> {
  try {
    return await pool.call('_pyworkers.runner', 'describe', [sites.map((s) => [s.file, s.line])]);
  } catch {
    return sites.map(() => [null, '']);
  }
}

/** The headline: only steady growth counts (one-off steps and plateaus are not what a call leaks). */
function verdict(r: LeakReport): string {
  if (!isLeaking(r)) return r.plateaus.length ? 'no steady growth found (what grew then stopped is listed as a plateau)' : 'no steady growth found';
  const perCall = r.leaks.reduce((sum, s) => sum + s.bytesPerIteration, 0);
  return `memory grows steadily by about ${bytes(perCall)} per call`;
}

const SHAPE_LABEL = { steady: 'steady', plateau: 'grew, then plateaued', 'one-off': 'one-off' } as const;

export function leaksText(label: string, r: LeakReport, code: Array<[string | null, string]>, top: number, p = paintFor({})): string {
  const out: string[] = [''];
  const head = `── pyworkers leaks: ${label} `;
  out.push(p.bold(head + '─'.repeat(Math.max(3, 78 - head.length))));
  out.push(
    table(
      [
        ['verdict', isLeaking(r) ? p.bad(verdict(r)) : p.good(verdict(r))],
        ['calls', `${r.iterations} measured after ${r.warmup} warm-up`],
        ['traced growth', `${bytes(r.tracedGrowthPerIteration)} per call`],
        ['RSS growth', `${bytes(r.rssGrowthPerIteration)} per call (trend, tracemalloc's own memory left out)`],
        ['duration', duration(r.durationMs)],
      ],
      ['left', 'left'],
    ),
  );
  out.push('');
  const sites = r.sites.slice(0, top);
  if (sites.length === 0) out.push(p.dim('  no line kept memory from one call to the next'));
  else {
    const rows = [['#', 'per call', 'blocks/call', 'total', 'growth', 'site', 'code'].map((h) => p.dim(h))];
    sites.forEach((s, i) => {
      const [fn, text] = code[i] ?? [null, ''];
      rows.push([
        String(i + 1),
        bytes(s.bytesPerIteration),
        count(s.countPerIteration),
        bytes(s.totalGrowth),
        s.steady ? p.bad(SHAPE_LABEL[s.shape]) : SHAPE_LABEL[s.shape] ?? s.shape,
        `${site(s.file, s.line)}${fn && fn !== '<module>' ? ` ${fn}()` : ''}`,
        truncate(text, 50),
      ]);
      // beneath the user's line: what keeps it alive, the library line that allocated, the other call paths
      const notes: string[] = [];
      if (s.keptAliveBy) notes.push(`kept alive by ${s.keptAliveBy}`);
      if (s.library) notes.push(`allocated in ${site(s.library.file, s.library.line)}`);
      if (s.paths.length > 1) {
        for (const path of s.paths) notes.push(`via ${path.frames.map((f) => site(f.file, f.line)).join(' → ')}: ${bytes(path.bytesPerIteration)}/call`);
      }
      for (const note of notes) rows.push(['', '', '', '', '', p.dim(`  ↳ ${note}`), '']);
    });
    out.push(table(rows, ['right', 'right', 'right', 'right', 'left', 'left', 'left']));
  }
  out.push('');
  return out.join('\n');
}

function siteNotesHtml(s: LeakSite): string {
  const notes: string[] = [];
  if (s.keptAliveBy) notes.push(`kept alive by <code>${esc(s.keptAliveBy)}</code>`);
  if (s.library) notes.push(`allocated in <code>${esc(site(s.library.file, s.library.line))}</code>`);
  if (s.paths.length > 1) for (const path of s.paths) notes.push(`via <code>${esc(path.frames.map((f) => site(f.file, f.line)).join(' → '))}</code>: ${esc(bytes(path.bytesPerIteration))}/call`);
  return notes.length ? `<tr class="notes"><td></td><td colspan="6">${notes.map((n) => `<div class="fn">↳ ${n}</div>`).join('')}</td></tr>` : '';
}

export function leaksHtml(label: string, r: LeakReport, code: Array<[string | null, string]>, top: number): string {
  const timeline = r.rssPerIteration.map((rss, i) => ({ t: i + 1, rss, traced: null, tracedPeak: null, gc: 0 }));
  const peak = Math.max(0, ...r.rssPerIteration) || null;
  const input = { timeline, wallTimeMs: Math.max(1, r.rssPerIteration.length), peakRss: peak, tracedPeak: null, cap: null, xAxis: { title: 'call', per: 1, unit: '' }, rssOnly: true };
  const leaking = isLeaking(r);
  const rows = r.sites.slice(0, top).map((s, i) => {
    const [fn, text] = code[i] ?? [null, ''];
    return `<tr><td class="num">${i + 1}</td><td class="site"><code>${esc(site(s.file, s.line))}</code>${fn ? `<div class="fn">${esc(fn)}</div>` : ''}</td>
<td class="code">${text ? `<code>${esc(text)}</code>` : ''}</td><td class="num">${esc(bytes(s.bytesPerIteration))}</td><td class="num">${esc(count(s.countPerIteration))}</td>
<td class="num">${esc(bytes(s.totalGrowth))}</td><td>${s.steady ? '<span class="badge fail">steady</span>' : esc(SHAPE_LABEL[s.shape] ?? s.shape)}</td></tr>${siteNotesHtml(s)}`;
  });
  const body = `<header><h1>Leak search: <code>${esc(label)}</code> <span class="badge ${leaking ? 'fail' : 'ok'}">${leaking ? 'leaking' : 'no leak found'}</span></h1>
<div class="sub">pyworkers leaks · ${r.iterations} calls after ${r.warmup} warm-up · ${esc(duration(r.durationMs))}</div></header>
<div class="cards" id="summary">
<div class="card ${leaking ? 'fail' : 'ok'}"><div class="k">Verdict</div><div class="v">${leaking ? 'Leaking' : 'Clean'}</div><div class="d">${esc(verdict(r))}</div></div>
<div class="card"><div class="k">Traced growth</div><div class="v">${esc(bytes(r.tracedGrowthPerIteration))}</div><div class="d">per call</div></div>
<div class="card"><div class="k">RSS growth</div><div class="v">${esc(bytes(r.rssGrowthPerIteration))}</div><div class="d">per call</div></div>
<div class="card"><div class="k">Calls</div><div class="v">${r.iterations}</div><div class="d">after ${r.warmup} warm-up</div></div>
</div>
<section id="memory"><h2>RSS after each call</h2><p class="lead">Resident memory of the worker, read after every measured call.</p>
${chartLegend(input)}<div class="chart-wrap">${memoryChart(input)}</div></section>
<section id="top"><h2>Lines whose memory grows</h2><p class="lead">Growth per call, by your line that allocated it (library frames folded beneath it); "steady" sites grew on to the last call at a similar rate, with what keeps their objects alive.</p>
${rows.length ? `<table id="top-table"><thead><tr><th class="num">#</th><th>Site</th><th>Code</th><th class="num">Per call</th><th class="num">Blocks/call</th><th class="num">Total</th><th></th></tr></thead><tbody>${rows.join('\n')}</tbody></table>` : '<p class="empty">No line kept memory from one call to the next.</p>'}
</section>
<footer>Generated by pyworkers ${esc(toolVersion())}. This file is self-contained: it loads nothing from the network.</footer>`;
  return page(`pyworkers leaks: ${label}`, body, { timeline, xLabel: 'call' });
}
