/**
 * Uncollectable objects, gc.garbage and DEBUG_SAVEALL: what a collection frees, and where to look for leaks.
 * Run: node --import tsx examples/memory/uncollectable.ts
 */
import { createPool } from '../../src/index.js';

const pool = await createPool({ workers: 1, forwardOutput: false });
const ctx = pool.context();

// 1. Monitor the uncollectable count (since Python 3.4, cycles with __del__ are collectable: it stays 0).
const uncollectable = async () => (await ctx.memoryStats()).gcStats.reduce((n, g) => n + g.uncollectable, 0);
console.log('uncollectable:', await uncollectable());

// 2. Find what a collection frees: with DEBUG_SAVEALL, collected objects go to gc.garbage instead of away.
await ctx.gc(); // start from a clean slate: what is garbage already is not ours
await ctx.gcSetDebug('DEBUG_SAVEALL');
await ctx.exec(`
class Session:
    def __init__(self, user):
        self.user = user
        self.cache = {'owner': self}     # a cycle through a dict
    def __repr__(self):
        return f'Session({self.user!r})'

for user in ['ann', 'bob', 'cy']:
    Session(user)
`);
console.log('collected:', await ctx.gc());
const garbage = await ctx.gcGarbage({ limit: 100, reprLength: 60 });
console.log(`gc.garbage holds ${garbage.count} objects`);
// (Other garbage made meanwhile is saved too: show ours.)
for (const o of garbage.objects.filter((g) => g.repr.includes('Session'))) console.log(`  ${o.type}: ${o.repr}`);
console.log('uncollectable:', await uncollectable(), '(saved objects count as collected)');

// 3. Done looking: turn the flag off and clear gc.garbage, so the objects can go.
await ctx.gcSetDebug(0);
console.log('cleared:', await ctx.gcClearGarbage());
console.log('freed for good:', await ctx.gc());

await pool.close();
