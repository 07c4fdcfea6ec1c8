/**
 * A cycle of objects with __del__ freed by an explicit collection.
 * Run: node --import tsx examples/memory/cycle-del.ts
 */
import { createPool } from '../../src/index.js';

const pool = await createPool({ workers: 1, forwardOutput: false });
pool.on('stdout', (e) => process.stdout.write(e.text.replace(/^(?=.)/gm, '[python] ')));
const ctx = pool.context();
await ctx.gcDisable(); // so that only the explicit collection below frees the cycle

await ctx.exec(`
from typing import Optional

class SomeObject:
    def __init__(self, name):
        self.name = name
        self.ref: Optional[SomeObject] = None
        print(f"Object: {name} created")

    def __del__(self):
        print(f"Object: {self.name} deleted ")

foo = SomeObject("foo")
bar = SomeObject("bar")

# Circular reference
foo.ref = bar
bar.ref = foo

# Due to the circular reference, the objects are not garbage collected
del foo
del bar
`);
console.log('deleted the names: nothing freed yet');

// The garbage collector should be manually triggered.
const collected = await ctx.gc();
await ctx.eval('0'); // let the worker's output arrive
console.log(`gc() collected ${collected} objects`);

await ctx.gcEnable();
await pool.close();
