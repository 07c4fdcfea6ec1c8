/**
 * Allocator facts: which allocator the workers use (PYTHONMALLOC) and pymalloc's arenas and pools.
 * Run: node --import tsx examples/memory/allocator.ts
 */
import { createPool, formatBytes } from '../../src/index.js';

const pool = await createPool({ workers: 1 });
const [info] = await pool.allocatorInfo();
console.log(`allocator: ${info!.allocator} (PYTHONMALLOC=${info!.pythonMalloc ?? 'unset'}, debug hooks: ${info!.debugHooks})`);
const pm = info!.pymalloc;
if (pm) {
  console.log(`pymalloc serves requests up to ${pm.smallBlockThreshold} bytes`);
  console.log(`arenas: ${pm.arenasAllocatedCurrent} of ${formatBytes(pm.arenaSize)} (${formatBytes(pm.arenaBytes)}), highwater ${pm.arenasHighwaterMark}`);
  console.log(`blocks: ${formatBytes(pm.bytesInAllocatedBlocks)} in use, ${formatBytes(pm.bytesInAvailableBlocks)} free, ${pm.unusedPools} unused pools`);
}

// While tracemalloc traces, its hooks sit in front of pymalloc and the summary is missing: it says so.
await pool.tracemallocStart();
const [tracing] = await pool.allocatorInfo();
console.log(`while tracing: pymalloc ${tracing!.pymalloc === null ? 'unavailable' : 'available'}: ${tracing!.note}`);
await pool.tracemallocStop();
await pool.close();

// Another allocator: plain malloc for every object.
const plain = await createPool({ workers: 1, env: { PYTHONMALLOC: 'malloc' } });
const [m] = await plain.allocatorInfo();
console.log(`with PYTHONMALLOC=malloc: allocator ${m!.allocator}, pymalloc ${m!.pymalloc === null ? 'unavailable' : 'available'}`);
await plain.close();
