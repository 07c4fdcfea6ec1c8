/**
 * Rows, ratios, targets, and the table (Markdown, printed and written to docs/benchmarks.md).
 */

export const SUBJECTS = ['pyworkers', 'floor', 'python-shell', 'pythonia', 'node-calls-python'] as const;
export type SubjectName = (typeof SUBJECTS)[number];
export const PEERS = ['python-shell', 'pythonia', 'node-calls-python'] as const;
export type PeerName = (typeof PEERS)[number];

export interface Target {
  /** What is promised, e.g. 'within 1.2× of the floor'. */
  text: string;
  met: boolean | undefined;
}

export interface Row {
  id: string;
  label: string;
  unit: string;
  /** Which way is better. */
  better: 'lower' | 'higher';
  /** Figures by subject; a string says why there is none (e.g. 'n/a (not built yet)'). */
  values: Partial<Record<SubjectName, number | string>>;
  /** Speed ratio per other subject: > 1 means pyworkers is that many times better. */
  ratios: Partial<Record<SubjectName, number>>;
  targets: Target[];
  note?: string;
}

export function makeRow(id: string, label: string, unit: string, better: 'lower' | 'higher', values: Row['values'], note?: string): Row {
  const row: Row = { id, label, unit, better, values, ratios: {}, targets: [], note };
  const mine = values.pyworkers;
  for (const name of SUBJECTS) {
    const other = values[name];
    if (name === 'pyworkers' || typeof mine !== 'number' || typeof other !== 'number' || !(mine > 0) || !(other > 0)) continue;
    row.ratios[name] = better === 'lower' ? other / mine : mine / other;
  }
  return row;
}

/** pyworkers' figure must be at most `factor` times the other's cost (time), or at least `factor` its rate. */
export function target(row: Row, text: string, check: (row: Row) => boolean | undefined): void {
  row.targets.push({ text, met: check(row) });
}

/** Time of pyworkers ÷ time of `who` (for lower-is-better rows). */
export function timeRatio(row: Row, who: SubjectName): number | undefined {
  const r = row.ratios[who];
  return r === undefined ? undefined : 1 / r;
}

function fmtNumber(v: number): string {
  const a = Math.abs(v);
  if (a >= 100_000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

export function fmtValue(v: number | string | undefined, unit: string): string {
  if (v === undefined) return '—';
  if (typeof v === 'string') return v;
  return unit === '%' ? `${v.toFixed(1)} %` : `${fmtNumber(v)} ${unit}`;
}

export function fmtRatio(r: number): string {
  if (r >= 1) return `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}× faster`;
  const s = 1 / r;
  return `${s >= 10 ? s.toFixed(0) : s.toFixed(2)}× slower`;
}

function cell(row: Row, name: SubjectName): string {
  const v = row.values[name];
  const text = fmtValue(v, row.unit);
  const r = row.ratios[name];
  if (r === undefined) return text;
  const word = row.unit === 'MiB' ? `${(1 / r).toFixed(2)}× as much` : fmtRatio(r);
  return `${text} (pyworkers ${word})`;
}

export function targetText(row: Row): string {
  return row.targets.map((t) => `${t.text}: ${t.met === undefined ? 'not measured' : t.met ? 'met' : '**missed**'}`).join('; ');
}

export function markdownTable(rows: Row[]): string {
  const head = ['measure', ...SUBJECTS, 'targets'];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`];
  for (const row of rows) {
    const label = row.note ? `${row.label} ⁽ⁿ⁾` : row.label;
    lines.push(`| ${[label, ...SUBJECTS.map((s) => cell(row, s)), targetText(row) || ''].join(' | ')} |`);
  }
  return lines.join('\n');
}

export function notesList(rows: Row[]): string {
  return rows
    .filter((r) => r.note)
    .map((r) => `- **${r.label}**: ${r.note}`)
    .join('\n');
}
