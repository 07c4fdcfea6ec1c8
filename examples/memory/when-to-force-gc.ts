/**
 * When to force gc: after processing a large dataset, before measuring memory, and under memory pressure.
 * Run: node --import tsx examples/memory/when-to-force-gc.ts
 */
import { createPool, formatBytes } from '../../src/index.js';

const pool = await createPool({ workers: 1 });
const ctx = pool.context();
await ctx.tracemallocStart();

// Processing builds a graph with cycles (parents and children point at each other).
await ctx.exec(`
def process(n):
    nodes = []
    for i in range(n):
        node = {'id': i, 'children': []}
        node['parent'] = nodes[-1] if nodes else None
        if nodes:
            nodes[-1]['children'].append(node)
        node['self'] = node
        nodes.append(node)
    return len(nodes)
`);
await ctx.gcDisable(); // as if the thresholds had not been reached yet
console.log('processed', await ctx.call('__main__', 'process', [200_000]), 'nodes');

// 1. After processing a large dataset, and 2. before measuring: what is left is only garbage waiting for gc.
const before = await ctx.memoryStats();
const collected = await ctx.gc();
const after = await ctx.memoryStats();
console.log(`gc collected ${collected} objects: traced ${formatBytes(before.tracedMemoryCurrent!)} -> ${formatBytes(after.tracedMemoryCurrent!)}`);
await ctx.gcEnable();

// 3. Under memory pressure: collect when the youngest generation nears its threshold (see monitor-pool.ts).
const s = await ctx.memoryStats();
if (s.gcThreshold[0]! > 0 && s.gcCount[0] > s.gcThreshold[0]! * 0.8) await ctx.gc();
console.log(`gen0 ${s.gcCount[0]} of ${s.gcThreshold[0]}`);

await pool.close();
