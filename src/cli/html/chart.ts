/**
 * Memory over time as plain SVG: RSS as a line, traced memory as a filled area, the peaks marked, the cap drawn
 * when it is in sight, gc collections as ticks along the time axis. Drawn here, so the page needs no script to
 * show it; the page's script only adds the hover read-out.
 */
import { bytes, duration } from '../format.js';
import type { Sample } from '../report.js';
import { esc, n } from './escape.js';
import { byteUnit, linear } from './scale.js';

export interface ChartInput {
  timeline: Sample[];
  wallTimeMs: number;
  peakRss: number | null;
  tracedPeak: number | null;
  cap: number | null;
  /** The x axis when it is not time: e.g. `{ title: 'call', per: 1, unit: '' }`. */
  xAxis?: { title: string; per: number; unit: string };
  /** Leave out the gc ticks and the traced series' legend. */
  rssOnly?: boolean;
}

export const CHART = { width: 1040, height: 340, left: 72, right: 24, top: 28, bottom: 56 };

const COLORS = { rss: '#2563eb', traced: '#ea580c', cap: '#dc2626', grid: '#e5e7eb', axis: '#6b7280', gc: '#7c3aed' };

function path(points: Array<[number, number]>): string {
  return points.map(([x, y], i) => `${i ? 'L' : 'M'}${n(x)},${n(y)}`).join('');
}

