/**
 * Memory observability. Snapshots of traced allocations: top sites, grouping, comparison, release.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemorySnapshot, NotTracingError, PyWorkersError, type AllocationSite } from '../src/index.js';
import { pool } from './helpers.js';

const RUNTIME = /_pyworkers|tracemalloc\.py/;

// Line 2 allocates most (about 6 MB), line 3 about 0.6 MB, line 1 a little.
const ALLOCATE = ['small = [str(i) for i in range(1000)]', 'big = [str(i) * 3 for i in range(100000)]', 'medium = [str(i) for i in range(10000)]'].join('\n');

function checkSites(sites: AllocationSite[]): void {
  for (let i = 1; i < sites.length; i++) assert.ok(sites[i - 1]!.size >= sites[i]!.size, 'biggest first');
  for (const site of sites) {
    assert.ok(!RUNTIME.test(site.file), `the runtime's own allocation ${site.file} is left out`);
    assert.ok(site.size > 0 && site.count > 0);
  }
}

describe('snapshots', () => {
  it('reject with NotTracingError without tracing', async () => {
    const p = await pool({ workers: 2 });
    const ctx = p.context();
    await assert.rejects(p.snapshot(), NotTracingError);
    await assert.rejects(ctx.snapshot(), (e: any) => e instanceof NotTracingError && e instanceof PyWorkersError && e.code === 'ERR_NOT_TRACING');
    await ctx.tracemallocStart();
    await ctx.tracemallocStop();
    await assert.rejects(ctx.snapshot(), /tracemallocStart/);
  });

  it("top site points at the line that allocated most; the runtime's allocations are left out", async () => {
    const p = await pool();
    const ctx = p.context();
    await ctx.tracemallocStart();
    await ctx.exec(ALLOCATE);
    const snap = await ctx.snapshot();
    assert.ok(snap instanceof MemorySnapshot);
    assert.equal(snap.groupBy, 'lineno');
    assert.ok(snap.takenAt instanceof Date);
    assert.deepEqual(snap.workerIds, [ctx.workerId]);
    assert.ok(snap.sites.length > 0 && snap.sites.length <= 10);
    checkSites(snap.sites);
    assert.deepEqual({ file: snap.sites[0]!.file, line: snap.sites[0]!.line }, { file: '<exec>', line: 2 });
    assert.ok(snap.sites[0]!.size > 5e6 && snap.sites[0]!.count >= 100000);
    assert.deepEqual(snap.sites[1]!.line, 3);
    assert.ok(snap.totalSize >= snap.sites.reduce((a, s) => a + s.size, 0));
    assert.ok(snap.totalCount >= snap.sites.reduce((a, s) => a + s.count, 0));
    assert.equal((await ctx.snapshot({ limit: 2 })).sites.length, 2);
  });

  it("groups by file (line null) and by traceback (frames most recent call last, the runtime's frames left out)", async () => {
    const p = await pool();
    const ctx = p.context();
    await ctx.tracemallocStart(8);
    await ctx.exec(
      'src = """\ndef inner(n):\n    return [str(i) * 2 for i in range(n)]\n\ndef outer(n):\n    return inner(n)\n"""\n' +
        "exec(compile(src, 'alloc_demo.py', 'exec'))\nkept = outer(50000)",
    );
    const byFile = await ctx.snapshot({ groupBy: 'filename' });
    assert.equal(byFile.groupBy, 'filename');
    checkSites(byFile.sites);
    assert.equal(byFile.sites[0]!.file, 'alloc_demo.py');
    assert.equal(byFile.sites[0]!.line, null);

    const byTrace = await ctx.snapshot({ groupBy: 'traceback', limit: 3 });
    checkSites(byTrace.sites);
    const top = byTrace.sites[0]!;
    assert.deepEqual({ file: top.file, line: top.line }, { file: 'alloc_demo.py', line: 3 });
    const frames = top.frames!;
    assert.ok(frames.every((f) => !RUNTIME.test(f.file)));
    assert.deepEqual(frames.at(-1), { file: 'alloc_demo.py', line: 3 }); // most recent call last
    assert.deepEqual(frames.slice(0, 3), [
      { file: '<exec>', line: 9 },
      { file: 'alloc_demo.py', line: 6 },
      { file: 'alloc_demo.py', line: 3 },
    ]);
    const byLine = await ctx.snapshot({ limit: 1 });
    assert.equal(byLine.sites[0]!.frames, undefined);
  });

  it('compare/diff shows what grew between two points, sorted by |sizeDiff|', async () => {
    const p = await pool();
    const ctx = p.context();
    await ctx.tracemallocStart();
    await ctx.exec('keep = []');
    const before = await ctx.snapshot();
    await ctx.exec('keep.append([str(i) for i in range(20000)])\nmore = [bytes(100) for _ in range(1000)]');
    const after = await ctx.snapshot();
    const diffs = await after.compare(before);
    assert.ok(diffs.length > 0 && diffs.length <= 10);
    for (let i = 1; i < diffs.length; i++) assert.ok(Math.abs(diffs[i - 1]!.sizeDiff) >= Math.abs(diffs[i]!.sizeDiff));
    assert.deepEqual({ file: diffs[0]!.file, line: diffs[0]!.line }, { file: '<exec>', line: 1 });
    assert.ok(diffs[0]!.sizeDiff > 1e6 && diffs[0]!.countDiff >= 20000);
    assert.equal(diffs[0]!.size, diffs[0]!.sizeDiff); // nothing was there before
    const second = diffs.find((d) => d.line === 2)!;
    assert.ok(second.sizeDiff > 100000 && second.countDiff >= 1000);
    assert.deepEqual(await after.diff(before), diffs);
    assert.equal((await after.compare(before, { limit: 1 })).length, 1);

    await ctx.exec('keep.clear()');
    const freed = await ctx.snapshot();
    const back = await freed.compare(after, { limit: 3 });
    assert.ok(back[0]!.sizeDiff < -1e6 && back[0]!.countDiff <= -20000, 'what was freed shows as negative');
  });

  it('across the pool merges the workers, and compares per worker', async () => {
    const p = await pool({ workers: 2 });
    await p.tracemallocStart();
    const before = await p.snapshot();
    assert.deepEqual([...before.workerIds].sort(), [1, 2]);
    await p.exec('data = [str(i) for i in range(30000)]');
    const after = await p.snapshot({ limit: 5 });
    const one = await p.context().snapshot({ limit: 5 });
    const top = after.sites[0]!;
    assert.deepEqual({ file: top.file, line: top.line }, { file: '<exec>', line: 1 });
    assert.ok(Math.abs(top.size - 2 * one.sites[0]!.size) < 0.1 * top.size, 'both workers counted');
    const diffs = await after.compare(before);
    assert.ok(Math.abs(diffs[0]!.sizeDiff - top.size) < 0.1 * top.size);
    assert.ok(diffs[0]!.countDiff >= 60000);
  });

  it('are released on request, and a worker keeps only its newest 16', async () => {
    const p = await pool();
    const ctx = p.context();
    await ctx.tracemallocStart();
    const first = await ctx.snapshot();
    const second = await ctx.snapshot();
    await second.release();
    await second.release(); // twice is fine
    await assert.rejects(second.compare(first), TypeError);
    await assert.rejects(first.compare(second), /released/);
    const many: MemorySnapshot[] = [];
    for (let i = 0; i < 16; i++) many.push(await ctx.snapshot());
    await assert.rejects(many[15]!.compare(first), /no longer held/); // evicted
    assert.ok(Array.isArray(await many[15]!.compare(many[1]!)));
    await assert.rejects(first.compare('x' as never), TypeError);
  });

  it('check their options', async () => {
    const p = await pool();
    await p.tracemallocStart();
    await assert.rejects(p.snapshot({ groupBy: 'line' as never }), TypeError);
    await assert.rejects(p.snapshot({ limit: 0 }), RangeError);
    await assert.rejects(p.snapshot({ limits: 3 } as never), TypeError);
    const snap = await p.snapshot();
    await assert.rejects(snap.compare(snap, { limit: -1 }), RangeError);
  });
});
