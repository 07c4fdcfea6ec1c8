/**
 * The report of `pyworkers run` as text, for the terminal: the figures, the top allocation sites, the garbage
 * collector, and the hints.
 */
import { bytes, count, duration, percent, site, table, truncate } from './format.js';
import type { RunReport } from './report.js';

/** Styling for a terminal that shows colours, or none. */
export interface Paint {
  bold(text: string): string;
  dim(text: string): string;
  good(text: string): string;
  bad(text: string): string;
  warn(text: string): string;
}

const plain: Paint = { bold: (t) => t, dim: (t) => t, good: (t) => t, bad: (t) => t, warn: (t) => t };
const sgr = (open: number, close: number) => (t: string) => `\x1b[${open}m${t}\x1b[${close}m`;
const ansi: Paint = { bold: sgr(1, 22), dim: sgr(2, 22), good: sgr(32, 39), bad: sgr(31, 39), warn: sgr(33, 39) };

/** Colours when `stream` is a terminal and the user did not ask for none (NO_COLOR, TERM=dumb). */
export function paintFor(stream: { isTTY?: boolean }): Paint {
  const env = process.env;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return plain;
  if (env.FORCE_COLOR && env.FORCE_COLOR !== '0') return ansi;
  return stream.isTTY && env.TERM !== 'dumb' ? ansi : plain;
}

export { plain as noPaint };

/** Wrap `text` to `width` columns, every line after the first indented by `indent`. */
function wrap(text: string, width: number, indent: string): string {
  const words = text.split(/\s+/);
  const lines: string[] = [];
  let line = '';
  for (const word of words) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.join(`\n${indent}`);
}

