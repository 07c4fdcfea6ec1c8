/**
 * Clearing large objects: Python frees an object when its last reference goes; collect cycles after big jobs.
 * Run: node --import tsx examples/memory/clear-large-objects.ts
 */
import { createPool, formatBytes } from '../../src/index.js';

const pool = await createPool({ workers: 1 });
await pool.exec(`
class Record:
    def __init__(self, value):
        self.value = value
        self.owner = self          # a cycle: only the collector frees it

def handle(data):
    records = [Record(x) for x in data]
    return sum(r.value for r in records)
`);
await pool.gcDisable(); // make the effect visible whatever the thresholds

async function processLargeData(data: number[]): Promise<number> {
  const result = await pool.call<number>('__main__', 'handle', [data]);
  await pool.gc(); // clean up the Python side
  return result;
}

const data = Array.from({ length: 200_000 }, (_, i) => i);
const rssBefore = (await pool.memoryStats()).totals.rss;
const withoutGc = await pool.call<number>('__main__', 'handle', [data]);
const grown = (await pool.memoryStats()).totals.rss;
console.log(`without gc: result ${withoutGc}, rss ${formatBytes(rssBefore)} -> ${formatBytes(grown)}`);
const collected = await pool.gc();
console.log(`gc() collected ${collected} objects left by that call`);

const result = await processLargeData(data);
console.log(`with gc after the call: result ${result}, ${await pool.gc()} objects left to collect`);

await pool.gcEnable();
await pool.close();
