/**
 * Manual collection: a full collection on every worker, or one generation.
 * Run: node --import tsx examples/memory/manual-gc.ts
 */
import { createPool } from '../../src/index.js';

const pool = await createPool({ workers: 2 });

// Leave some cycles behind on every worker: reference counting alone cannot free them. (Automatic collection is
// off meanwhile, so that all of them wait for the explicit one.)
await pool.gcDisable();
await pool.exec(`
class Node:
    def __init__(self):
        self.other = None

for _ in range(1000):
    a, b = Node(), Node()
    a.other, b.other = b, a
del a, b
`);

const collected = await pool.gc(); // full collection (generation 2) on every worker
console.log(`full collection: ${collected} objects collected`);
await pool.gcEnable();

console.log(`gc(0): ${await pool.gc(0)}`); // youngest objects only
console.log(`gc(1): ${await pool.gc(1)}`); // generations 0 and 1
console.log(`gc(2): ${await pool.gc(2)}`); // full collection

// One worker: a context's.
const ctx = pool.context();
console.log(`context's worker: ${await ctx.gc()}`);

await pool.close();
