/**
 * Memory statistics: one worker (a context's) and the whole pool.
 * Run: node --import tsx examples/memory/statistics.ts
 */
import { createPool, formatBytes } from '../../src/index.js';

const pool = await createPool({ workers: 2 });
const ctx = pool.context();

// One worker: gc statistics, counts and thresholds, plus what the OS says about the process.
const s = await ctx.memoryStats();
console.log('gcStats:', JSON.stringify(s.gcStats));
console.log('gcCount:', JSON.stringify(s.gcCount));
console.log('gcThreshold:', JSON.stringify(s.gcThreshold));
console.log(`worker ${s.workerId} (pid ${s.pid}): rss ${formatBytes(s.rss ?? 0)}, peak ${formatBytes(s.peakRss ?? 0)}, gc enabled: ${s.gcEnabled}, calls: ${s.calls}`);

// Every worker, plus totals.
const all = await pool.memoryStats();
for (const w of all.workers) console.log(`worker ${w.workerId}: rss ${formatBytes(w.rss ?? 0)}, gen0 ${w.gcCount[0]}/${w.gcThreshold[0]}`);
console.log(`pool: ${all.workers.length} workers, rss ${formatBytes(all.totals.rss)}, ${all.totals.gcCollected} objects collected so far`);

await pool.close();
