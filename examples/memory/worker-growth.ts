/**
 * Worker memory growth: what exec defines stays in the worker; eval with locals does not persist.
 * Run: node --import tsx examples/memory/worker-growth.ts
 */
import { createPool, formatBytes } from '../../src/index.js';

const pool = await createPool({ workers: 1 });
const ctx = pool.context();
await ctx.tracemallocStart();
const traced = async () => (await ctx.memoryStats()).tracedMemoryCurrent!;
const rss = async () => (await ctx.memoryStats()).rss!;
const signed = (bytes: number) => (bytes < 0 ? '' : '+') + formatBytes(bytes);

// This grows worker memory over time: every x<N> stays in the context's namespace.
let t0 = await traced();
const r0 = await rss();
for (let n = 1; n <= 10; n++) await ctx.exec(`x${n} = [0] * 1000000`);
console.log(`exec x1..x10: traced ${signed((await traced()) - t0)}, rss ${signed((await rss()) - r0)}`);

// Consider eval with locals instead: the local is gone when the call returns.
const largeList = new Array(1_000_000).fill(0);
t0 = await traced();
for (let i = 0; i < 10; i++) await ctx.eval('len(data)', { data: largeList });
console.log(`eval len(data) x10: traced ${signed((await traced()) - t0)}`);

// Free what exec defined: delete the names (or close the context, which drops its whole namespace).
await ctx.exec('for n in range(1, 11):\n    del globals()[f"x{n}"]');
console.log(`after del: traced ${formatBytes(await traced())}`);

await pool.close();
