/**
 * Streaming: consume Python iterables from TypeScript with `for await`, item by item, flow-controlled, and closed in
 * Python when you stop early.
 *
 *   node --import tsx examples/streaming.ts
 */
import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AbortError, createPool, PythonError } from '../src/index.js';

await using pool = await createPool({ workers: 2 });

// A generator expression
const squares: number[] = [];
for await (const x of pool.streamEval('(x**2 for x in range(5))')) squares.push(x);
console.log('squares:', squares.join(' ')); // 0 1 4 9 16

// Any iterable; toArray() collects every item
console.log('toArray:', await pool.streamEval('iter(range(5))').toArray()); // [0, 1, 2, 3, 4]
console.log('items:', await pool.streamEval('{"a": 1, "b": 2}.items()').toArray()); // [['a', 1], ['b', 2]]

// A generator function of a module, with arguments and kwargs: rows of a CSV file, 1000 at a time
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pyworkers-example-'));
fs.writeFileSync(
  path.join(dir, 'mymodule.py'),
  `import csv

def read_rows(path, size=100):
    with open(path, newline='') as f:
        chunk = []
        for row in csv.reader(f):
            chunk.append(row)
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk
`,
);
const csvPath = path.join(dir, 'data.csv');
fs.writeFileSync(csvPath, Array.from({ length: 2500 }, (_, i) => `${i},item${i}`).join('\n') + '\n');
await pool.exec(`import sys\nsys.path.insert(0, ${JSON.stringify(dir)})`); // or createPool({ pythonPath: [dir] })
let rows = 0;
for await (const chunk of pool.stream<string[][]>('mymodule', 'read_rows', [csvPath], { kwargs: { size: 1000 } })) {
  rows += chunk.length;
  console.log('chunk of', chunk.length, 'rows, first:', chunk[0]!.join(','));
}
console.log('rows:', rows);

// Incremental: each item arrives as soon as Python yields it
await pool.exec('import time\ndef ticks(n):\n    for i in range(n):\n        time.sleep(0.1)\n        yield i');
const started = Date.now();
for await (const tick of pool.stream('__main__', 'ticks', [3])) console.log(`tick ${tick} after ~${Math.round((Date.now() - started) / 100) * 100} ms`);

// Flow control and closing: an infinite generator, read in a context so that we can look at its state after
const ctx = pool.context();
await ctx.exec(`
import itertools
progress = {'produced': 0, 'closed': False}
def numbers():
    try:
        for i in itertools.count():
            progress['produced'] = i + 1
            yield i
    finally:
        progress['closed'] = True
`);
let read = 0;
for await (const n of ctx.stream<number>('__main__', 'numbers', [], { highWaterMark: 100 })) {
  read = n + 1;
  if (read === 1000) break; // closes the generator in Python: its finally block runs
}
const progress = await ctx.eval('progress');
console.log(`read ${read}, produced ${progress.produced} (at most highWaterMark ahead), closed: ${progress.closed}`);

// Cancelling with a signal
const controller = new AbortController();
try {
  for await (const n of ctx.stream<number>('__main__', 'numbers', [], { signal: controller.signal })) if (n === 10) controller.abort();
} catch (error) {
  if (error instanceof AbortError) console.log('aborted:', error.code);
}

// An exception mid-stream: the items before it arrive, then the loop throws
const before: number[] = [];
try {
  for await (const x of pool.streamEval('(10 // (3 - i) for i in range(5))')) before.push(x);
} catch (error) {
  if (error instanceof PythonError) console.log('items before the error:', before, 'then', error.type);
}

// Async generators work too
await pool.exec('import asyncio\nasync def countdown(n):\n    while n:\n        await asyncio.sleep(0.01)\n        yield n\n        n -= 1');
console.log('async:', await pool.stream('__main__', 'countdown', [3]).toArray()); // [3, 2, 1]

await ctx.close();
fs.rmSync(dir, { recursive: true, force: true });
console.log('done');
