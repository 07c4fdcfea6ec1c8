/**
 * What tracemalloc costs: the same allocation-heavy workload with tracing off, with 1 frame and with 10 frames,
 * as ratios of the time off, plus tracemalloc's own bookkeeping memory. The figures in docs/memory.md come from
 * this script.
 * Run: node --import tsx examples/memory/tracemalloc-cost.ts [--quick]
 */
import { createPool, formatBytes } from '../../src/index.js';

const quick = process.argv.includes('--quick');
const N = quick ? 20_000 : 200_000; // objects kept alive per run
const RUNS = quick ? 1 : 7;

const pool = await createPool({ workers: 1 });
const ctx = pool.context();
// Small dicts, strings and lists, built a few calls deep (tracemalloc's cost grows with the stack it walks).
await ctx.exec(`
import time, tracemalloc

def record(i):
    return {'id': i, 'name': 'item-%d' % i, 'tags': [i % 7, i % 11]}

def build(n):
    return [record(i) for i in range(n)]

def level(depth, n):
    return build(n) if depth == 0 else level(depth - 1, n)

def workload(n):
    t = time.perf_counter()
    data = level(5, n)
    elapsed = time.perf_counter() - t
    bookkeeping = tracemalloc.get_tracemalloc_memory() if tracemalloc.is_tracing() else 0
    del data
    return elapsed, bookkeeping
`);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const results: Record<string, { seconds: number; bookkeeping: number }> = {};
for (const [name, frames] of [['off', 0], ['1 frame', 1], ['10 frames', 10]] as const) {
  if (frames) await ctx.tracemallocStart(frames);
  else await ctx.tracemallocStop();
  await ctx.call('__main__', 'workload', [N]); // warm-up
  const times: number[] = [];
  let bookkeeping = 0;
  for (let i = 0; i < RUNS; i++) {
    const [seconds, memory] = await ctx.call<[number, number]>('__main__', 'workload', [N]);
    times.push(seconds);
    bookkeeping = Math.max(bookkeeping, memory);
  }
  results[name] = { seconds: median(times), bookkeeping };
}
await ctx.tracemallocStop();

const base = results['off']!.seconds;
console.log(`workload: ${N} small dicts with a string and a list each, built 6 calls deep; median of ${RUNS}`);
for (const [name, r] of Object.entries(results)) {
  const extra = r.bookkeeping ? `, tracemalloc's own memory ${formatBytes(r.bookkeeping)}` : '';
  console.log(`${name.padEnd(9)} ${(r.seconds * 1000).toFixed(1).padStart(7)} ms  x${(r.seconds / base).toFixed(1)}${extra}`);
}
await pool.close();
