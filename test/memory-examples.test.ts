/**
 * Memory observability. Every example of docs/memory.md runs (as users run it) and prints what the docs say.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function run(name: string, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', path.join('examples', 'memory', `${name}.ts`), ...args],
      { cwd: root, timeout: 60_000, env: { ...process.env, NODE_NO_WARNINGS: '1' } },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${name} failed: ${error.message}\n${stdout}\n${stderr}`));
        else resolve(stdout + stderr);
      },
    );
  });
}

const num = (out: string, re: RegExp) => Number(re.exec(out)?.[1]?.replace(/,/g, '') ?? NaN);

describe('docs/memory.md examples', () => {
  it('statistics', async () => {
    const out = await run('statistics');
    assert.match(out, /^gcStats: \[\{"collected":\d+,"collections":\d+,"uncollectable":\d+\}(,\{[^}]+\}){2}\]$/m);
    assert.match(out, /^gcCount: \[\d+,\d+,\d+\]$/m);
    assert.match(out, /^gcThreshold: \[\d+(,\d+)*\]$/m);
    assert.match(out, /^worker 1 \(pid \d+\): rss [\d.]+ MiB, peak [\d.]+ MiB, gc enabled: true, calls: 0$/m);
    assert.match(out, /^pool: 2 workers, rss [\d.]+ MiB/m);
  });

  it('manual collection', async () => {
    const out = await run('manual-gc');
    assert.ok(num(out, /full collection: (\d+) objects collected/) >= 4000, out); // 1000 cycles of 2 on each of 2 workers
    for (const g of [0, 1, 2]) assert.match(out, new RegExp(`^gc\\(${g}\\): \\d+$`, 'm'));
    assert.match(out, /^context's worker: \d+$/m);
  });

  it('when to force gc', async () => {
    const out = await run('when-to-force-gc');
    assert.ok(num(out, /gc collected (\d+) objects/) >= 200_000);
    const [, before, after, unit] = /traced ([\d.]+) MiB -> ([\d.]+) (KiB|MiB)/.exec(out)!;
    assert.ok(Number(before) > 20, out);
    assert.ok(unit === 'KiB' || Number(after) < Number(before) / 10, out);
  });

  it('tracing with frame depth', async () => {
    const out = await run('tracing');
    assert.match(out, /^worker 1: tracedMemoryCurrent \d+, tracedMemoryPeak \d+$/m);
    assert.ok(num(out, /pool: tracedMemoryCurrent \d+, tracedMemoryPeak (\d+)/) > 1_000_000, 'the list comprehension peaked');
    assert.match(out, /^frames: 10$/m);
    assert.match(out, /^tracing after stop: false$/m);
  });

  it('streaming large data', async () => {
    const out = await run('streaming');
    assert.match(out, /eval: +300000 items/);
    assert.match(out, /streamEval: 300000 items/);
    assert.ok(num(out, /streaming used (\d+)x less memory/) >= 10, out);
  });

  it('clearing large objects', async () => {
    const out = await run('clear-large-objects');
    assert.ok(num(out, /gc\(\) collected (\d+) objects left by that call/) >= 200_000);
    assert.match(out, /with gc after the call: result 19999900000, 0 objects left to collect/);
  });

  it('monitoring pool memory', async () => {
    const out = await run('monitor-pool');
    assert.match(out, /worker 1: Python memory pressure: \d+\/\d+/);
    assert.match(out, /^collected \d+ objects$/m);
    assert.match(out, /^pool rss [\d.]+ MiB, calls \d+$/m);
  });

  it('understanding gc stats and thresholds', async () => {
    const out = await run('gc-stats');
    assert.match(out, /^thresholds: \[\d+(,\d+)*\]$/m);
    assert.match(out, /generation 0 ran more often than generation 2: true/);
    const [, higher, lower] = /threshold 5000: (\d+) instead of (\d+)/.exec(out)!;
    assert.ok(Number(higher) < Number(lower), out);
  });

  it('uncollectable objects', async () => {
    const out = await run('uncollectable');
    assert.match(out, /^uncollectable: 0$/m);
    const held = num(out, /gc\.garbage holds (\d+) objects/);
    assert.ok(held >= 6, out); // 3 sessions and their dicts, and whatever else became garbage meanwhile
    for (const user of ['ann', 'bob', 'cy']) {
      assert.match(out, new RegExp(`^  Session: Session\\('${user}'\\)$`, 'm'));
      assert.match(out, new RegExp(`^  dict: \\{'owner': Session\\('${user}'\\)\\}$`, 'm'));
    }
    assert.equal(num(out, /^cleared: (\d+)$/m), held);
    assert.ok(num(out, /^freed for good: (\d+)$/m) >= held);
  });

  it('troubleshooting', async () => {
    const out = await run('troubleshooting');
    assert.match(out, /what grew:\n {2}<exec>:5 {2}\+[\d.]+ (KiB|MiB) in \d+ blocks/);
    assert.match(out, /_cache: .*held by namespace of context \d+, name '_cache'/);
    assert.match(out, /closing the generator freed [\d.]+ KiB at <exec>:10/);
  });

  it('worker memory growth: exec versus eval with locals', async () => {
    const out = await run('worker-growth');
    assert.ok(num(out, /exec x1\.\.x10: traced \+([\d.]+) MiB/) > 70, out);
    assert.ok(num(out, /rss \+([\d.]+) MiB/) > 60, out);
    assert.match(out, /eval len\(data\) x10: traced [+-][\d.]+ (B|KiB)$/m);
    assert.match(out, /after del: traced [\d.]+ (B|KiB)$/m);
  });

  it('tutorial: a cycle of objects with __del__ freed by an explicit collection', async () => {
    const out = await run('cycle-del');
    assert.match(out, /\[python\] Object: foo created\n\[python\] Object: bar created\ndeleted the names: nothing freed yet\n/);
    assert.match(out, /\[python\] Object: foo deleted \n\[python\] Object: bar deleted \ngc\(\) collected (\d+) objects/);
    assert.ok(num(out, /gc\(\) collected (\d+) objects/) >= 2);
  });

  it('tutorial: a closure keeps a 1,000,000-element list alive', async () => {
    const out = await run('closure');
    assert.match(out, /still traced: \+7\.\d MiB/);
    assert.match(out, /the list \(list, refcount 1\) is held by: closure variable 'large_list' of function memory_leak\.<locals>\.<lambda>/);
    assert.match(out, /after del calculate: \+[\d.]+ (B|KiB)$/m);
  });

  it('tutorial: reference counts around b = a / del b', async () => {
    const out = await run('refcount');
    assert.match(out, /^a = \[\] +-> 1\nb = a +-> 2\ndel b +-> 1\nsys\.getrefcount\(a\) -> 2$/m);
    // (in the order gc.get_referrers finds them, which depends on when the collector last ran)
    assert.match(out, /refcount 2, referrers:\n( {2}dict: namespace of context \d+, name 'a'\n {2}dict: dict, key 'item'| {2}dict: dict, key 'item'\n {2}dict: namespace of context \d+, name 'a')/);
  });

  it('tutorial: a tracemalloc top 10 by line', async () => {
    const out = await run('top10');
    const lines = out.split('\n').filter((l) => l.startsWith('#'));
    assert.match(out, /^\[Top 10\] memory consumption lines$/m);
    assert.ok(lines.length >= 3 && lines.length <= 10);
    assert.match(lines[0]!, /^#0: profiling_demo\.py:5: [\d.]+ KiB$/); // the list comprehension of create_list
    assert.match(lines[1]!, /^#1: profiling_demo\.py:9: [\d.]+ KiB$/); // create_strings
    assert.ok(lines.every((l) => !/_pyworkers|tracemalloc\.py/.test(l)));
  });

  it('allocator facts', async () => {
    const out = await run('allocator');
    assert.match(out, /^allocator: pymalloc \(PYTHONMALLOC=unset, debug hooks: false\)$/m);
    assert.match(out, /^pymalloc serves requests up to \d+ bytes$/m);
    assert.match(out, /^arenas: \d+ of 1\.0 MiB/m);
    assert.match(out, /^while tracing: pymalloc unavailable: .*tracemalloc/m);
    assert.match(out, /^with PYTHONMALLOC=malloc: allocator malloc, pymalloc unavailable$/m);
  });

  it('the cost of tracemalloc (quick run)', async () => {
    const out = await run('tracemalloc-cost', '--quick');
    assert.match(out, /^off +[\d.]+ ms {2}x1\.0$/m);
    const one = num(out, /^1 frame +[\d.]+ ms {2}x([\d.]+)/m);
    const ten = num(out, /^10 frames +[\d.]+ ms {2}x([\d.]+)/m);
    assert.ok(one > 1 && ten > one, out);
  });
});
