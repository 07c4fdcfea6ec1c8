/**
 * Memory observability. The collector's controls, gc.garbage and debug flags, reference counts and
 * referrers, allocator facts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PythonError } from '../src/index.js';
import { pool } from './helpers.js';

const CYCLE_WITH_DEL = `
class SomeObject:
    def __init__(self, name):
        self.name = name
        self.ref = None
    def __del__(self):
        print(f"Object: {self.name} deleted")
    def __repr__(self):
        return f"SomeObject({self.name!r}) " + "x" * 500

foo = SomeObject("foo")
bar = SomeObject("bar")
foo.ref = bar
bar.ref = foo
del foo
del bar
`;

describe('the collector', () => {
  it('is turned off and on, and says whether it is on (pool and context)', async () => {
    const p = await pool({ workers: 2 });
    const ctx = p.context();
    assert.equal(await p.gcIsEnabled(), true);
    await p.gcDisable();
    assert.equal(await p.gcIsEnabled(), false);
    assert.equal(await ctx.gcIsEnabled(), false);
    assert.deepEqual((await p.memoryStats()).workers.map((w) => w.gcEnabled), [false, false]);
    assert.equal(await p.eval('__import__("gc").isenabled()'), false);
    await ctx.gcEnable();
    assert.equal(await ctx.gcIsEnabled(), true);
    assert.equal(await p.gcIsEnabled(), false, 'one worker is still off');
    await p.gcEnable();
    assert.equal(await p.gcIsEnabled(), true);
    // A manual collection works with automatic collection off.
    await ctx.gcDisable();
    await ctx.exec('class C:\n    pass\nc = C(); c.me = c\ndel c');
    assert.ok((await ctx.gc()) > 0);
  });

  it('reads and sets the thresholds', async () => {
    const p = await pool({ workers: 2 });
    const ctx = p.context();
    const original = await p.gcGetThreshold();
    assert.deepEqual(original, await p.eval('list(__import__("gc").get_threshold())'));
    await p.gcSetThreshold(2000, 20, 5);
    assert.deepEqual(await p.gcGetThreshold(), [2000, 20, 5]);
    assert.deepEqual(await ctx.gcGetThreshold(), [2000, 20, 5]);
    assert.deepEqual((await p.memoryStats()).workers.map((w) => w.gcThreshold), [[2000, 20, 5], [2000, 20, 5]]);
    await ctx.gcSetThreshold(500);
    assert.deepEqual(await ctx.gcGetThreshold(), [500, 20, 5]);
    await assert.rejects(p.gcSetThreshold(-1), RangeError);
    await assert.rejects(p.gcSetThreshold(1.5), RangeError);
    await assert.rejects(p.gcSetThreshold(), TypeError);
    await assert.rejects(ctx.gcSetThreshold(1, 2, 3, 4), TypeError);
    await assert.rejects(ctx.gcSetThreshold('700' as never), TypeError);
  });

  it('sets debug flags by name or mask', async () => {
    const p = await pool();
    const ctx = p.context();
    assert.deepEqual(await p.gcGetDebug(), []);
    await p.gcSetDebug('DEBUG_SAVEALL');
    assert.deepEqual(await ctx.gcGetDebug(), ['DEBUG_SAVEALL']);
    await ctx.gcSetDebug(['saveall', 'STATS']);
    assert.deepEqual(await ctx.gcGetDebug(), ['DEBUG_STATS', 'DEBUG_SAVEALL']);
    await ctx.gcSetDebug('DEBUG_LEAK');
    assert.deepEqual(await ctx.gcGetDebug(), ['DEBUG_COLLECTABLE', 'DEBUG_UNCOLLECTABLE', 'DEBUG_SAVEALL']);
    assert.equal(await ctx.eval('__import__("gc").get_debug() == __import__("gc").DEBUG_LEAK'), true);
    await ctx.gcSetDebug(0);
    assert.deepEqual(await ctx.gcGetDebug(), []);
    await ctx.gcSetDebug(32);
    assert.deepEqual(await ctx.gcGetDebug(), ['DEBUG_SAVEALL']);
    await ctx.gcSetDebug([]);
    assert.deepEqual(await ctx.gcGetDebug(), []);
    await assert.rejects(p.gcSetDebug('DEBUG_NOPE' as never), TypeError);
    await assert.rejects(p.gcSetDebug(-1), RangeError);
  });

  it('a cycle of objects with __del__ is freed by an explicit collection; DEBUG_SAVEALL keeps it in gc.garbage', async () => {
    const p = await pool();
    const ctx = p.context();
    let out = '';
    p.on('stdout', (e) => (out += e.text));
    await ctx.gc();
    await ctx.gcDisable(); // so that only the explicit collection frees the cycle
    await ctx.exec(CYCLE_WITH_DEL);
    assert.equal(out, '', 'not freed by reference counting');
    assert.ok((await ctx.gc()) >= 2);
    await ctx.eval('0');
    assert.match(out, /Object: foo deleted/);
    assert.match(out, /Object: bar deleted/);
    assert.deepEqual(await ctx.gcGarbage(), { workerId: ctx.workerId, count: 0, objects: [] });

    await ctx.gcSetDebug('DEBUG_SAVEALL');
    await ctx.exec(CYCLE_WITH_DEL);
    const collected = await ctx.gc();
    assert.ok(collected >= 2, 'saved objects count as collected');
    const garbage = await ctx.gcGarbage({ reprLength: 50 });
    assert.ok(garbage.count >= 2);
    const saved = garbage.objects.filter((o) => o.type === 'SomeObject');
    assert.equal(saved.length, 2);
    for (const o of saved) {
      assert.ok(o.repr.length <= 50, o.repr);
      assert.match(o.repr, /^SomeObject\('(foo|bar)'\) x+\.\.\.$/);
    }
    assert.equal((await ctx.gcGarbage({ limit: 1 })).objects.length, 1);
    const pooled = await p.gcGarbage();
    assert.equal(pooled.length, 1);
    assert.equal(pooled[0]!.count, garbage.count);
    const stats = await ctx.memoryStats();
    assert.equal(stats.gcStats.reduce((a, g) => a + g.uncollectable, 0), 0, 'since 3.4 such cycles are collectable');

    await ctx.gcSetDebug(0);
    assert.equal(await ctx.gcClearGarbage(), garbage.count);
    assert.equal((await ctx.gcGarbage()).count, 0);
    assert.ok((await ctx.gc()) >= 2, 'freed for good now');
    await ctx.gcEnable();
  });
});

describe('references', () => {
  it('counts references around b = a and del b (net of the probe)', async () => {
    const p = await pool();
    const ctx = p.context();
    await ctx.exec('a = []');
    const one = await ctx.references('a');
    assert.equal(one.refcount, 1);
    assert.equal(one.type, 'list');
    assert.equal(one.repr, '[]');
    assert.equal(one.workerId, ctx.workerId);
    assert.equal(one.referrerCount, 1);
    assert.equal(one.referrers[0]!.type, 'dict');
    assert.match(one.referrers[0]!.description, new RegExp(`namespace of context ${ctx.id}, name 'a'`));
    await ctx.exec('b = a');
    assert.equal((await ctx.references('a')).refcount, 2);
    assert.equal(await ctx.eval('__import__("sys").getrefcount(a)'), 3, 'getrefcount counts its argument too');
    await ctx.exec('del b');
    assert.equal((await ctx.references('a')).refcount, 1);
    await ctx.exec('holder = {"x": a, "y": [a, a]}');
    const more = await ctx.references('a');
    assert.equal(more.refcount, 4);
    assert.ok(more.referrers.some((r) => r.type === 'list' && /index 0, 1/.test(r.description)));
    assert.ok(more.referrers.some((r) => r.type === 'dict' && /key 'x'/.test(r.description)));
    assert.equal((await ctx.references('a', { limit: 1 })).referrers.length, 1);
    assert.equal((await ctx.references('[1, 2]')).refcount, 0, 'a new object has no other reference');
  });

  it("shows what keeps a closure's list alive", async () => {
    const p = await pool();
    const ctx = p.context();
    await ctx.exec('def memory_leak():\n    large_list = [0] * 1000000\n    return lambda: sum(large_list)\ncalculate = memory_leak()\ndel memory_leak');
    const info = await ctx.references('calculate.__closure__[0].cell_contents');
    assert.equal(info.refcount, 1);
    assert.equal(info.type, 'list');
    assert.ok(info.repr.length < 100);
    assert.equal(info.referrers[0]!.type, 'cell');
    assert.match(info.referrers[0]!.description, /closure variable 'large_list' of function memory_leak\.<locals>\.<lambda>/);
  });

  it('rejects bad expressions', async () => {
    const p = await pool();
    const ctx = p.context();
    await assert.rejects(ctx.references('nope'), (e: any) => e instanceof PythonError && e.type === 'NameError');
    await assert.rejects(ctx.references(''), TypeError);
    await assert.rejects(ctx.references(3 as never), TypeError);
  });
});

describe('allocator facts', () => {
  it("says which allocator a worker uses and gives pymalloc's arena/pool summary", async () => {
    const p = await pool();
    let stderr = '';
    p.on('stderr', (e) => (stderr += e.text));
    const [info] = await p.allocatorInfo();
    assert.equal(info!.pythonMalloc, null);
    assert.equal(info!.withPymalloc, true);
    assert.equal(info!.allocator, 'pymalloc');
    assert.equal(info!.debugHooks, false);
    assert.equal(info!.tracing, false);
    assert.equal(info!.note, null);
    assert.ok(info!.allocatedBlocks > 1000);
    const pm = info!.pymalloc!;
    assert.ok(pm.smallBlockThreshold >= 256);
    assert.ok(pm.arenasAllocatedCurrent >= 1 && pm.arenaSize >= 256 * 1024);
    assert.equal(pm.arenaBytes, pm.arenasAllocatedCurrent * pm.arenaSize);
    assert.ok(pm.bytesInAllocatedBlocks > 0 && pm.total >= pm.bytesInAllocatedBlocks);
    assert.ok(pm.sizeClasses.length > 0 && pm.sizeClasses.every((c) => c.size > 0 && c.pools > 0));
    assert.equal(info!.text, undefined);
    const ctx = p.context();
    const withText = await ctx.allocatorInfo({ text: true });
    assert.match(withText.text!, /Small block threshold/);
    await ctx.eval('0');
    assert.doesNotMatch(stderr, /Small block threshold|arenas/, "the report does not leak to the worker's stderr");
  });

  it('says so, rather than failing, while tracemalloc traces', async () => {
    const p = await pool();
    const ctx = p.context();
    await ctx.tracemallocStart();
    const info = await ctx.allocatorInfo();
    assert.equal(info.tracing, true);
    assert.equal(info.allocator, 'pymalloc');
    assert.equal(info.pymalloc, null);
    assert.match(info.note!, /tracemalloc/);
    await ctx.tracemallocStop();
    assert.notEqual((await ctx.allocatorInfo()).pymalloc, null);
  });

  it('follows PYTHONMALLOC', async () => {
    const p = await pool({ env: { PYTHONMALLOC: 'malloc' } });
    const [info] = await p.allocatorInfo();
    assert.equal(info!.pythonMalloc, 'malloc');
    assert.equal(info!.allocator, 'malloc');
    assert.equal(info!.pymalloc, null);
    assert.match(info!.note!, /does not use pymalloc/);
    const debug = await pool({ env: { PYTHONMALLOC: 'pymalloc_debug' } });
    const [d] = await debug.allocatorInfo();
    assert.equal(d!.allocator, 'pymalloc_debug');
    assert.equal(d!.debugHooks, true);
    assert.notEqual(d!.pymalloc, null);
  });
});
