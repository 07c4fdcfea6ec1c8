/**
 * Progress from a long Python loop, reported by calling a TypeScript function (a callback).
 *
 *   node --import tsx examples/progress-callback.ts
 */
import { createPool } from '../src/index.js';

const updates: number[] = [];
await using pool = await createPool({
  workers: 1,
  functions: {
    // Called from Python as host.progress(done, total); returns nothing.
    progress: (done: number, total: number) => {
      const percent = Math.round((100 * done) / total);
      updates.push(percent);
      process.stdout.write(`\rprocessing ${'#'.repeat(percent / 5).padEnd(20, '.')} ${percent}%`);
    },
  },
});

await pool.exec(`
from pyworkers import host

def process(items):
    total, out = len(items), []
    for i, item in enumerate(items, 1):
        out.append(sum(k * k for k in range(item)))   # the work
        if i % 50 == 0 or i == total:
            host.progress(i, total)                   # blocks until the TypeScript function returned
    return sum(out)
`);

const result = await pool.call('__main__', 'process', [Array.from({ length: 500 }, (_, i) => 2000 + i)]);
process.stdout.write('\n');
console.log(`result ${result}; ${updates.length} progress updates, the last at ${updates.at(-1)}%`);
