/**
 * Streaming large data: a generator's items arrive in batches; the worker never holds the whole list.
 * Run: node --import tsx examples/memory/streaming.ts
 */
import { createPool, formatBytes } from '../../src/index.js';

const N = 300_000;
const pool = await createPool({ workers: 1 });
const ctx = pool.context();

async function peakOf(work: () => Promise<number>): Promise<[number, number]> {
  await ctx.tracemallocStart(); // (re)starting resets the peak
  const result = await work();
  const peak = (await ctx.memoryStats()).tracedMemoryPeak!;
  await ctx.tracemallocStop();
  return [result, peak];
}

// Bad: builds the whole list in the worker, then sends it at once.
const [total1, bad] = await peakOf(async () => (await ctx.eval<number[]>(`list(range(${N}))`)).length);

// Good: processes it incrementally.
const [total2, good] = await peakOf(async () => {
  let count = 0;
  for await (const _x of ctx.streamEval<number>(`(x for x in range(${N}))`)) count++;
  return count;
});

console.log(`eval:       ${total1} items, worker peak ${formatBytes(bad)}`);
console.log(`streamEval: ${total2} items, worker peak ${formatBytes(good)}`);
console.log(`streaming used ${(bad / good).toFixed(0)}x less memory in the worker`);

await pool.close();
