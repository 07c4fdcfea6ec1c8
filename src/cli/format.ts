/**
 * Formatting of figures for people: sizes, durations, counts, paths, and plain-text tables.
 */
import path from 'node:path';
import { formatBytes } from '../util/size.js';

/** `1.5 MiB`; `–` for a missing value. */
export function bytes(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  return formatBytes(Math.round(value));
}

/** `850 ms`, `2.41 s`, `3 min 05 s`. */
export function duration(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  return `${minutes} min ${String(seconds).padStart(2, '0')} s`;
}

/** Seconds with one decimal, for the status line: `12.3s`. */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/** `1,234,567`; small fractions keep a decimal (`0.5`). */
export function count(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  if (Math.abs(n) < 10 && !Number.isInteger(n)) return n.toFixed(1);
  return Math.round(n).toLocaleString('en-US');
}

/** `66.5%`. */
export function percent(part: number, whole: number): string {
  if (!whole) return '–';
  const p = (100 * part) / whole;
  return `${p >= 10 ? p.toFixed(0) : p.toFixed(1)}%`;
}

/** A file name as people want to read it: relative to the working directory when inside it. */
export function displayPath(file: string, cwd = process.cwd()): string {
  if (!path.isAbsolute(file)) return file;
  const rel = path.relative(cwd, file);
  if (rel && !rel.startsWith('..') && !path.isAbsolute(rel)) return rel;
  // Shorten the standard library and site-packages: keep what comes after them.
  const lib = /\/(?:lib\/python3\.\d+\/(?:site-packages\/)?)(.*)$/.exec(file);
  return lib ? lib[1]! : file;
}

/** `file.py:12`, with the path shortened. */
export function site(file: string, line: number | null, cwd?: string): string {
  return line ? `${displayPath(file, cwd)}:${line}` : displayPath(file, cwd);
}

/** Cut a string to `width` characters, ending with `…` when cut. */
export function truncate(text: string, width: number): string {
  if (width <= 0) return '';
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}

export type Align = 'left' | 'right';

/** The width of text on a terminal, colour codes left out. */
export function visibleLength(text: string): number {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, '').length;
}

function pad(text: string, width: number, align: Align): string {
  const fill = ' '.repeat(Math.max(0, width - visibleLength(text)));
  return align === 'right' ? fill + text : text + fill;
}

/** A plain-text table: columns padded to their widest cell; the last column is not padded. */
export function table(rows: string[][], align: Align[], indent = '  ', gap = '  '): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, visibleLength(cell))));
  return rows
    .map((row) =>
      indent +
      row
        .map((cell, i) => {
          if (i === row.length - 1 && align[i] !== 'right') return cell;
          return pad(cell, widths[i]!, align[i] ?? 'left');
        })
        .join(gap),
    )
    .join('\n')
    .replace(/[ ]+$/gm, '');
}
