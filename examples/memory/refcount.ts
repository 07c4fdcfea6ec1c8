/**
 * Reference counts going up and down around b = a / del b.
 * Run: node --import tsx examples/memory/refcount.ts
 */
import { createPool } from '../../src/index.js';

const pool = await createPool({ workers: 1 });
const ctx = pool.context();

const count = async () => (await ctx.references('a')).refcount; // net of the probe: sys.getrefcount(a) - 1

await ctx.exec('a = []');
console.log('a = []  ->', await count());
await ctx.exec('b = a');
console.log('b = a   ->', await count());
await ctx.exec('del b');
console.log('del b   ->', await count());

// sys.getrefcount counts its own argument too: one more.
console.log('sys.getrefcount(a) ->', await ctx.eval('__import__("sys").getrefcount(a)'));

// Who refers to it?
await ctx.exec('box = {"item": a}');
const info = await ctx.references('a');
console.log(`refcount ${info.refcount}, referrers:`);
for (const r of info.referrers) console.log(`  ${r.type}: ${r.description}`);

await pool.close();
