/**
 * Understanding gc stats and thresholds: generations, how collections follow allocations, changing thresholds.
 * Run: node --import tsx examples/memory/gc-stats.ts
 */
import { createPool } from '../../src/index.js';

const pool = await createPool({ workers: 1 });
const ctx = pool.context();

// Thresholds differ between Python versions (700, 10, 10 on 3.11): read them, never hard-code them.
const thresholds = await ctx.gcGetThreshold();
console.log('thresholds:', JSON.stringify(thresholds));

const collections = async () => (await ctx.memoryStats()).gcStats.map((g) => g.collections);
const before = await collections();
// Allocate many container objects (the collector tracks only containers: lists, dicts, instances...).
await ctx.exec('keep = [[i] for i in range(50000)]');
const after = await collections();
console.log('collections per generation:', JSON.stringify(before), '->', JSON.stringify(after));
console.log('generation 0 ran more often than generation 2:', after[0]! - before[0]! > after[2]! - before[2]!);

// Fewer, larger young collections: a higher generation-0 threshold.
await ctx.gcSetThreshold(5000, 10, 10);
const b2 = await collections();
await ctx.exec('keep2 = [[i] for i in range(50000)]');
const a2 = await collections();
console.log('generation 0 collections with threshold 5000:', a2[0]! - b2[0]!, 'instead of', after[0]! - before[0]!);

// gcCount: objects tracked in each generation since its last collection.
const s = await ctx.memoryStats();
console.log('gcCount:', JSON.stringify(s.gcCount), 'threshold:', JSON.stringify(s.gcThreshold));

await ctx.gcSetThreshold(...thresholds);
await pool.close();
