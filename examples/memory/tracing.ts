/**
 * Memory tracing with tracemalloc: traced current and peak bytes, and the frame depth.
 * Run: node --import tsx examples/memory/tracing.ts
 */
import { createPool } from '../../src/index.js';

const pool = await createPool({ workers: 2 });

// Start tracing (1 frame per allocation) on every worker, and on every worker started later.
await pool.tracemallocStart();

// Do some work.
await pool.eval('[x**2 for x in range(100000)]');

// Check memory: the stats now include tracedMemoryCurrent and tracedMemoryPeak (bytes).
const stats = await pool.memoryStats();
for (const w of stats.workers) {
  console.log(`worker ${w.workerId}: tracedMemoryCurrent ${w.tracedMemoryCurrent}, tracedMemoryPeak ${w.tracedMemoryPeak}`);
}
console.log(`pool: tracedMemoryCurrent ${stats.totals.tracedMemoryCurrent}, tracedMemoryPeak ${stats.totals.tracedMemoryPeak}`);

// Frame depth: 10 frames per allocation (more detail, more memory and time; see docs/memory.md for the cost).
await pool.tracemallocStart(10);
console.log('frames:', await pool.eval("__import__('tracemalloc').get_traceback_limit()"));

// Stop tracing: the traced fields disappear from the stats.
await pool.tracemallocStop();
const after = await pool.memoryStats();
console.log('tracing after stop:', after.workers.some((w) => 'tracedMemoryCurrent' in w));

await pool.close();
