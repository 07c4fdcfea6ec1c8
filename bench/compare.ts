/**
 * Two builds of pyworkers side by side in one process, interleaved round by round: did a change make anything
 * slower? `npm run bench` measures one build against the floor and the peers; this measures a build against
 * another (e.g. a worktree of the previous commit, built).
 *
 *   node --import tsx bench/compare.ts /path/to/old/dist [/path/to/new/dist]
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { median, sequential, throughput } from './lib/measure.js';
import { place } from './lib/pin.js';

type Lib = typeof import('../src/index.js');
type Pool = import('../src/index.js').Pool;

const HERE = path.dirname(fileURLToPath(import.meta.url));
const [oldDir, newDir = path.join(HERE, '..', 'dist')] = process.argv.slice(2);
if (!oldDir) {
  console.error('usage: node --import tsx bench/compare.ts OLD_DIST [NEW_DIST]');
  process.exit(2);
}
const load = async (dir: string) => (await import(pathToFileURL(path.resolve(dir, 'index.js')).href)) as Lib;
const [A, B] = [await load(oldDir), await load(newDir)];
const python = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
const options = { workers: 1, forwardOutput: false, python, pythonPath: [path.join(HERE, 'py')] };
const pools: [Pool, Pool] = [await A.createPool(options), await B.createPool(options)];
const pids = () => pools.map((p) => p.stats().perWorker[0]?.pid);
const hasNumpy = (await pools[1].eval('__import__("importlib.util").util.find_spec("numpy") is not None')) === true;

const bytes = new Uint8Array(1 << 20);
const ints = Array.from({ length: 100_000 }, (_, i) => i);
const array = new Float64Array(1 << 20);
const timed = async (call: () => Promise<unknown>, n: number) => median(await sequential(call, n));
const ROUNDS = 6;

interface Measure {
  name: string;
  unit: string;
  better: 'lower' | 'higher';
  placement: 'same' | 'separate';
  run(pool: Pool): Promise<number>;
}
const measures: Measure[] = [
  { name: 'trivial call (µs, one CPU)', unit: 'µs', better: 'lower', placement: 'same', run: async (p) => (await timed(() => p.call('benchfns', 'echo', [1]), 2000)) * 1000 },
  { name: 'calls/s, 64 in flight', unit: 'calls/s', better: 'higher', placement: 'separate', run: (p) => throughput(() => p.call('benchfns', 'echo', [1]), 64, 400) },
  { name: '1 MiB bytes Py → TS (ms)', unit: 'ms', better: 'lower', placement: 'same', run: (p) => timed(() => p.call('benchfns', 'blob'), 20) },
  { name: '1 MiB bytes TS → Py (ms)', unit: 'ms', better: 'lower', placement: 'same', run: (p) => timed(() => p.call('benchfns', 'take', [bytes]), 20) },
  { name: '100k ints Py → TS (ms)', unit: 'ms', better: 'lower', placement: 'same', run: (p) => timed(() => p.call('benchfns', 'make_ints', [100_000]), 20) },
  { name: '100k ints TS → Py (ms)', unit: 'ms', better: 'lower', placement: 'same', run: (p) => timed(() => p.call('benchfns', 'take', [ints]), 20) },
  { name: '10k-entry dict Py → TS (ms)', unit: 'ms', better: 'lower', placement: 'same', run: (p) => timed(() => p.call('benchfns', 'make_dict', [10_000]), 20) },
  { name: 'streamed items/s', unit: 'items/s', better: 'higher', placement: 'separate', run: async (p) => {
    const t0 = performance.now();
    let n = 0;
    for await (const _ of p.streamEval('range(200000)')) n++;
    return n / ((performance.now() - t0) / 1000);
  } },
  ...(hasNumpy
    ? [
        { name: '8 MiB float64 Py → TS (ms)', unit: 'ms', better: 'lower' as const, placement: 'same' as const, run: (p: Pool) => timed(() => p.call('benchfns', 'array_out'), 15) },
        { name: '8 MiB float64 TS → Py (ms)', unit: 'ms', better: 'lower' as const, placement: 'same' as const, run: (p: Pool) => timed(() => p.call('benchfns', 'array_in', [array]), 15) },
      ]
    : []),
];

console.log(`A: ${path.resolve(oldDir)}\nB: ${path.resolve(newDir)}\n`);
console.log('| measure | A | B | B vs A |\n| --- | --- | --- | --- |');
for (const m of measures) {
  place(m.placement, pids());
  for (const p of pools) await m.run(p); // warm-up
  const results: [number[], number[]] = [[], []];
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? [0, 1] : [1, 0];
    for (const i of order) results[i as 0 | 1].push(await m.run(pools[i as 0 | 1]));
  }
  const [a, b] = results.map(median) as [number, number];
  const ratio = m.better === 'lower' ? a / b : b / a; // > 1: B is better
  const word = ratio >= 1 ? `${ratio.toFixed(2)}× better` : `${(1 / ratio).toFixed(2)}× worse`;
  console.log(`| ${m.name} | ${a.toPrecision(4)} | ${b.toPrecision(4)} | ${word} |`);
}
place('free', pids());
await Promise.all(pools.map((p) => p.close()));
