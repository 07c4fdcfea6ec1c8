/**
 * The `pyworkers` command, run for real (src/cli/main.ts through tsx) on real Python: example scripts, their
 * reports' figures, exit codes, pass-through of their output, and argument errors.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { need, pythonWith, requires } from './helpers.js';

const NUMPY = pythonWith('numpy');

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = path.join(ROOT, 'src/cli/main.ts');
const SCRIPTS = path.join(ROOT, 'examples/scripts');
const TMP = mkdtempSync(path.join(os.tmpdir(), 'pyworkers-cli-'));
const MiB = 1024 * 1024;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `pyworkers ...args` and collect its output (non-TTY, no colours). */
function cli(args: string[], options: { input?: string; timeout?: number } = {}): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', MAIN, ...args],
      { cwd: ROOT, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: undefined }, timeout: options.timeout ?? 60_000, maxBuffer: 32 * MiB },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }),
    );
    if (options.input !== undefined) child.stdin!.end(options.input);
    else child.stdin!.end();
  });
}

function script(name: string, source: string): string {
  const file = path.join(TMP, name);
  writeFileSync(file, source);
  return file;
}

const json = (file: string) => JSON.parse(readFileSync(file, 'utf8'));

describe('pyworkers --help, --version and bad arguments', { concurrency: 4 }, () => {
  test('--help lists the commands; every command has --help', async () => {
    const top = await cli(['--help']);
    assert.equal(top.code, 0);
    for (const word of ['run', 'eval', 'leaks', '--version']) assert.match(top.stdout, new RegExp(word));
    for (const command of ['run', 'eval', 'leaks']) {
      const r = await cli([command, '--help']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^Usage: pyworkers ${command}`));
      assert.equal(r.stderr, '');
    }
  });

  test('--version prints the package version', async () => {
    const r = await cli(['--version']);
    const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    assert.equal(r.code, 0);
    assert.equal(r.stdout.trim(), `pyworkers ${version}`);
  });

  test('bad arguments: one line on stderr, exit 2', async () => {
    const cases = [
      [],
      ['frobnicate'],
      ['--bogus'],
      ['run'],
      ['run', 'no/such/script.py'],
      ['run', '--bogus', path.join(SCRIPTS, 'clean.py')],
      ['run', '--top', 'many', path.join(SCRIPTS, 'clean.py')],
      ['run', '--top', '0', path.join(SCRIPTS, 'clean.py')],
      ['run', path.join(SCRIPTS, 'clean.py'), '--max-memory', 'lots'],
      ['run', '--timeout', 'soon', path.join(SCRIPTS, 'clean.py')],
      ['run', '--frames'],
      ['run', '--no-trace', '--frames', '3', path.join(SCRIPTS, 'clean.py')],
      ['eval'],
      ['eval', '1', '2'],
      ['leaks'],
      ['leaks', 'no_function_given'],
      ['leaks', 'mod:fn', '--iterations', 'x'],
      ['leaks', 'mod:fn', '--args', '{"not": "an array"}'],
    ];
    await Promise.all(
      cases.map(async (args) => {
        const r = await cli(args);
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.equal(r.stdout, '', args.join(' '));
        assert.match(r.stderr, /^pyworkers: [^\n]+\n$/, `${args.join(' ')}: ${JSON.stringify(r.stderr)}`);
      }),
    );
  });
});

describe('pyworkers run', { concurrency: 3 }, () => {
  test('a leaky script: its output passes through, then the report names the leaking line', async () => {
    const out = path.join(TMP, 'leaky.json');
    const html = path.join(TMP, 'leaky.html');
    const r = await cli(['run', '--mode', 'full', path.join(SCRIPTS, 'leaky.py'), '4000', '--top', '5', '--json', out, '--report', html]);
    assert.equal(r.code, 0, r.stderr);
    const lines = ['handled 1000 requests, the cache holds 1000 records', 'handled 2000 requests, the cache holds 2000 records'];
    assert.ok(r.stdout.startsWith(`${lines.join('\n')}\n`), r.stdout.slice(0, 200));
    assert.match(r.stdout, /handled 4000 requests, the cache holds 4000 records\n\n── pyworkers report/);
    assert.equal(r.stderr, '');
    for (const label of ['exit status', 'wall time', 'peak RSS', 'traced peak', 'Top 5 allocation sites', 'Garbage collector', 'Hints']) {
      assert.match(r.stdout, new RegExp(label));
    }
    assert.match(r.stdout, /leaky\.py:\d+ handle_request\(\)\s+body = 'x' \* 1024/);

    const report = json(out);
    assert.equal(report.command, 'run');
    assert.deepEqual(report.argv, [path.join(SCRIPTS, 'leaky.py'), '4000']);
    assert.equal(report.outcome.exitCode, 0);
    assert.equal(report.outcome.ending, 'ok');
    assert.ok(report.wallTimeMs > 300, `wall time ${report.wallTimeMs}`);
    assert.ok(report.memory.peakRss > 10 * MiB, `peak RSS ${report.memory.peakRss}`);
    // 4000 records of ~1 KiB body plus a dict each: at least 4 MiB traced and still held at the end.
    assert.ok(report.memory.tracedPeak > 4 * MiB, `traced peak ${report.memory.tracedPeak}`);
    assert.ok(report.memory.tracedFinal > 4 * MiB, `traced final ${report.memory.tracedFinal}`);
    assert.ok(report.memory.peakRss >= report.memory.tracedPeak);
    assert.equal(report.top.length, 5);
    const first = report.top[0];
    assert.match(first.file, /leaky\.py$/);
    assert.equal(first.function, 'handle_request');
    assert.match(first.code, /'x' \* 1024/);
    assert.ok(first.size > 4 * MiB && first.count >= 4000, JSON.stringify(first));
    assert.ok(report.timeline.length >= 3, `${report.timeline.length} readings`);
    assert.ok(report.timeline.every((s: { t: number }, i: number, all: Array<{ t: number }>) => i === 0 || s.t >= all[i - 1]!.t));
    assert.ok(report.stacks.length > 0 && report.stacks.some((s: { stack: Array<{ function: string }> }) => s.stack.some((f) => f.function === 'main')));
    const collected = report.gc.generations.reduce((n: number, g: { collected: number }) => n + g.collected, 0);
    assert.ok(collected >= 10_000, `collected ${collected}`);
    const hints = report.hints.map((h: { id: string }) => h.id);
    assert.ok(hints.includes('one-site'), hints.join());
    assert.ok(hints.includes('cycles'), hints.join());
    assert.ok(existsSync(html));
    assert.match(readFileSync(html, 'utf8'), /^<!doctype html>/);
  });

  test('a clean script: peak while it ran, almost nothing held at the end, no leak hints', async () => {
    const out = path.join(TMP, 'clean.json');
    const r = await cli(['run', '--mode', 'full', path.join(SCRIPTS, 'clean.py'), '--json', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.startsWith('sum of 300000 squares: 8999955000050000\n'), r.stdout.slice(0, 100));
    const report = json(out);
    assert.equal(report.outcome.ending, 'ok');
    assert.ok(report.memory.tracedPeak > 5 * MiB, `traced peak ${report.memory.tracedPeak}`);
    assert.ok(report.memory.tracedFinal < 512 * 1024, `traced final ${report.memory.tracedFinal}`);
    const hints = report.hints.map((h: { id: string }) => h.id);
    for (const id of ['growth', 'one-site', 'uncollectable', 'memory-cap']) assert.ok(!hints.includes(id), hints.join());
  });

  test('a script that raises: traceback on stderr as python prints it, exit 1', async () => {
    const out = path.join(TMP, 'raises.json');
    const r = await cli(['run', '--json', out, path.join(SCRIPTS, 'raises.py')]);
    assert.equal(r.code, 1);
    assert.ok(r.stdout.startsWith("starting\nreading '12'\nreading '7'\nreading 'forty-two'\n"), r.stdout.slice(0, 100));
    assert.match(r.stderr, /^Traceback \(most recent call last\):\n {2}File ".*raises\.py", line \d+, in <module>/);
    assert.match(r.stderr, /ValueError: invalid literal for int\(\) with base 10: 'forty-two'\n$/);
    assert.doesNotMatch(r.stderr, /_pyworkers/);
    assert.match(r.stdout, /exit status\s+1\s+raised ValueError/);
    const report = json(out);
    assert.equal(report.outcome.ending, 'exception');
    assert.deepEqual(report.outcome.exception, { type: 'ValueError', message: "invalid literal for int() with base 10: 'forty-two'" });
  });

  test('a script that hits --max-memory: MemoryError, exit 1, the report says so and names the line', async () => {
    const out = path.join(TMP, 'cap.json');
    const r = await cli(['run', '--mode', 'full', '--max-memory', '150MB', '--json', out, path.join(SCRIPTS, 'cap.py')]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /MemoryError\n/);
    assert.match(r.stdout, /hit the memory cap \(--max-memory 150MB = 143 MiB\): MemoryError/);
    const report = json(out);
    assert.equal(report.outcome.ending, 'memory-cap');
    assert.equal(report.memory.maxMemory, 150_000_000);
    assert.ok(report.memory.tracedPeak > 64 * MiB && report.memory.tracedPeak < 150_000_000, `traced peak ${report.memory.tracedPeak}`);
    assert.match(report.top[0].code, /chunks\.append/);
    assert.ok(report.hints.some((h: { id: string }) => h.id === 'memory-cap'));
  });

  test('--timeout stops the script: exit 124, and it says so', async () => {
    const out = path.join(TMP, 'slow.json');
    const started = Date.now();
    const r = await cli(['run', path.join(SCRIPTS, 'slow.py'), '--timeout', '800ms', '--json', out]);
    assert.equal(r.code, 124);
    assert.ok(Date.now() - started < 15_000);
    assert.match(r.stderr, /timed out after 800 ms/);
    assert.equal(json(out).outcome.ending, 'timeout');
  });

  test('the script gets its argv, __name__, sys.path[0]; sys.exit(n) is the exit code; options after the script pass through', async () => {
    const file = script(
      'argv.py',
      'import sys, os\nprint(repr(sys.argv))\nprint(__name__, __file__ == os.path.abspath(__file__))\nprint(sys.path[0] == os.path.dirname(os.path.abspath(__file__)))\nsys.stdout.write("no newline ✓")\nsys.exit(3)\n',
    );
    const r = await cli(['run', '-q', '--top', '3', file, 'a b', '--flag', '--top', '2', '--', '--json']);
    assert.equal(r.code, 3, r.stderr);
    assert.ok(r.stdout.startsWith(`['${file}', 'a b', '--flag', '--json']\n__main__ True\nTrue\nno newline ✓\n── pyworkers report`), r.stdout.slice(0, 300));
    assert.match(r.stdout, /exit status\s+3\s+exited with status 3/);
  });

  test('os._exit and a killed Python process give their own exit codes', async () => {
    const exits = script('exits.py', 'import os\nprint("bye", flush=True)\nos._exit(5)\n');
    const r = await cli(['run', exits]);
    assert.equal(r.code, 5, r.stderr);
    assert.ok(r.stdout.startsWith('bye\n'));
    const killed = script('killed.py', 'import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n');
    const k = await cli(['run', killed]);
    assert.equal(k.code, 137, k.stderr);
    assert.match(k.stderr, /killed by SIGKILL/);
  });

  test('--no-trace measures RSS only', async () => {
    const out = path.join(TMP, 'notrace.json');
    const r = await cli(['run', '--no-trace', '--json', out, path.join(SCRIPTS, 'clean.py'), '100000']);
    assert.equal(r.code, 0, r.stderr);
    const report = json(out);
    assert.equal(report.settings.tracing, false);
    assert.equal(report.memory.tracedPeak, null);
    assert.deepEqual(report.top, []);
    assert.ok(report.memory.peakRss > 0);
    assert.match(r.stdout, /not traced \(--no-trace\)/);
  });

  test('objects kept in gc.garbage are counted and named', async () => {
    const out = path.join(TMP, 'cycles.json');
    const r = await cli(['run', path.join(SCRIPTS, 'cycles.py'), '--json', out]);
    assert.equal(r.code, 0, r.stderr);
    const report = json(out);
    assert.ok(report.gc.garbage.count >= 100, `${report.gc.garbage.count}`);
    assert.deepEqual(report.gc.garbage.types[0], { type: 'Session', count: 100 });
    assert.match(report.gc.garbage.objects[0].repr, /^Session\('(client|server)-\d+'\)$/);
    assert.ok(report.hints.some((h: { id: string }) => h.id === 'uncollectable'));
    assert.match(r.stdout, /gc\.garbage: \d+ objects — 100 × Session/);
  });

  test('a numpy-heavy script: its own line is the site, numpy\'s frame is shown beside it', requires(NUMPY, 'numpy'), async () => {
    const file = script('np_heavy.py', 'import numpy as np\n\ndef build():\n    return [np.ones(100000) for _ in range(20)]\n\nkeep = build()\n');
    const r = await cli(['run', '--mode', 'full', '--json', '-', '--python', need(NUMPY, 'numpy'), file]);
    assert.equal(r.code, 0, r.stderr);
    const first = (JSON.parse(r.stdout) as { top: Array<{ file: string; line: number; library: { file: string; function: string } | null }> }).top[0]!;
    assert.deepStrictEqual([first.file, first.line], [file, 4]);
    assert.match(first.library!.file, /numpy.*numeric\.py$/);
    assert.equal(first.library!.function, 'ones');
  });

  test('eval: a syntax error shows the code, not the parser the runtime uses', async () => {
    const r = await cli(['eval', '1 +']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /File "<pyworkers eval>", line 1/);
    assert.match(r.stderr, /SyntaxError/);
    assert.doesNotMatch(r.stderr, /ast\.py/);
  });

  test('papercuts: -n5 is -n 5; a directory as script; a missing function is a usage error', async () => {
    const leaky = path.join(SCRIPTS, 'leaky.py');
    const missing = await cli(['leaks', `${leaky}:no_such_function`, '-n5']);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /has no attribute 'no_such_function'/);
    const dir = await cli(['run', SCRIPTS]);
    assert.equal(dir.code, 2);
    assert.match(dir.stderr, /it is a directory, not a Python file/);
  });

  test('no command: one hint, exit 2; help and errors name no file a package user lacks', async () => {
    const r = await cli([]);
    assert.equal(r.code, 2);
    assert.equal((r.stderr.match(/pyworkers --help/g) ?? []).length, 1, r.stderr);
    for (const args of [['--help'], ['run', '--help'], ['leaks', '--help'], ['eval', '--help']]) {
      const help = await cli(args);
      assert.doesNotMatch(help.stdout, /examples\/|docs\/cli\.md/, args.join(' '));
    }
  });

  test('--json - keeps stdout one JSON document: what the script prints goes to stderr', async () => {
    const r = await cli(['run', '--json', '-', script('prints.py', 'print("hello from the script")\nimport sys\nprint("to stderr", file=sys.stderr)\n')]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { exit: unknown };
    assert.ok(report && typeof report === 'object');
    assert.match(r.stderr, /hello from the script/);
    assert.match(r.stderr, /to stderr/);
  });

  test('--json - writes the JSON report to stdout instead of the text', async () => {
    const r = await cli(['run', '--json', '-', script('quiet.py', 'x = [0] * 1000\n')]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.schema, 1);
    assert.equal(report.outcome.exitCode, 0);
  });
});

describe('pyworkers eval and leaks', { concurrency: 3 }, () => {
  test('eval prints repr() of the last expression; statements and prints pass', async () => {
    const r = await cli(['eval', '2 ** 100']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '1267650600228229401496703205376\n');
    const s = await cli(['eval', 'import math\nprint("hello")\n(math.pi, "x", None)']);
    assert.equal(s.stdout, "hello\n(3.141592653589793, 'x', None)\n");
    const none = await cli(['eval', 'x = 1']);
    assert.equal(none.stdout, '');
  });

  test('eval --json prints JSON; code from stdin with -', async () => {
    const r = await cli(['eval', '--json', '{"squares": [i * i for i in range(4)], "ok": True}']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { squares: [0, 1, 4, 9], ok: true });
    const s = await cli(['eval', '-'], { input: '6 * 7\n' });
    assert.equal(s.stdout, '42\n');
  });

  test('eval that raises: the traceback on stderr, exit 1', async () => {
    const r = await cli(['eval', '1 / 0']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /ZeroDivisionError: division by zero\n$/);
  });

  test('leaks finds the line that grows with every call', async () => {
    const out = path.join(TMP, 'leaks.json');
    const r = await cli(['leaks', `${path.join(SCRIPTS, 'leaky.py')}:handle_request`, '--iterations', '20', '--warmup', '2', '--json', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /pyworkers leaks: .*leaky\.py:handle_request/);
    assert.match(r.stdout, /memory grows steadily by about/);
    const report = json(out);
    assert.equal(report.iterations, 20);
    const steady = report.sites.filter((s: { steady: boolean }) => s.steady);
    assert.ok(steady.some((s: { file: string }) => s.file.endsWith('leaky.py')), JSON.stringify(report.sites));
    const check = await cli(['leaks', `${path.join(SCRIPTS, 'leaky.py')}:handle_request`, '--iterations', '10', '--warmup', '1', '--check']);
    assert.equal(check.code, 1, check.stderr);
    const cleanOut = path.join(TMP, 'leaks-clean.json');
    const clean = await cli(['leaks', `${path.join(SCRIPTS, 'clean.py')}:main`, '--args', '[1000]', '--iterations', '10', '--warmup', '1', '--json', cleanOut]);
    assert.equal(clean.code, 0, clean.stderr);
    const cleanSites = json(cleanOut).sites.filter((s: { file: string; steady: boolean }) => s.steady && s.file.endsWith('clean.py'));
    assert.deepEqual(cleanSites, []);
  });
});

test('the built command (dist/cli/main.js) is an executable script', { skip: !existsSync(path.join(ROOT, 'dist/cli/main.js')) && 'not built' }, async () => {
  const bin = path.join(ROOT, 'dist/cli/main.js');
  assert.ok(readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node\n'));
  const r = await new Promise<Result>((resolve) =>
    execFile(process.execPath, [bin, '--version'], (error, stdout, stderr) => resolve({ code: error ? 1 : 0, stdout, stderr })),
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^pyworkers \d+\.\d+\.\d+/);
});