export function memoryChart(c: ChartInput): string {
  const { width, height, left, right, top, bottom } = CHART;
  const samples = c.timeline.length ? c.timeline : [{ t: 0, rss: null, traced: null, tracedPeak: null, gc: 0 }];
  const endT = Math.max(c.wallTimeMs, samples[samples.length - 1]!.t, 1);
  const rssValues = samples.map((s) => s.rss).filter((v): v is number => v !== null);
  const tracedValues = samples.map((s) => s.traced).filter((v): v is number => v !== null);
  const dataMax = Math.max(1, c.peakRss ?? 0, c.tracedPeak ?? 0, ...rssValues, ...tracedValues);
  const showCap = c.cap !== null && c.cap <= dataMax * 1.6;
  const yMax = Math.max(dataMax, showCap ? c.cap! : 0) * 1.05;
  const unit = byteUnit(yMax);
  const y = linear(yMax, unit.per, unit.unit, height - bottom, top, 6);
  const timeUnit = c.xAxis ?? (endT < 2000 ? { per: 1, unit: 'ms' } : endT < 120_000 ? { per: 1000, unit: 's' } : { per: 60_000, unit: 'min' });
  const x = linear(endT, timeUnit.per, timeUnit.unit, left, width - right, 10);
  const xTitle = c.xAxis ? c.xAxis.title : `time since the script started (${x.unit})`;
  const out: string[] = [];
  out.push(
    `<svg id="memory-chart" class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-labelledby="memory-chart-title" xmlns="http://www.w3.org/2000/svg">`,
    `<title id="memory-chart-title">Memory over time: RSS and traced Python memory</title>`,
  );
  // grid and y axis
  for (const v of y.ticks) {
    const py = y(v);
    out.push(`<line class="grid" x1="${left}" x2="${width - right}" y1="${n(py)}" y2="${n(py)}" stroke="${COLORS.grid}"/>`);
    out.push(`<text class="tick" x="${left - 8}" y="${n(py + 4)}" text-anchor="end">${esc(y.format(v))}</text>`);
  }
  for (const v of x.ticks) {
    const px = x(v);
    out.push(`<line x1="${n(px)}" x2="${n(px)}" y1="${height - bottom}" y2="${height - bottom + 5}" stroke="${COLORS.axis}"/>`);
    out.push(`<text class="tick" x="${n(px)}" y="${height - bottom + 19}" text-anchor="middle">${esc(x.format(v))}</text>`);
  }
  out.push(`<line x1="${left}" x2="${width - right}" y1="${height - bottom}" y2="${height - bottom}" stroke="${COLORS.axis}"/>`);
  out.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${height - bottom}" stroke="${COLORS.axis}"/>`);
  out.push(`<text class="axis-title" x="${n((left + width - right) / 2)}" y="${height - 10}" text-anchor="middle">${esc(xTitle)}</text>`);
  out.push(`<text class="axis-title" transform="translate(18 ${n((top + height - bottom) / 2)}) rotate(-90)" text-anchor="middle">memory (${y.unit})</text>`);

  // gc collections: a tick where the count went up
  for (let i = 1; i < samples.length; i++) {
    if (samples[i]!.gc > samples[i - 1]!.gc) {
      const px = x(samples[i]!.t);
      out.push(`<line class="gc-tick" x1="${n(px)}" x2="${n(px)}" y1="${height - bottom - 6}" y2="${height - bottom}" stroke="${COLORS.gc}" stroke-width="1.5"/>`);
    }
  }
  // traced memory: area + line
  const traced = samples.filter((s) => s.traced !== null).map((s) => [x(s.t), y(s.traced!)] as [number, number]);
  if (traced.length) {
    const base = y(0);
    const area = `${path(traced)}L${n(traced[traced.length - 1]![0])},${n(base)}L${n(traced[0]![0])},${n(base)}Z`;
    out.push(`<path class="traced-area" d="${area}" fill="${COLORS.traced}" fill-opacity="0.16"/>`);
    out.push(`<path class="traced-line" d="${path(traced)}" fill="none" stroke="${COLORS.traced}" stroke-width="2" stroke-linejoin="round"/>`);
  }
  // RSS line
  const rss = samples.filter((s) => s.rss !== null).map((s) => [x(s.t), y(s.rss!)] as [number, number]);
  if (rss.length) {
    out.push(`<path class="rss-line" d="${path(rss)}" fill="none" stroke="${COLORS.rss}" stroke-width="2.25" stroke-linejoin="round"/>`);
  }
  // peaks and cap: dashed lines, labels kept apart
  const marks: Array<{ value: number; color: string; label: string; cls: string }> = [];
  if (showCap) marks.push({ value: c.cap!, color: COLORS.cap, label: `cap ${bytes(c.cap)}`, cls: 'cap-line' });
  if (c.peakRss !== null) marks.push({ value: c.peakRss, color: COLORS.rss, label: `peak RSS ${bytes(c.peakRss)}`, cls: 'peak-rss-line' });
  if (c.tracedPeak !== null && c.tracedPeak > 0) marks.push({ value: c.tracedPeak, color: COLORS.traced, label: `traced peak ${bytes(c.tracedPeak)}`, cls: 'traced-peak-line' });
  const placed = marks.map((m) => ({ ...m, y: y(m.value) - 6 })).sort((a, b) => a.y - b.y);
  for (let i = 0; i < placed.length; i++) {
    const prev = placed[i - 1];
    placed[i]!.y = Math.max(placed[i]!.y, top + 10, prev ? prev.y + 14 : -Infinity);
  }
  for (const m of placed) {
    const py = y(m.value);
    out.push(`<line class="${m.cls}" x1="${left}" x2="${width - right}" y1="${n(py)}" y2="${n(py)}" stroke="${m.color}" stroke-dasharray="5 4" stroke-width="1.25"/>`);
    out.push(`<text class="mark-label" x="${width - right - 4}" y="${n(m.y)}" text-anchor="end" fill="${m.color}">${esc(m.label)}</text>`);
  }
  const highest = samples.reduce<Sample | undefined>((best, s) => (s.rss !== null && (!best || s.rss > best.rss!) ? s : best), undefined);
  if (highest) {
    out.push(
      `<circle class="peak-dot" cx="${n(x(highest.t))}" cy="${n(y(highest.rss!))}" r="4.5" fill="#fff" stroke="${COLORS.rss}" stroke-width="2.5"><title>highest RSS reading: ${esc(bytes(highest.rss))} at ${esc(duration(highest.t))}</title></circle>`,
    );
  }
  // hover read-out (filled in by the page's script)
  out.push(`<g id="chart-hover" visibility="hidden"><line y1="${top}" y2="${height - bottom}" stroke="#111827" stroke-opacity="0.35"/></g>`);
  out.push(`<rect id="chart-overlay" x="${left}" y="${top}" width="${width - left - right}" height="${height - top - bottom}" fill="transparent" data-end="${n(endT)}"/>`);
  out.push('</svg>');
  return out.join('\n');
}

/** The legend, as HTML beside the chart. */
export function chartLegend(c: ChartInput): string {
  const item = (color: string, label: string, dashed = false, area = false) =>
    `<span class="legend-item"><span class="swatch${dashed ? ' dashed' : ''}${area ? ' area' : ''}" style="--c:${color}"></span>${esc(label)}</span>`;
  const items = [item(COLORS.rss, 'RSS (resident memory, from the OS)')];
  if (!c.rssOnly) items.push(item(COLORS.traced, 'traced by tracemalloc (Python allocations)', false, true), item(COLORS.gc, 'gc collection'));
  if (c.cap !== null) items.push(item(COLORS.cap, `memory cap ${bytes(c.cap)}`, true));
  return `<div class="legend">${items.join('')}</div>`;
}
