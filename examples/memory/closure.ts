/**
 * A closure that keeps a 1,000,000-element list alive, and how to see it.
 * Run: node --import tsx examples/memory/closure.ts
 */
import { createPool, formatBytes } from '../../src/index.js';

const pool = await createPool({ workers: 1 });
const ctx = pool.context();
await ctx.tracemallocStart();
const traced = async () => (await ctx.memoryStats()).tracedMemoryCurrent!;
const base = await traced();

await ctx.exec(`
def memory_leak():
    large_list = [0] * 1000000
    return lambda: sum(large_list)

calculate = memory_leak()
del memory_leak
`);
console.log(`collected: ${await ctx.gc()}; still traced: +${formatBytes((await traced()) - base)}`); // gc cannot free it

const info = await ctx.references('calculate.__closure__[0].cell_contents');
console.log(`the list (${info.type}, refcount ${info.refcount}) is held by: ${info.referrers.map((r) => r.description).join('; ')}`);

await ctx.exec('del calculate'); // drop the closure: the list goes with it
console.log(`after del calculate: +${formatBytes((await traced()) - base)}`);

await pool.close();
