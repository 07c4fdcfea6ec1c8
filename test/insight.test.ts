/**
 * Memory insight: the leak finder names the guilty line first and what keeps its memory alive, stays quiet on
 * clean code (plateaus are not leaks), and `pyworkers run` does the same at a sampler's cost. The tutorials' own
 * cases run through `pyworkers run`. See docs/memory.md.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createPool, type LeakReport, type Pool } from '../src/index.js';
import { hintsFor } from '../src/cli/hints.js';
import type { RunReport } from '../src/cli/report.js';
import { rssTrend } from '../src/memory/leaks.js';


const ROOT = path.resolve(import.meta.dirname, '..');

/** Workloads written as services write them (each function is one call); leaky ones mark their line `# LEAK name`. */
const WORKLOADS = readFileSync(path.join(ROOT, 'test', 'fixtures', 'leak_suite.py'), 'utf8');

const lineOf = (tag: string): number => WORKLOADS.split('\n').findIndex((l) => l.includes(`# LEAK ${tag}`)) + 1;

const LEAKY: Array<[string, RegExp]> = [
  ['module_cache', /^__main__\.w_cache\['req-\d+'\]$/],
  ['closures', /^__main__\.callbacks\[\d+\]\.__closure__ -> buffer$/],
  ['class_list', /^Handler\.history\[\d+\]/],
  ['unbounded_lru', /^__main__\.render's lru_cache\[/],
  ['parked_generators', /^__main__\.parked\[\d+\] \(generator numbers\(\) suspended at line \d+\), local '(batch|item)'/],
  ['logging_handlers', /handlers\[\d+\]/],
  ['del_cycles', /^gc\.garbage\[\d+\]/],
];
const CLEAN = ['churn', 'bounded_deque', 'bounded_lru', 'overwritten'];

describe('findLeaks: the guilty line first, and what keeps it alive', () => {
  let pool: Pool;
  const reports = new Map<string, LeakReport>();
  before(async () => {
    pool = await createPool({ workers: 1, forwardOutput: false, setup: WORKLOADS });
  });
  after(() => pool.close());

  for (const [fn, root] of LEAKY) {
    it(`${fn}: steady, its line first, kept alive by ${root.source}`, async () => {
      const report = await pool.findLeaks({ module: '__main__', fn }); // the default iteration count
      reports.set(fn, report);
      const first = report.leaks[0];
      assert.ok(first, `no leak found: ${JSON.stringify(report.sites.slice(0, 3))}`);
      assert.equal(first.line, lineOf(fn), `first site ${first.file}:${first.line}, expected line ${lineOf(fn)}`);
      assert.equal(first.shape, 'steady');
      assert.match(first.keptAliveBy ?? '(none)', root);
    });
  }

  for (const fn of CLEAN) {
    it(`${fn}: no leak reported`, async () => {
      const report = await pool.findLeaks({ module: '__main__', fn });
      assert.deepEqual(report.leaks.map((s) => `${s.line} ${s.shape}`), []);
    });
  }

  it('a deque that fills then stays flat is a plateau, not a leak', async () => {
    const report = await pool.findLeaks({ module: '__main__', fn: 'bounded_deque' }, { iterations: 60 });
    assert.equal(report.leaks.length, 0);
    assert.ok(report.plateaus.some((s) => s.line === WORKLOADS.split('\n').findIndex((l) => l.includes('recent.append')) + 1), JSON.stringify(report.sites));
  });

  it('library frames are folded beneath the user line; two call paths to one line are told apart', async () => {
    const p = await createPool({
      workers: 1,
      forwardOutput: false,
      setup: `
import json
kept = []
def keep(text):
    kept.append(json.loads(text))
def from_a():
    keep('{"a": [1, 2, 3, 4, 5, 6, 7, 8]}')
def from_b():
    keep('{"b": [1, 2, 3, 4, 5, 6, 7, 8]}')
    keep('{"c": [1, 2, 3, 4, 5, 6, 7, 8]}')
def both():
    from_a()
    from_b()
`,
    });
    try {
      const report = await p.findLeaks({ module: '__main__', fn: 'both' }, { frames: 6 });
      const first = report.leaks[0]!;
      assert.equal(first.line, 5, 'the user line that called json.loads');
      assert.match(first.library?.file ?? '', /json/);
      assert.ok(first.paths.length >= 2, JSON.stringify(first.paths));
      const [big, small] = first.paths;
      assert.ok(big!.bytesPerIteration > small!.bytesPerIteration, 'from_b keeps twice what from_a keeps');
      assert.ok(big!.frames.some((f) => f.line === 9 || f.line === 10));
    } finally {
      await p.close();
    }
  });

  it('RSS growth per call is a trend: churn does not read as growth', () => {
    const churn = Array.from({ length: 60 }, (_, i) => 100e6 + (i % 3 === 0 ? 30e6 : 0));
    assert.ok(Math.abs(rssTrend(churn)) < 50_000, String(rssTrend(churn)));
    const steady = Array.from({ length: 60 }, (_, i) => 100e6 + i * 1e5 + (i % 3 === 0 ? 30e6 : 0));
    assert.ok(Math.abs(rssTrend(steady) - 1e5) < 2e4, String(rssTrend(steady)));
  });
});

describe('pyworkers leaks (the command)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pyworkers-insight-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  it('names the root under the guilty line, and quotes only steady growth in its headline', async () => {
    writeFileSync(path.join(dir, 'service.py'), WORKLOADS);
    const { stdout, code } = await cli(['leaks', `${path.join(dir, 'service.py')}:module_cache`], dir);
    assert.equal(code, 0, stdout);
    assert.match(stdout, /memory grows steadily by about [\d.]+ (B|KiB) per call/);
    assert.match(stdout, new RegExp(`service\\.py:${lineOf('module_cache')} module_cache\\(\\)`));
    assert.match(stdout, /↳ kept alive by service\.w_cache\['req-\d+'\]/);
    const plateau = await cli(['leaks', `${path.join(dir, 'service.py')}:bounded_deque`, '--iterations', '60'], dir);
    assert.match(plateau.stdout, /no steady growth found/);
    assert.match(plateau.stdout, /grew, then plateaued/);
  });
});

