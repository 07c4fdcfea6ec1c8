/**
 * Troubleshooting: high memory usage (trace, find large objects, force gc and re-measure) and leaks (snapshots
 * compared between two points, generators left open).
 * Run: node --import tsx examples/memory/troubleshooting.ts
 */
import { createPool, formatBytes } from '../../src/index.js';

const pool = await createPool({ workers: 1 });
const ctx = pool.context();
await ctx.exec(`
_cache = []

def handle(request):
    result = [str(request)] * 1000
    _cache.append(result)          # the leak: every request stays in the cache
    return len(result)

def rows(n):
    buffer = [0] * 100000          # held for as long as the generator is open
    for i in range(n):
        yield buffer[i]
`);

// High memory usage: 1. enable tracemalloc, 2. look for large objects, 3. force gc and re-measure.
await ctx.tracemallocStart();
const before = await ctx.snapshot();
for (let i = 0; i < 200; i++) await ctx.call('__main__', 'handle', [i]);
const after = await ctx.snapshot();
console.log('what grew:');
for (const d of await after.compare(before, { limit: 3 })) {
  console.log(`  ${d.file}:${d.line}  +${formatBytes(d.sizeDiff)} in ${d.countDiff} blocks`);
}
const collected = await ctx.gc();
console.log(`after gc (${collected} collected): traced ${formatBytes((await ctx.memoryStats()).tracedMemoryCurrent!)}`);
const kept = await ctx.references('_cache');
console.log(`_cache: ${kept.repr.slice(0, 40)}..., held by ${kept.referrers.map((r) => r.description).join('; ')}`);

// Memory leaks: 3. a generator that is not consumed or closed keeps its frame (and its locals) alive.
await ctx.exec('g = rows(10)\nfirst = next(g)');
const open = await ctx.snapshot();
await ctx.exec('g.close()');
const closed = await ctx.snapshot();
const [freed] = await closed.compare(open, { limit: 1 });
console.log(`closing the generator freed ${formatBytes(-freed!.sizeDiff)} at ${freed!.file}:${freed!.line}`);

await Promise.all([before.release(), after.release(), open.release(), closed.release()]);
await pool.close();
