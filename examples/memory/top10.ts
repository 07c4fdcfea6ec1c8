/**
 * A tracemalloc top 10 by line, from TypeScript, on a module of your own.
 * Run: node --import tsx examples/memory/top10.ts
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPool } from '../../src/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const pool = await createPool({ workers: 1, pythonPath: [path.join(here, 'python')] });
const ctx = pool.context();

await ctx.tracemallocStart();
await ctx.call('profiling_demo', 'run');
const snapshot = await ctx.snapshot({ groupBy: 'lineno', limit: 10 });

console.log('[Top 10] memory consumption lines');
snapshot.sites.forEach((site, index) => {
  console.log(`#${index}: ${path.basename(site.file)}:${site.line}: ${(site.size / 1024).toFixed(1)} KiB`);
});
await snapshot.release();
await pool.close();
