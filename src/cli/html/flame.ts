/**
 * The allocation tracebacks as an icicle graph (a flame graph growing down): the outermost calls at the top,
 * the lines that allocate at the bottom, each box as wide as the memory allocated under it. Drawn as SVG here;
 * the page's script adds click-to-zoom.
 */
import { bytes, count, displayPath, percent } from '../format.js';
import type { StackRow } from '../report.js';
import { esc, n } from './escape.js';

export interface FlameNode {
  name: string;
  file: string;
  line: number | null;
  size: number;
  count: number;
  children: FlameNode[];
}

export const FLAME = { width: 1040, row: 22, minWidth: 0.6 };

/** Stands for the callers tracemalloc did not keep (tracebacks are cut at `--frames`). */
const CUT = '<cut>';

/** Merge tracebacks into a tree; children sorted largest first. */
export function flameTree(stacks: StackRow[]): FlameNode {
  const root: FlameNode = { name: 'all allocations', file: '', line: null, size: 0, count: 0, children: [] };
  for (const row of stacks) {
    root.size += row.size;
    root.count += row.count;
    let node = root;
    const stack = row.truncated ? [{ file: CUT, line: null, function: null }, ...row.stack] : row.stack;
    for (const f of stack) {
      let child = node.children.find((c) => c.file === f.file && c.line === f.line);
      if (!child) {
        const where = `${displayPath(f.file)}${f.line ? `:${f.line}` : ''}`;
        const name = f.file === CUT ? '… outer callers cut off (--frames)' : f.function ? `${f.function} (${where})` : where;
        child = { name, file: f.file, line: f.line, size: 0, count: 0, children: [] };
        node.children.push(child);
      }
      child.size += row.size;
      child.count += row.count;
      node = child;
    }
  }
  const sort = (node: FlameNode) => {
    node.children.sort((a, b) => b.size - a.size);
    node.children.forEach(sort);
  };
  sort(root);
  return root;
}

function depthOf(node: FlameNode): number {
  return 1 + Math.max(0, ...node.children.map(depthOf));
}

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** Warm colours for the script's own files, cool ones for the standard library and installed packages. */
function colour(node: FlameNode, depth: number): string {
  if (depth === 0) return '#9ca3af';
  if (node.file === CUT) return '#e5e7eb';
  const h = hash(node.file);
  const library = /[\\/]lib[\\/]python\d|site-packages|dist-packages|^<frozen|^<unknown/.test(node.file);
  if (library) return `hsl(${205 + (h % 30)} 45% ${68 + (h % 10)}%)`;
  return `hsl(${12 + (h % 36)} ${78 + (h % 12)}% ${58 + ((h >> 4) % 10)}%)`;
}

const CHAR_PX = 6.6;

function label(text: string, widthPx: number): string {
  const fits = Math.floor((widthPx - 8) / CHAR_PX);
  if (fits < 3) return '';
  return text.length <= fits ? text : `${text.slice(0, fits - 1)}…`;
}

export function flameGraph(stacks: StackRow[]): string {
  const root = flameTree(stacks);
  if (root.size === 0) return '<p class="empty">No allocation tracebacks to show.</p>';
  const depth = depthOf(root);
  const { width, row } = FLAME;
  const height = depth * row + 2;
  const out: string[] = [
    `<svg id="flame-graph" class="flame" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="Icicle graph of allocation tracebacks" xmlns="http://www.w3.org/2000/svg">`,
  ];
  let id = 0;
  const draw = (node: FlameNode, level: number, x0: number, parent: number) => {
    const w = (node.size / root.size) * width;
    if (w < FLAME.minWidth) return;
    const me = id++;
    const tip = `${node.name}\n${bytes(node.size)} (${percent(node.size, root.size)} of traced), ${count(node.count)} blocks`;
    out.push(
      `<g class="frame" data-id="${me}" data-parent="${parent}" data-x="${n(x0)}" data-w="${n(w)}" data-depth="${level}" data-label="${esc(node.name)}" transform="translate(${n(x0)} ${level * row})">` +
        `<title>${esc(tip)}</title>` +
        `<rect width="${n(Math.max(0.5, w - 1))}" height="${row - 2}" rx="2" fill="${colour(node, level)}"/>` +
        `<text x="4" y="${row - 7}">${esc(label(node.name, w))}</text></g>`,
    );
    let x = x0;
    for (const child of node.children) {
      draw(child, level + 1, x, me);
      x += (child.size / root.size) * width;
    }
  };
  draw(root, 0, 0, -1);
  out.push('</svg>');
  return out.join('\n');
}