describe('pyworkers run: at a sampler\'s cost, with the root', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pyworkers-insight-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const script = (name: string, text: string) => {
    const file = path.join(dir, name);
    writeFileSync(file, text);
    return file;
  };
  const runJson = async (file: string, ...args: string[]) => {
    const r = await cli(['run', '--json', '-', ...args, file], dir);
    return JSON.parse(r.stdout) as RunReport;
  };

  it('the default mode samples; a leaky loop: its line first, kept alive by its module global', async () => {
    const file = script('loop.py', `import time
cache = {}
def handle(i):
    cache['req-%d' % i] = [i] * 500
for i in range(4000):
    handle(i)
    if i % 200 == 0:
        time.sleep(0.01)
`);
    const report = await runJson(file);
    assert.equal(report.settings.mode, 'sample');
    assert.ok(report.sampling && report.sampling.windows >= 1);
    assert.equal(report.top[0]!.line, 4);
    assert.match(report.top[0]!.keptAliveBy ?? '', /^__main__\.cache\['req-\d+'\]$/);
    const hint = report.hints.find((h) => h.id === 'sampled-growth');
    assert.equal(hint?.source, 'sampled tracing');
    assert.match(hint!.text, /loop\.py:4 grew the most/);
    const text = await cli(['run', '-q', file], dir);
    assert.match(text.stdout, /Lines whose memory grew while traced/);
    assert.match(text.stdout, /kept alive by __main__\.cache\['req-\d+'\]/);
  });

  it('a clean loop that churns: no growth hint', async () => {
    const file = script('churn.py', `import time
def work(n):
    rows = [{'id': k, 'name': 'row-%d' % k} for k in range(n)]
    return sum(len(r['name']) for r in rows)
for i in range(300):
    work(2000)
    if i % 20 == 0:
        time.sleep(0.01)
`);
    const report = await runJson(file);
    assert.deepEqual(report.hints.filter((h) => h.id === 'sampled-growth' || h.id === 'growth'), []);
  });

  it('--mode full traces everything and follows the biggest lines to their roots too', async () => {
    const file = script('held.py', `class Registry:
    items = []
for i in range(2000):
    Registry.items.append(str(i) * 50)
`);
    const report = await runJson(file, '--mode', 'full');
    assert.equal(report.settings.mode, 'full');
    const row = report.top.find((s) => s.line === 4)!;
    assert.match(row.keptAliveBy ?? '', /^Registry\.items\[\d+\]$/);
  });

  it("--mode takes 'sample' or 'full', not with --no-trace", async () => {
    const file = script('x.py', 'x = 1\n');
    assert.equal((await cli(['run', '--mode', 'fast', file], dir)).code, 2);
    assert.equal((await cli(['run', '--mode', 'full', '--no-trace', file], dir)).code, 2);
  });

  describe("the tutorials' cases", () => {
    it('the closure that keeps a large list', async () => {
      const file = script('closure.py', `def memory_leak():
    large_list = [0] * 1000000
    return lambda: sum(large_list)

calculate = memory_leak()
del memory_leak
print(calculate())
`);
      const report = await runJson(file);
      assert.equal(report.top[0]!.line, 2);
      assert.equal(report.top[0]!.keptAliveBy, '__main__.calculate.__closure__ -> large_list');
    });

    it('a cycle of objects with __del__ kept in gc.garbage by DEBUG_SAVEALL', async () => {
      const file = script('cycles.py', `import gc

class SomeObject:
    def __init__(self, name):
        self.name = name
        self.ref = None
        self.data = [name] * 20000

    def __del__(self):
        print(f"Object: {self.name} deleted")

gc.set_debug(gc.DEBUG_SAVEALL)
foo = SomeObject("foo")
bar = SomeObject("bar")
foo.ref = bar
bar.ref = foo
del foo
del bar
gc.collect()
`);
      const report = await runJson(file);
      const row = report.top.find((s) => s.line === 7)!;
      assert.ok(row, JSON.stringify(report.top.slice(0, 3)));
      assert.equal(report.top[0]!.line, 7);
      assert.match(row.keptAliveBy ?? '', /^gc\.garbage\[\d+\]/);
      assert.ok(report.gc.garbage.count > 0);
      assert.ok(report.hints.some((h) => h.id === 'uncollectable'));
    });

    it('a list kept whole against a generator parked halfway', async () => {
      const file = script('generators.py', `def create_list():
    return [str(number) for number in range(100000)]

def generate_numbers(number):
    seen = []
    for item in range(number):
        seen.append(str(item) * 10)
        yield item

numbers = create_list()
parked = generate_numbers(100000)
for n in parked:
    if n > 20000:
        break
`);
      const report = await runJson(file);
      const list = report.top.find((s) => s.line === 2);
      const gen = report.top.find((s) => s.line === 7);
      assert.match(list?.keptAliveBy ?? '', /^__main__\.numbers\[\d+\]$/);
      assert.match(gen?.keptAliveBy ?? '', /^__main__\.parked \(generator generate_numbers\(\) suspended at line 8\), local 'seen'\[\d+\]$/);
    });
  });
});

