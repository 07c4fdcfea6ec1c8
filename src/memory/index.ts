/**
 * Memory observability: statistics, the collector, tracing, snapshots, references and allocator facts, per
 * worker and across the pool. See docs/memory.md.
 */
export { MemorySnapshot } from './snapshot.js';
export { contextMemory, poolMemory } from './operations.js';
export type * from './types.js';