export function textReport(r: RunReport, p: Paint = plain, width = 100): string {
  const out: string[] = [];
  const rule = (title: string) => {
    const head = `── ${title} `;
    out.push('', p.bold(head + '─'.repeat(Math.max(3, Math.min(width, 78) - head.length))));
  };
  rule(`pyworkers report: ${r.script}${r.argv.length > 1 ? ` ${r.argv.slice(1).join(' ')}` : ''}`);

  const o = r.outcome;
  const status = o.ending === 'ok' ? p.good(`${o.exitCode}`) : o.ending === 'exit' ? p.warn(`${o.exitCode}`) : p.bad(`${o.exitCode}`);
  const m = r.memory;
  const facts: string[][] = [
    ['exit status', `${status}  ${o.description}`],
    ['wall time', duration(r.wallTimeMs)],
    ['peak RSS', `${bytes(m.peakRss)}${m.peakRssAt !== null ? p.dim(`  (highest reading at ${duration(m.peakRssAt)})`) : ''}${m.maxMemory ? p.dim(`  cap ${bytes(m.maxMemory)}`) : ''}`],
  ];
  if (r.settings.mode === 'full') {
    facts.push(['traced peak', `${bytes(m.tracedPeak)}${p.dim(`  (tracemalloc, ${r.settings.frames} frame${r.settings.frames === 1 ? '' : 's'})`)}`]);
    facts.push(['still allocated', `${bytes(m.tracedFinal)}${p.dim('  (traced, when the script ended)')}`]);
  } else if (r.settings.mode === 'sample') {
    const w = r.sampling;
    facts.push(['tracing', w ? `sampled: ${w.windows} window${w.windows === 1 ? '' : 's'}, ${duration(w.tracedSeconds * 1000)} traced${p.dim('  (--mode full traces everything, at full cost)')}` : p.dim('sampled')]);
  } else facts.push(['traced peak', p.dim('not traced (--no-trace)')]);
  out.push(table(facts.map(([k, v]) => [k!, v!]), ['left', 'left']));

  if (r.settings.mode === 'sample') {
    rule('Lines whose memory grew while traced');
    if (r.top.length === 0) out.push(p.dim('  (nothing grew in the tracing windows)'));
    else {
      out.push(p.dim('  what each line allocated and kept during the tracing windows'));
      const rows = [['#', 'grew', 'count', 'site', 'code'].map((h) => p.dim(h))];
      r.top.forEach((s, i) => {
        const where = `${site(s.file, s.line)}${s.function && s.function !== '<module>' ? ` ${s.function}()` : ''}`;
        rows.push([String(i + 1), bytes(s.size), count(s.count), where, truncate(s.code, 60)]);
        if (s.keptAliveBy) rows.push(['', '', '', p.dim(`  kept alive by ${s.keptAliveBy}`), '']);
        if (s.library) rows.push(['', '', '', p.dim(`  via ${site(s.library.file, s.library.line)}${s.library.function ? ` ${s.library.function}()` : ''}`), '']);
      });
      out.push(table(rows, ['right', 'right', 'right', 'left', 'left']));
    }
  }
  if (r.settings.mode === 'full') {
    rule(r.top.length === 1 ? 'Top allocation site, by line' : `Top ${r.top.length || ''} allocation sites, by line`.replace('  ', ' '));
    if (r.top.length === 0) out.push(p.dim('  (no allocations left to show)'));
    else {
      out.push(p.dim('  what was still allocated when the script ended'));
      const total = r.snapshot?.totalSize ?? 0;
      const rows = [['#', 'size', 'share', 'count', 'site', 'code'].map((h) => p.dim(h))];
      r.top.forEach((s, i) => {
        const where = `${site(s.file, s.line)}${s.function && s.function !== '<module>' ? ` ${s.function}()` : ''}`;
        rows.push([String(i + 1), bytes(s.size), percent(s.size, total), count(s.count), where, truncate(s.code, 60)]);
        if (s.keptAliveBy) rows.push(['', '', '', '', p.dim(`  kept alive by ${s.keptAliveBy}`), '']);
        if (s.library) rows.push(['', '', '', '', p.dim(`  via ${site(s.library.file, s.library.line)}${s.library.function ? ` ${s.library.function}()` : ''}`), '']);
      });
      out.push(table(rows, ['right', 'right', 'right', 'right', 'left', 'left']));
    }
  }

  rule('Garbage collector, during the run');
  const gens = r.gc.generations;
  if (gens.length) {
    out.push(
      table(
        [
          [p.dim('generation'), ...gens.map((_, i) => p.dim(String(i)))],
          ['collections', ...gens.map((g) => count(g.collections))],
          ['collected', ...gens.map((g) => count(g.collected))],
          ['uncollectable', ...gens.map((g) => (g.uncollectable ? p.bad(count(g.uncollectable)) : count(g.uncollectable)))],
        ],
        ['left', ...gens.map(() => 'right' as const)],
      ),
    );
  } else out.push(p.dim('  (not measured)'));
  const g = r.gc.garbage;
  const state = [`threshold ${r.gc.threshold.join('/') || '–'}`, r.gc.enabled === false ? p.warn('disabled at the end') : ''].filter(Boolean).join(', ');
  out.push(`  ${state}`);
  if (g.count === 0) out.push('  gc.garbage: empty (no uncollectable objects)');
  else {
    out.push(`  gc.garbage: ${p.bad(`${count(g.count)} object${g.count === 1 ? '' : 's'}`)} — ${g.types.map((t) => `${t.count} × ${t.type}`).join(', ')}`);
    for (const obj of g.objects.slice(0, 5)) out.push(p.dim(`    ${obj.type}: ${truncate(obj.repr, 90)}`));
  }

  if (r.hints.length) {
    rule('Hints');
    for (const h of r.hints) out.push(`  ${p.warn('•')} ${p.bold(h.title)}${p.dim(`  (from ${h.source})`)}\n    ${wrap(h.text, Math.min(width, 100) - 4, '    ')}`);
  }
  if (r.notes.length) {
    out.push('');
    for (const n of r.notes) out.push(p.dim(`  note: ${n}`));
  }
  out.push('');
  return out.join('\n');
}