describe('hints that are honest about their figures', () => {
  const base = (): Omit<RunReport, 'hints'> => ({
    schema: 1,
    tool: { name: 'pyworkers', version: '0' },
    command: 'run',
    commandLine: [],
    script: 's.py',
    argv: ['s.py'],
    cwd: '/',
    python: { version: '3.11', executable: 'python3' },
    startedAt: new Date(0).toISOString(),
    wallTimeMs: 1000,
    outcome: { ending: 'ok', exitCode: 0, description: 'exited with status 0' } as RunReport['outcome'],
    settings: { tracing: true, mode: 'full', frames: 3, maxMemory: null, timeoutMs: null, intervalMs: 250 },
    sampling: null,
    memory: { peakRss: 245 * 2 ** 20, peakRssAt: 900, finalRss: 240 * 2 ** 20, tracedPeak: 61 * 2 ** 20, tracedFinal: 60 * 2 ** 20, maxMemory: null, tracemallocOverhead: 180 * 2 ** 20 },
    timeline: [],
    top: [],
    snapshot: null,
    stacks: [],
    gc: { enabled: true, threshold: [700, 10, 10], generations: [], garbage: { count: 0, types: [], objects: [] } },
    notes: [],
  });

  it("the 'untraced' hint leaves tracemalloc's own memory out", () => {
    const facts = base();
    assert.ok(!hintsFor(facts).some((h) => h.id === 'untraced'), 'the 180 MiB are tracemalloc bookkeeping');
    facts.memory.tracemallocOverhead = 0;
    const hint = hintsFor(facts).find((h) => h.id === 'untraced');
    assert.ok(hint);
    assert.equal(hint.source, 'full tracing');
  });

  it("'growing' is decided on the trend: churn with falls does not hide steady growth, nor does a flat line with spikes read as one", () => {
    const facts = base();
    facts.memory.tracemallocOverhead = null;
    facts.memory.peakRss = 300 * 2 ** 20;
    facts.memory.tracedPeak = 100 * 2 ** 20;
    facts.memory.tracedFinal = 95 * 2 ** 20;
    // steady growth under churn: every other reading falls back, the floor rises
    facts.timeline = Array.from({ length: 40 }, (_, i) => ({ t: i * 100, rss: null, traced: (10 + i * 2) * 2 ** 20 + (i % 2 ? 20 * 2 ** 20 : 0), tracedPeak: null, gc: 0 }));
    assert.ok(hintsFor(facts).some((h) => h.id === 'growth'), 'steady growth with churn is growth');
    facts.timeline = Array.from({ length: 40 }, (_, i) => ({ t: i * 100, rss: null, traced: 80 * 2 ** 20 + (i % 5 === 0 ? 20 * 2 ** 20 : 0) + i, tracedPeak: null, gc: 0 }));
    assert.ok(!hintsFor(facts).some((h) => h.id === 'growth'), 'a flat floor is not growth');
  });
});

function cli(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // the built command (npm test builds first), run from the scripts' folder
    execFile(process.execPath, [path.join(ROOT, 'dist', 'cli', 'main.js'), ...args], { cwd, timeout: 120_000, maxBuffer: 64 * 2 ** 20, env: { ...process.env, NO_COLOR: '1' } }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}
