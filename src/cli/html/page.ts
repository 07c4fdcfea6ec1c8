/**
 * The self-contained HTML report of `pyworkers run`: one file with its styles, SVG and script inlined, so it
 * opens offline and can be mailed or attached to a ticket.
 */
import { bytes, count, displayPath, duration, percent } from '../format.js';
import type { RunReport } from '../report.js';
import { thin } from '../report.js';
import { chartLegend, memoryChart } from './chart.js';
import { esc, scriptJson } from './escape.js';
import { flameGraph } from './flame.js';
import { SCRIPT } from './script.js';
import { STYLE } from './style.js';

const MAX_POINTS = 1200;

/** An argument as a shell would need it typed. */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function tone(r: RunReport): 'ok' | 'warn' | 'fail' {
  return r.outcome.ending === 'ok' ? 'ok' : r.outcome.ending === 'exit' ? 'warn' : 'fail';
}

/** A whole HTML document. */
export function page(title: string, body: string, data: unknown): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="pyworkers">
<title>${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
</main>
<div id="chart-tip"></div>
<script type="application/json" id="report-data">${scriptJson(data)}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

function card(key: string, value: string, detail = '', cls = ''): string {
  return `<div class="card ${cls}"><div class="k">${esc(key)}</div><div class="v">${value}</div>${detail ? `<div class="d">${detail}</div>` : ''}</div>`;
}

function topTable(r: RunReport): string {
  if (!r.settings.tracing) return '<p class="empty">Not traced: the script ran with --no-trace.</p>';
  if (r.top.length === 0) return r.settings.mode === 'sample' ? '<p class="empty">Nothing grew in the tracing windows.</p>' : '<p class="empty">Nothing the script allocated was still held when it ended.</p>';
  const total = r.snapshot?.totalSize ?? 0;
  const rows = r.top.map((s, i) => {
    const share = total ? (100 * s.size) / total : 0;
    return `<tr>
<td class="num">${i + 1}</td>
<td class="site"><code>${esc(displayPath(s.file))}${s.line ? `:${s.line}` : ''}</code>${s.function ? `<div class="fn">${esc(s.function)}</div>` : ''}${s.keptAliveBy ? `<div class="via">kept alive by <code>${esc(s.keptAliveBy)}</code></div>` : ''}${s.library ? `<div class="via">via <code>${esc(displayPath(s.library.file))}${s.library.line ? `:${s.library.line}` : ''}</code>${s.library.function ? ` ${esc(s.library.function)}` : ''}</div>` : ''}</td>
<td class="code">${s.code ? `<code>${esc(s.code)}</code>` : ''}</td>
<td class="num">${esc(bytes(s.size))}</td>
<td class="num"><div class="share"><span>${esc(percent(s.size, total))}</span><span class="bar"><span style="width:${share.toFixed(1)}%"></span></span></div></td>
<td class="num">${esc(count(s.count))}</td>
<td class="num">${esc(bytes(s.count ? Math.round(s.size / s.count) : 0))}</td>
</tr>`;
  });
  return `<table id="top-table">
<thead><tr><th class="num">#</th><th class="site">Site</th><th class="code">Code</th><th class="num">Size</th><th class="num">Share</th><th class="num">Blocks</th><th class="num">Avg</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>`;
}

function gcSection(r: RunReport): string {
  const gens = r.gc.generations;
  const table = gens.length
    ? `<table id="gc-table"><thead><tr><th>Generation</th><th class="num">Collections</th><th class="num">Collected</th><th class="num">Uncollectable</th></tr></thead><tbody>
${gens.map((g, i) => `<tr><td>${i}</td><td class="num">${count(g.collections)}</td><td class="num">${count(g.collected)}</td><td class="num">${count(g.uncollectable)}</td></tr>`).join('\n')}
</tbody></table>`
    : '<p class="empty">Not measured.</p>';
  const g = r.gc.garbage;
  const garbage =
    g.count === 0
      ? '<p><strong>gc.garbage</strong> is empty: no uncollectable objects.</p>'
      : `<p><strong>gc.garbage</strong> holds ${count(g.count)} object${g.count === 1 ? '' : 's'}: ${esc(g.types.map((t) => `${t.count} × ${t.type}`).join(', '))}</p>
<table id="garbage-table"><thead><tr><th>Type</th><th>Object</th></tr></thead><tbody>
${g.objects.map((o) => `<tr><td><code>${esc(o.type)}</code></td><td><code>${esc(o.repr)}</code></td></tr>`).join('\n')}
</tbody></table>`;
  const state = `Thresholds ${esc(r.gc.threshold.join(' / ') || '–')}; the collector was ${r.gc.enabled === false ? '<strong>disabled</strong>' : 'enabled'} when the script ended.`;
  return `<section id="gc"><h2>Garbage collector</h2><p class="lead">Collections during the run, per generation. ${state}</p>
<div class="gc-grid"><div>${table}</div><div>${garbage}</div></div></section>`;
}

export function htmlReport(r: RunReport): string {
  const o = r.outcome;
  const t = tone(r);
  const m = r.memory;
  const timeline = thin(r.timeline, MAX_POINTS);
  const chartInput = { timeline, wallTimeMs: r.wallTimeMs, peakRss: m.peakRss, tracedPeak: m.tracedPeak, cap: m.maxMemory };
  const cmd = r.commandLine.map(shellQuote).join(' ');
  const body: string[] = [];
  body.push(`<header>
<h1>Memory report: <code>${esc(r.script)}</code> <span class="badge ${t}">${esc(o.ending === 'ok' ? 'ok' : o.ending)}</span></h1>
<div class="sub">${esc(cmd)} · Python ${esc(r.python.version)} · ${esc(r.startedAt.slice(0, 19).replace('T', ' '))} UTC</div>
</header>`);
  body.push(`<div class="cards" id="summary">
${card('Exit status', String(o.exitCode), esc(o.description), t === 'ok' ? 'ok' : t === 'warn' ? 'warn' : 'fail')}
${card('Wall time', esc(duration(r.wallTimeMs)))}
${card('Peak RSS', esc(bytes(m.peakRss)), m.maxMemory ? `cap ${esc(bytes(m.maxMemory))}` : 'resident memory')}
${r.settings.mode === 'sample'
    ? card('Tracing', r.sampling ? `${r.sampling.windows} window${r.sampling.windows === 1 ? '' : 's'}` : 'sampled', r.sampling ? `${esc(duration(r.sampling.tracedSeconds * 1000))} traced; --mode full traces all` : '')
    : `${card('Traced peak', r.settings.tracing ? esc(bytes(m.tracedPeak)) : '–', r.settings.tracing ? `tracemalloc, ${r.settings.frames} frame${r.settings.frames === 1 ? '' : 's'}` : 'not traced')}
${card('Still allocated', r.settings.tracing ? esc(bytes(m.tracedFinal)) : '–', 'traced, at the end')}`}
${card('gc collections', esc(count(r.gc.generations.reduce((a, g) => a + g.collections, 0))), `${count(r.gc.garbage.count)} in gc.garbage`, r.gc.garbage.count ? 'fail' : '')}
</div>`);
  if (r.hints.length) {
    body.push(`<section id="hints"><h2>Hints</h2><div class="hints">
${r.hints.map((h) => `<div class="hint" data-hint="${esc(h.id)}"><strong>${esc(h.title)}</strong> <span class="source">from ${esc(h.source)}</span><p>${esc(h.text)}</p></div>`).join('\n')}
</div></section>`);
  }
  body.push(`<section id="memory"><h2>Memory over time</h2>
<p class="lead">Read every ${Math.min(50, r.settings.intervalMs)} ms for the first two seconds, then every ${r.settings.intervalMs} ms. The dashed lines mark the peaks; RSS includes what tracemalloc cannot see (the interpreter, C extensions, fragmentation).</p>
${chartLegend(chartInput)}
<div class="chart-wrap">${memoryChart(chartInput)}</div></section>`);
  body.push(`<section id="top"><h2>Top allocation sites</h2>
<p class="lead">Memory still allocated when the script ended, grouped by the line that allocated it${r.snapshot ? ` (${esc(bytes(r.snapshot.totalSize))} in ${esc(count(r.snapshot.totalCount))} blocks in all)` : ''}.</p>
${topTable(r)}</section>`);
  body.push(`<section id="flame"><h2>Allocation tracebacks</h2>
<p class="lead">An icicle graph: callers on top, the lines that allocate below them; width is memory still allocated at the end. Hover for figures, click to zoom. Orange: the script's own code; blue: the standard library and packages.</p>
<div class="flame-bar"><span id="flame-focus"></span><button id="flame-reset" type="button" disabled>Reset zoom</button></div>
<div class="flame-wrap">${r.settings.mode === 'full' ? flameGraph(r.stacks) : r.settings.mode === 'sample' ? '<p class="empty">The flame graph needs every allocation traced: run with --mode full.</p>' : '<p class="empty">Not traced.</p>'}</div></section>`);
  body.push(gcSection(r));
  body.push(`<section id="run"><h2>Run</h2><dl class="facts">
<dt>Command</dt><dd><code>${esc(cmd)}</code></dd>
<dt>Working directory</dt><dd><code>${esc(r.cwd)}</code></dd>
<dt>Python</dt><dd>${esc(r.python.version)} <code>${esc(r.python.executable)}</code></dd>
<dt>Tracing</dt><dd>${r.settings.mode === 'sample' ? `sampled: tracemalloc in short windows, ${r.settings.frames} frames per traceback` : r.settings.tracing ? `tracemalloc, ${r.settings.frames} frames per traceback` : 'off (--no-trace)'}</dd>
<dt>Memory cap</dt><dd>${m.maxMemory ? esc(bytes(m.maxMemory)) : 'none'}</dd>
<dt>Timeout</dt><dd>${r.settings.timeoutMs ? esc(duration(r.settings.timeoutMs)) : 'none'}</dd>
</dl>${r.notes.length ? `<ul class="notes">${r.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}</section>`);
  body.push(`<footer>Generated by pyworkers ${esc(r.tool.version)}. This file is self-contained: it loads nothing from the network.</footer>`);
  return page(`pyworkers: ${r.script}`, body.join('\n'), { timeline });
}
