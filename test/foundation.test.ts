/**
 * The public API (createPool, call, eval, exec, contexts, close, the default pool `py`),
 * the pool's options and the choice of interpreter, async functions, errors, and the protocol (requests in flight,
 * user output kept apart from the data).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  AbortError,
  ArgumentError,
  ContextClosedError,
  ConversionError,
  createPool,
  PoolClosedError,
  py,
  PythonError,
  PythonNotFoundError,
  PyWorkersError,
  TimeoutError,
  WorkerStartError,
  type OutputEvent,
  type Pool,
} from '../src/index.js';
import { alive, pool, sleep, until, rejection } from './helpers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const INDEX = path.join(ROOT, 'src', 'index.ts');


/** A PythonError of the given type, still a PyWorkersError with code ERR_PYTHON. */
function pythonError(type: string, message?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof PythonError, `expected a PythonError, got ${String(e)}`);
    assert.ok(e instanceof PyWorkersError);
    assert.equal(e.code, 'ERR_PYTHON');
    assert.equal(e.type, type);
    if (message) assert.match(e.message, message);
    return true;
  };
}

const tmpDirs: string[] = [];
function tmpDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pyworkers-foundation-'));
  tmpDirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of tmpDirs) fs.rmSync(dir, { recursive: true, force: true });
});

const PYTHON3 = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();

/** A shell script that logs each run to `log` and execs `target` (like a pyenv shim). */
function shim(dir: string, name: string, target = PYTHON3): { file: string; runs: () => number } {
  const file = path.join(dir, name);
  const log = path.join(dir, `${name}.log`);
  fs.writeFileSync(file, `#!/bin/sh\necho run >> ${JSON.stringify(log)}\nexec ${JSON.stringify(target)} "$@"\n`, { mode: 0o755 });
  return { file, runs: () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).length : 0) };
}

/** Kill the worker with this pid and wait until its replacement is ready (idle workers do not keep Node alive: poll). */
async function replaceWorker(p: Pool, pid: number): Promise<void> {
  process.kill(pid, 'SIGKILL');
  const replaced = await until(() => {
    const workers = p.stats().perWorker;
    return workers.length > 0 && workers.every((w) => w.pid !== pid && w.state === 'ready');
  }, 10_000);
  assert.ok(replaced, 'the worker was replaced');
}

type ChildResult = { code: number | null; stdout: string; stderr: string };

/** Run node with `args` (tsx loaded), collecting its output; killed after `timeoutMs`. */
function runChild(args: string[], label: string, timeoutMs: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${label} did not exit within ${timeoutMs} ms; stdout: ${stdout}; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Run a TypeScript file in a child Node process (with tsx), collecting its output. */
function runFile(file: string, timeoutMs = 60_000): Promise<ChildResult> {
  return runChild([file], file, timeoutMs);
}

/** Run a module script in a child Node process (with tsx), collecting its output. */
function runNode(script: string, timeoutMs = 30_000): Promise<ChildResult> {
  return runChild(['--input-type=module', '-e', script], 'child', timeoutMs);
}

describe('createPool', () => {
  test('resolves once every worker has answered', async () => {
    const p = await pool({ workers: 2 });
    const stats = p.stats();
    assert.equal(stats.workers, 2);
    assert.equal(stats.perWorker.length, 2);
    for (const w of stats.perWorker) {
      assert.equal(w.state, 'ready');
      assert.ok(w.pid && alive(w.pid));
    }
    assert.equal(stats.idle, 2);
  });

  test('workers defaults to min(4, cpus)', async () => {
    const p = await pool({ workers: undefined });
    const cpus = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
    assert.equal(p.stats().workers, Math.max(1, Math.min(4, cpus)));
  });

  test('version() gives the Python version', async () => {
    const p = await pool();
    assert.match(p.version(), /^3\.\d+\.\d+/);
    assert.equal(p.version(), await p.eval('__import__("platform").python_version()'));
  });
});

describe('call', () => {
  test('math.sqrt(16) is 4', async () => {
    const p = await pool();
    assert.equal(await p.call('math', 'sqrt', [16]), 4);
  });

  test('json.dumps with indent and sort_keys (kwargs)', async () => {
    const p = await pool();
    assert.equal(await p.call('json', 'dumps', [{ a: 1 }], { kwargs: { indent: 2 } }), '{\n  "a": 1\n}');
    assert.equal(await p.call('json', 'dumps', [{ b: 1, a: [1, 2] }], { kwargs: { indent: 2, sort_keys: true } }), '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}');
    assert.equal(await p.call('json', 'dumps', [{ b: 1, a: 2 }], { kwargs: { sort_keys: true } }), '{"a": 2, "b": 1}');
  });

  test("'a-b-c-d'.split('-', maxsplit=2)", async () => {
    const p = await pool();
    assert.deepEqual(await p.call('builtins', 'str.split', ['a-b-c-d', '-'], { kwargs: { maxsplit: 2 } }), ['a', 'b', 'c-d']);
    assert.deepEqual(await p.eval("'a-b-c-d'.split('-', maxsplit=2)"), ['a', 'b', 'c-d']);
  });

  test('sum(range(10))', async () => {
    const p = await pool();
    assert.equal(await p.eval('sum(range(10))'), 45);
    assert.equal(await p.call('builtins', 'sum', [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]), 45);
  });

  test('args default to none; dotted names reach attributes', async () => {
    const p = await pool();
    assert.equal(typeof (await p.call('time', 'time')), 'number');
    assert.equal(await p.call('os.path', 'join', ['a', 'b']), 'a/b');
    assert.deepEqual(await p.call('datetime', 'datetime.fromisoformat', ['2024-05-06T00:00:00+00:00']), new Date(Date.UTC(2024, 4, 6)));
  });
});

describe('eval', () => {
  test('x * y with locals is 25, and locals never persist in the worker', async () => {
    const p = await pool({ workers: 2 });
    assert.equal(await p.eval('x * y', { x: 5, y: 5 }), 25);
    const checks = await Promise.all(Array.from({ length: 8 }, () => p.eval("'x' in globals() or 'y' in globals()")));
    assert.deepEqual(checks, Array(8).fill(false));
    await assert.rejects(p.eval('x'), pythonError('NameError', /'x' is not defined/));
  });

  test('locals: lists, dicts and nested values', async () => {
    const p = await pool();
    assert.equal(await p.eval('sum(xs)', { xs: [1, 2, 3, 4] }), 10);
    assert.equal(await p.eval("d['a'] + d['b']", { d: { a: 1, b: 2 } }), 3);
    assert.deepEqual(await p.eval("[n['k'][1]['z'] for n in nested]", { nested: [{ k: [0, { z: 'deep' }] }, { k: [0, { z: 'er' }] }] }), ['deep', 'er']);
    assert.deepEqual(await p.eval('sorted(d.items())', { d: { b: [1], a: { c: null } } }), [['a', { c: null }], ['b', [1]]]);
  });

  test('a lambda in eval', async () => {
    const p = await pool();
    assert.equal(await p.eval('(lambda a, b=2: a * b)(21)'), 42);
    assert.deepEqual(await p.eval('list(map(lambda v: v + 1, xs))', { xs: [1, 2, 3] }), [2, 3, 4]);
    assert.deepEqual(await p.eval('sorted(xs, key=lambda s: -len(s))', { xs: ['a', 'ccc', 'bb'] }), ['ccc', 'bb', 'a']);
  });
});

describe('exec', () => {
  test('defines a function in __main__ of every worker; call it from __main__ on any worker', async () => {
    const p = await pool({ workers: 2 });
    await p.exec('import os\nDEFINED_IN = os.getpid()\ndef double(x):\n    return x * 2');
    assert.equal(await p.call('__main__', 'double', [21]), 42);
    const results = await Promise.all(Array.from({ length: 40 }, () => p.eval('[double(21), DEFINED_IN == os.getpid(), os.getpid()]')));
    const pids = new Set<number>();
    for (const [doubled, same, pid] of results) {
      assert.equal(doubled, 42);
      assert.equal(same, true);
      pids.add(pid);
    }
    assert.deepEqual([...pids].sort(), p.stats().perWorker.map((w) => w.pid).sort(), 'every worker answered');
    const calls = await Promise.all(Array.from({ length: 20 }, () => p.call('__main__', 'double', [21])));
    assert.deepEqual(calls, Array(20).fill(42));
  });

  test('runs on every worker started later', async () => {
    const p = await pool({ workers: 1 });
    await p.exec('def double(x):\n    return x * 2');
    await p.exec('counter_from_exec = 10');
    await assert.rejects(p.exec('raise ValueError("not replayed")'), pythonError('ValueError'));
    const oldPid = p.stats().perWorker[0]!.pid!;
    await replaceWorker(p, oldPid);
    assert.equal(await p.call('__main__', 'double', [21]), 42);
    assert.equal(await p.eval('counter_from_exec'), 10);
    assert.notEqual(await p.eval('__import__("os").getpid()'), oldPid);
  });

  test('returns nothing', async () => {
    const p = await pool();
    assert.equal(await p.exec('x_exec = 1'), undefined);
  });
});

describe('contexts', () => {
  test('pinned to one worker with its own namespace', async () => {
    const p = await pool({ workers: 2 });
    const ctx = p.context();
    const pids = await Promise.all(Array.from({ length: 20 }, () => ctx.eval('__import__("os").getpid()')));
    assert.equal(new Set(pids).size, 1);
    const worker = p.stats().perWorker.find((w) => w.pid === pids[0]);
    assert.equal(ctx.workerId, worker?.workerId);
    assert.equal(worker?.contexts, 1);
    await ctx.close();
  });

  test('counter = 0, counter += 1, eval is 1; another context does not see it', async () => {
    const p = await pool({ workers: 2 });
    const ctx = p.context();
    const other = p.context();
    await ctx.exec('counter = 0');
    await ctx.exec('counter += 1');
    assert.equal(await ctx.eval('counter'), 1);
    await assert.rejects(other.eval('counter'), pythonError('NameError'));
    await assert.rejects(p.eval('counter'), pythonError('NameError'), 'nor does the pool');
    await other.exec('counter = 100');
    assert.equal(await ctx.eval('counter'), 1);
    assert.equal(await other.eval('counter'), 100);
  });

  test('two contexts on the same worker stay isolated', async () => {
    const p = await pool({ workers: 1 });
    const a = p.context();
    const b = p.context();
    assert.equal(a.workerId, b.workerId);
    await a.exec('name = "a"\ndef who():\n    return name');
    await b.exec('name = "b"\ndef who():\n    return name');
    assert.equal(await a.call('__main__', 'who'), 'a');
    assert.equal(await b.call('__main__', 'who'), 'b');
    assert.equal(await a.eval('name'), 'a');
  });

  test('state persists over 5 execs', async () => {
    const p = await pool();
    const ctx = p.context();
    await ctx.exec('counter = 0\nhistory = []');
    for (let i = 0; i < 5; i++) await ctx.exec(`counter += 1\nhistory.append(${i})`);
    assert.equal(await ctx.eval('counter'), 5);
    assert.deepEqual(await ctx.eval('history'), [0, 1, 2, 3, 4]);
  });

  test('call of a function that ctx.exec defined', async () => {
    const p = await pool({ workers: 2 });
    const ctx = p.context();
    await ctx.exec('def fn_defined_by_ctx_exec(a=1, b=2):\n    return [a, b]');
    assert.deepEqual(await ctx.call('__main__', 'fn_defined_by_ctx_exec', []), [1, 2]);
    assert.deepEqual(await ctx.call('__main__', 'fn_defined_by_ctx_exec', [5], { kwargs: { b: 6 } }), [5, 6]);
    await assert.rejects(p.context().call('__main__', 'fn_defined_by_ctx_exec', []), pythonError('AttributeError'));
  });

  test('eval locals in a context do not persist', async () => {
    const p = await pool();
    const ctx = p.context();
    assert.equal(await ctx.eval('v + 1', { v: 1 }), 2);
    await assert.rejects(ctx.eval('v'), pythonError('NameError'));
  });

  test('close() frees the namespace; later calls reject with ERR_CONTEXT_CLOSED', async () => {
    const p = await pool();
    const ctx = p.context();
    await ctx.exec('import sys, weakref\nclass Held: pass\nheld = Held()\nsys.pyworkers_test_ref = weakref.ref(held)');
    assert.equal(await p.eval('__import__("sys").pyworkers_test_ref() is not None'), true);
    assert.equal(p.stats().perWorker[0]!.contexts, 1);
    await ctx.close();
    assert.equal(ctx.closed, true);
    assert.equal(p.stats().perWorker[0]!.contexts, 0);
    assert.equal(await p.eval('(__import__("gc").collect(), __import__("sys").pyworkers_test_ref() is None)[1]'), true, 'the namespace was freed');
    for (const attempt of [ctx.eval('1'), ctx.exec('x = 1'), ctx.call('math', 'sqrt', [4])]) {
      const error = await rejection(attempt);
      assert.ok(error instanceof ContextClosedError);
      assert.equal(error.code, 'ERR_CONTEXT_CLOSED');
    }
    await ctx.close(); // twice is fine
  });

  test('await using closes the context', async () => {
    const p = await pool();
    let ctx;
    {
      await using scoped = p.context();
      ctx = scoped;
      await scoped.exec('x = 1');
    }
    assert.equal(ctx.closed, true);
  });
});

describe('async functions', () => {
  test('calling an async def returns its awaited result; eval of a coroutine too', async () => {
    const p = await pool();
    await p.exec('import asyncio\nasync def later(x):\n    await asyncio.sleep(0.01)\n    return [x, "done"]\nasync def fails():\n    await asyncio.sleep(0)\n    raise KeyError("k")');
    assert.deepEqual(await p.call('__main__', 'later', [7]), [7, 'done']);
    assert.deepEqual(await p.eval('later(8)'), [8, 'done']);
    assert.deepEqual(await p.eval('asyncio.gather(later(1), later(2))'), [[1, 'done'], [2, 'done']]);
    await assert.rejects(p.call('__main__', 'fails'), pythonError('KeyError'));
    assert.equal(await p.call('asyncio', 'sleep', [0, 'slept']), 'slept');
  });
});

describe('close', () => {
  test('pool.close() lets running calls finish, ends the workers, refuses new calls', async () => {
    const p = await pool({ workers: 2 });
    const pids = p.stats().perWorker.map((w) => w.pid!);
    const running = p.eval('__import__("time").sleep(0.2) or 5');
    await sleep(20);
    await p.close();
    assert.equal(await running, 5);
    assert.ok(await until(() => pids.every((pid) => !alive(pid)), 3000));
    const error = await rejection(p.eval('1'));
    assert.ok(error instanceof PoolClosedError);
    assert.equal(error.code, 'ERR_POOL_CLOSED');
    await p.close(); // twice is fine
  });

  test('await using pool = await createPool() closes it at the end of the scope', async () => {
    let pid = 0;
    {
      await using p = await createPool({ workers: 1, forwardOutput: false });
      pid = p.stats().perWorker[0]!.pid!;
      assert.equal(await p.eval('1 + 1'), 2);
    }
    assert.ok(await until(() => !alive(pid), 3000), 'the worker exited');
  });
});

describe('the default pool py', () => {
  test('py.call(math.factorial, [20]) creates the pool on first use', async () => {
    try {
      assert.equal(await py.call('math', 'factorial', [20]), 2432902008176640000n);
      assert.equal(await py.eval('x + 1', { x: 1 }), 2);
      await py.exec('def triple(x):\n    return 3 * x');
      assert.equal(await py.call('__main__', 'triple', [3]), 9);
      const items: number[] = [];
      for await (const x of py.streamEval('range(3)')) items.push(x);
      assert.deepEqual(items, [0, 1, 2]);
    } finally {
      await py.close();
    }
  });

  test('a script that uses py and ends exits on its own and leaves no Python process', async () => {
    const script = `
      import { py } from ${JSON.stringify(INDEX)};
      const r = await py.call('math', 'factorial', [20]);
      await py.exec('print("hello from python", flush=True)');
      const pids = (await py.pool()).stats().perWorker.map((w) => w.pid);
      console.log(JSON.stringify({ r: String(r), pids }));`;
    const started = Date.now();
    const { code, stdout, stderr } = await runNode(script);
    assert.equal(code, 0, stderr);
    assert.ok(Date.now() - started < 20_000);
    const { r, pids } = JSON.parse(stdout) as { r: string; pids: number[] };
    assert.equal(r, '2432902008176640000');
    assert.ok(pids.length >= 1);
    assert.ok(await until(() => pids.every((pid) => !alive(pid)), 3000), 'no Python process is left behind');
    assert.match(stderr, /hello from python/, "worker output goes to the host's stderr by default");
  });
});

describe('options', () => {
  test('unknown option names are rejected with an error that names them', async () => {
    for (const [options, name] of [
      [{ wrokers: 2 }, 'wrokers'],
      [{ workers: 1, pythonpath: [] }, 'pythonpath'],
    ] as const) {
      const error = await rejection(createPool(options as never));
      assert.ok(error instanceof ArgumentError);
      assert.ok(error instanceof PyWorkersError);
      assert.equal(error.code, 'ERR_INVALID_ARGUMENT');
      assert.ok(error.message.includes(name), error.message);
    }
    const p = await pool();
    for (const call of [
      () => p.call('math', 'sqrt', [4], { kwarg: {} } as never),
      () => p.eval('1', null, { timeot: 5 } as never),
      () => p.exec('1', { signall: 1 } as never),
    ]) {
      const error = await rejection(call());
      assert.equal(error.code, 'ERR_INVALID_ARGUMENT');
      assert.match(error.message, /kwarg|timeot|signall/);
    }
    assert.throws(() => p.streamEval('range(3)', null, { highwatermark: 4 } as never), /highwatermark/);
  });

  test('bad values are rejected with an error that names the option', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ workers: 0 }, 'workers'],
      [{ workers: -1 }, 'workers'],
      [{ workers: 1.5 }, 'workers'],
      [{ workers: '2' }, 'workers'],
      [{ python: 5 }, 'python'],
      [{ python: '' }, 'python'],
      [{ venv: 5 }, 'venv'],
      [{ cwd: 5 }, 'cwd'],
      [{ env: 'A=1' }, 'env'],
      [{ env: { A: 1 } }, 'env'],
      [{ pythonPath: '/tmp' }, 'pythonPath'],
      [{ pythonPath: [1] }, 'pythonPath'],
      [{ setup: 5 }, 'setup'],
      [{ setup: [1] }, 'setup'],
      [{ timeout: -1 }, 'timeout'],
    ];
    for (const [options, name] of cases) {
      const error = await rejection(createPool(options));
      assert.ok(error instanceof PyWorkersError, `${JSON.stringify(options)}: ${String(error)}`);
      assert.match(error.code, /^ERR_(INVALID_ARGUMENT|OUT_OF_RANGE)$/);
      assert.ok(error.message.includes(name), `${JSON.stringify(options)}: ${error.message}`);
    }
    const p = await pool();
    for (const [options, name] of [
      [{ kwargs: 5 }, 'kwargs'],
      [{ kwargs: [1] }, 'kwargs'],
      [{ timeout: -5 }, 'timeout'],
      [{ timeout: 'soon' }, 'timeout'],
      [{ signal: {} }, 'signal'],
    ] as const) {
      const error = await rejection(p.call('math', 'sqrt', [4], options as never));
      assert.ok(error instanceof PyWorkersError);
      assert.ok(error.message.includes(name), error.message);
    }
    assert.throws(() => p.stream('builtins', 'range', [3], { highWaterMark: 0 }), /highWaterMark/);
    assert.equal((await rejection(p.call('math', 'sqrt', 16 as never))).code, 'ERR_INVALID_ARGUMENT');
    assert.equal((await rejection(p.eval(42 as never))).code, 'ERR_INVALID_ARGUMENT');
    assert.equal(await p.call('math', 'sqrt', [16]), 4, 'the pool is fine');
  });

  test('python: runs the real sys.executable, probing the command once', async () => {
    const dir = tmpDir();
    const { file, runs } = shim(dir, 'python-shim');
    const p = await pool({ workers: 2, python: file });
    assert.equal(p.executable, PYTHON3);
    assert.deepEqual(await Promise.all([p.eval('__import__("sys").executable'), p.eval('__import__("sys").executable')]), [PYTHON3, PYTHON3]);
    assert.equal(runs(), 1, 'the shim ran once (the probe); workers were spawned from the real executable');
  });

  test('an explicit python or venv beats PYWORKERS_PYTHON, which beats python3 on PATH; python and venv together are refused', async () => {
    const dir = tmpDir();
    const fromOption = shim(dir, 'from-option');
    const fromEnv = shim(dir, 'from-env');
    execFileSync(PYTHON3, ['-m', 'venv', '--without-pip', path.join(dir, 'venv')]);
    const venv = path.join(dir, 'venv');

    await pool({ python: fromOption.file, env: { PYWORKERS_PYTHON: fromEnv.file } });
    assert.equal(fromOption.runs(), 1);
    assert.equal(fromEnv.runs(), 0);

    const p = await pool({ env: { PYWORKERS_PYTHON: fromEnv.file }, venv });
    assert.equal(fromEnv.runs(), 0);
    assert.equal(await p.eval('__import__("sys").prefix'), fs.realpathSync(venv), 'the venv, not PYWORKERS_PYTHON');

    await pool({ env: { PYWORKERS_PYTHON: fromEnv.file } });
    assert.equal(fromEnv.runs(), 1);

    await assert.rejects(createPool({ python: fromOption.file, venv }), (e: Error) => e instanceof ArgumentError && /options\.python and options\.venv/.test(e.message));
  });

  test('a venv that does not exist says so; relative pythonPath entries are resolved against cwd', async () => {
    const dir = tmpDir();
    const error = await rejection(createPool({ venv: path.join(dir, 'nope'), env: { PYWORKERS_PYTHON: '/never/used' } }));
    assert.ok(error instanceof PythonNotFoundError);
    assert.match(error.message, /options\.venv: there is no virtual environment at '.*nope'/);
    fs.mkdirSync(path.join(dir, 'pkg'));
    fs.writeFileSync(path.join(dir, 'pkg', 'where.py'), 'import os\nFILE = __file__\n');
    const p = await pool({ cwd: dir, pythonPath: ['./pkg'] });
    assert.equal(await p.eval('__import__("where").FILE'), path.join(dir, 'pkg', 'where.py'));
  });

  test('without python, PYWORKERS_PYTHON or venv: python3 on PATH', async () => {
    if (process.env.PYWORKERS_PYTHON) return; // the environment variable would win
    const dir = tmpDir();
    const onPath = shim(dir, 'python3');
    const p = await pool({ env: { PATH: `${dir}${path.delimiter}${process.env.PATH ?? ''}` } });
    assert.equal(onPath.runs(), 1, 'the python3 found first on PATH was asked for its executable');
    assert.equal(p.executable, PYTHON3);
  });

  test('venv: runs the environment interpreter (sys.prefix is the venv)', async () => {
    const dir = tmpDir();
    const venv = path.join(dir, 'venv');
    execFileSync(PYTHON3, ['-m', 'venv', '--without-pip', venv]);
    const p = await pool({ venv, env: { PYWORKERS_PYTHON: undefined } });
    assert.equal(await p.eval('__import__("sys").prefix'), fs.realpathSync(venv));
    assert.equal(p.executable, path.join(venv, 'bin', 'python'));
    assert.equal(await p.eval('__import__("sys").executable'), path.join(venv, 'bin', 'python'));
  });

  test('a missing interpreter: ERR_PYTHON_NOT_FOUND', async () => {
    for (const options of [{ python: '/nonexistent/python3' }, { python: 'no-such-python-command-xyz' }, { venv: '/nonexistent/venv' }]) {
      const error = await rejection(createPool({ ...options, env: { PYWORKERS_PYTHON: undefined } }));
      assert.ok(error instanceof PythonNotFoundError, String(error));
      assert.ok(error instanceof PyWorkersError);
      assert.equal(error.code, 'ERR_PYTHON_NOT_FOUND');
      assert.match(error.message, /nonexistent|no-such-python/);
    }
  });

  test('a too old interpreter: ERR_PYTHON_NOT_FOUND that says the version', async () => {
    const dir = tmpDir();
    const fake = path.join(dir, 'python-old');
    fs.writeFileSync(fake, '#!/bin/sh\necho /usr/bin/python2.7\necho 2.7.18\n', { mode: 0o755 });
    const error = await rejection(createPool({ python: fake }));
    assert.ok(error instanceof PythonNotFoundError);
    assert.equal(error.code, 'ERR_PYTHON_NOT_FOUND');
    assert.match(error.message, /2\.7\.18/);
    const real = ['/root/.pyenv/versions/3.6.15/bin/python3', '/root/.pyenv/versions/2.7.18/bin/python'].find((f) => fs.existsSync(f));
    if (real) {
      const e2 = await rejection(createPool({ python: real }));
      assert.equal(e2.code, 'ERR_PYTHON_NOT_FOUND');
    }
  });

  test('cwd, env, pythonPath', async () => {
    const dir = tmpDir();
    const lib = path.join(dir, 'lib');
    const work = path.join(dir, 'work');
    fs.mkdirSync(lib);
    fs.mkdirSync(work);
    fs.writeFileSync(path.join(lib, 'pyworkers_test_mod.py'), 'def hello(name):\n    return "hello " + name\n');
    fs.writeFileSync(path.join(work, 'pyworkers_cwd_mod.py'), 'VALUE = 7\n');
    const p = await pool({ cwd: work, env: { PYWORKERS_TEST_VAR: 'set', HOME: undefined }, pythonPath: [lib] });
    assert.equal(await p.eval('__import__("os").getcwd()'), fs.realpathSync(work));
    assert.equal(await p.eval('__import__("os").environ.get("PYWORKERS_TEST_VAR")'), 'set');
    assert.equal(await p.eval('__import__("os").environ.get("HOME")'), null, 'undefined removes a variable');
    assert.equal(await p.call('pyworkers_test_mod', 'hello', ['you']), 'hello you');
    assert.ok((await p.eval('__import__("sys").path')).includes(lib));
    assert.equal(await p.eval('__import__("pyworkers_cwd_mod").VALUE'), 7);
  });

  test('setup runs in every worker at start, replacements included', async () => {
    const p = await pool({ workers: 2, setup: ['import math', 'SETUP_VALUE = math.floor(math.pi)'] });
    assert.deepEqual(await Promise.all(Array.from({ length: 8 }, () => p.eval('SETUP_VALUE'))), Array(8).fill(3));
    const p2 = await pool({ setup: 'def from_setup():\n    return "ok"' });
    assert.equal(await p2.call('__main__', 'from_setup'), 'ok');
    await replaceWorker(p2, p2.stats().perWorker[0]!.pid!);
    assert.equal(await p2.call('__main__', 'from_setup'), 'ok');
  });

  test('a failing setup rejects createPool with the Python error', async () => {
    const error = await rejection(createPool({ workers: 1, forwardOutput: false, setup: 'raise ValueError("bad setup")' }));
    assert.ok(error instanceof WorkerStartError);
    assert.ok(error instanceof PyWorkersError);
    assert.match(error.message, /ValueError: bad setup/);
  });

  test('per call: timeout and signal', async () => {
    const p = await pool();
    const started = Date.now();
    const timedOut = await rejection(p.eval('__import__("time").sleep(30)', null, { timeout: 200 }));
    assert.ok(timedOut instanceof TimeoutError);
    assert.equal(timedOut.code, 'ERR_TIMEOUT');
    assert.ok(Date.now() - started < 10_000);
    assert.equal(await p.eval('1 + 1'), 2);

    const ac = new AbortController();
    const call = p.eval('__import__("time").sleep(30)', null, { signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    const aborted = await rejection(call);
    assert.ok(aborted instanceof AbortError);
    assert.equal(aborted.code, 'ERR_ABORTED');
    assert.equal((await rejection(p.call('math', 'sqrt', [4], { signal: AbortSignal.abort() }))).code, 'ERR_ABORTED');
    assert.equal(await p.call('math', 'sqrt', [4], { timeout: 5000, signal: new AbortController().signal }), 2);
  });
});

describe('errors', () => {
  test("a PythonError's stack leads to the caller's await, not into pyworkers", async () => {
    const p = await pool();
    async function callerOfPyworkers() {
      await p.eval('1 / 0');
    }
    const error = (await rejection(callerOfPyworkers())) as PythonError;
    assert.match(error.stack!, /^PythonError: ZeroDivisionError: division by zero/);
    assert.match(error.stack!, /at async callerOfPyworkers/);
    assert.doesNotMatch(error.stack!, /[\\/](worker|job|replies)\.[jt]s/);
    const fromExec = (await rejection((async function execCaller() {
      await p.exec('raise KeyError("x")');
    })())) as PythonError;
    assert.match(fromExec.stack!, /at async execCaller/);
  });

  test('a chained Python exception: its causes are PythonErrors with type, message and traceback', async () => {
    const p = await pool();
    await p.exec('def f():\n    try:\n        {}["k"]\n    except KeyError as e:\n        raise ValueError("bad") from e\n' +
      'def g():\n    try:\n        1 / 0\n    except ZeroDivisionError:\n        raise RuntimeError("while handling")\n' +
      'def h():\n    try:\n        1 / 0\n    except ZeroDivisionError:\n        raise RuntimeError("no context") from None');
    const from = (await rejection(p.call('__main__', 'f'))) as PythonError;
    assert.equal(from.type, 'ValueError');
    assert.ok(from.cause instanceof PythonError);
    assert.deepStrictEqual([(from.cause as PythonError).type, (from.cause as PythonError).pythonMessage], ['KeyError', "'k'"]);
    assert.match((from.cause as PythonError).traceback, /KeyError/);
    const during = (await rejection(p.call('__main__', 'g'))) as PythonError;
    assert.equal((during.cause as PythonError).type, 'ZeroDivisionError');
    assert.equal(((await rejection(p.call('__main__', 'h'))) as PythonError).cause, undefined);
    assert.equal(((await rejection(p.eval('1 / 0'))) as PythonError).cause, undefined);
  });

  test('a Python exception is a PythonError with type, message and traceback', async () => {
    const p = await pool();
    const error = await rejection(p.eval('1 / 0'));
    assert.ok(error instanceof PythonError);
    assert.ok(error instanceof PyWorkersError);
    assert.ok(error instanceof Error);
    assert.equal(error.code, 'ERR_PYTHON');
    assert.equal(error.type, 'ZeroDivisionError');
    assert.match(error.message, /division by zero/);
    assert.equal(typeof error.traceback, 'string');
    assert.match(error.traceback, /Traceback \(most recent call last\)/);
    assert.match(error.traceback, /ZeroDivisionError: division by zero/);
  });

  test('the traceback shows the user frames', async () => {
    const p = await pool();
    await p.exec('def inner():\n    return {}["missing"]\ndef outer():\n    return inner()');
    const error = await rejection(p.call('__main__', 'outer'));
    assert.equal(error.type, 'KeyError');
    assert.match(error.traceback, /in outer/);
    assert.match(error.traceback, /in inner/);
    assert.doesNotMatch(error.traceback, /_pyworkers/);
  });

  test('SyntaxError, NameError, ModuleNotFoundError, AttributeError, TypeError, user classes', async () => {
    const p = await pool();
    await assert.rejects(p.eval('1 +'), pythonError('SyntaxError'));
    await assert.rejects(p.exec('def f(:\n    pass'), pythonError('SyntaxError'));
    await assert.rejects(p.eval('undefined_name_xyz'), pythonError('NameError', /undefined_name_xyz/));
    await assert.rejects(p.call('no_such_module_xyz', 'f'), pythonError('ModuleNotFoundError', /no_such_module_xyz/));
    await assert.rejects(p.exec('import no_such_module_xyz'), pythonError('ModuleNotFoundError'));
    await assert.rejects(p.call('math', 'no_such_function'), pythonError('AttributeError'));
    await assert.rejects(p.call('math', 'sqrt', ['four']), pythonError('TypeError'));
    await p.exec('class MyError(Exception):\n    pass\ndef fail():\n    raise MyError("custom")');
    await assert.rejects(p.call('__main__', 'fail'), pythonError('MyError', /custom/));
  });

  test('source containing a NUL byte gives an error, not a crash', async () => {
    const p = await pool();
    const pid = p.stats().perWorker[0]!.pid;
    for (const attempt of [p.eval('1\0'), p.exec('x = 1\0'), p.call('ma\0th', 'sqrt', [4]), p.call('math', 'sq\0rt', [4])]) {
      const error = await rejection(attempt);
      assert.ok(error instanceof PyWorkersError, String(error));
    }
    assert.equal(await p.eval('"a\\0b"'), 'a\0b');
    assert.equal(await p.eval('len(s)', { s: 'a\0b' }), 3);
    assert.equal(p.stats().perWorker[0]!.pid, pid);
    assert.equal(p.stats().restarts, 0);
  });

  test('after any error the worker keeps serving', async () => {
    const p = await pool();
    const pid = p.stats().perWorker[0]!.pid;
    const failing = ['1/0', 'raise SystemExit(3)', 'raise KeyboardInterrupt', 'import no_such_module_xyz', 'object()', 'x = [1]\nx.append(x)\nraise ValueError(x)'];
    for (const code of failing) {
      await rejection(code.includes('\n') || code.startsWith('raise') || code.startsWith('import') ? p.exec(code) : p.eval(code));
      assert.equal(await p.eval('40 + 2'), 42);
    }
    await p.exec('class Weird(Exception):\n    def __str__(self):\n        raise RuntimeError("no str")');
    assert.equal((await rejection(p.exec('raise Weird()'))).type, 'Weird');
    assert.equal(await p.call('math', 'sqrt', [16]), 4);
    assert.equal(p.stats().perWorker[0]!.pid, pid);
    assert.equal(p.stats().restarts, 0);
  });

  test('every error has a stable code and extends PyWorkersError', async () => {
    const p = await pool();
    const errors: unknown[] = [
      await rejection(p.eval('1/0')),
      await rejection(p.eval('x', { x: () => 1 })),
      await rejection(p.eval('object()')),
      await rejection(p.call('math', 'sqrt', [4], { timeout: -1 })),
      await rejection(p.eval('__import__("time").sleep(5)', null, { timeout: 50 })),
      await rejection(p.eval('1', null, { signal: AbortSignal.abort() })),
      await rejection(createPool({ python: '/nonexistent/python3' })),
      await rejection(createPool({ bad: 1 } as never)),
    ];
    const ctx = p.context();
    await ctx.close();
    errors.push(await rejection(ctx.eval('1')));
    await p.close();
    errors.push(await rejection(p.eval('1')));
    const codes = errors.map((e) => {
      assert.ok(e instanceof PyWorkersError, String(e));
      assert.match((e as PyWorkersError).code, /^ERR_[A-Z_]+$/);
      return (e as PyWorkersError).code;
    });
    assert.deepEqual(codes, [
      'ERR_PYTHON', 'ERR_CONVERSION', 'ERR_CONVERSION', 'ERR_OUT_OF_RANGE', 'ERR_TIMEOUT', 'ERR_ABORTED',
      'ERR_PYTHON_NOT_FOUND', 'ERR_INVALID_ARGUMENT', 'ERR_CONTEXT_CLOSED', 'ERR_POOL_CLOSED',
    ]);
    assert.ok(errors[1] instanceof ConversionError);
  });
});

describe('protocol', () => {
  test('many requests in flight on one worker, each answered with its own result', async () => {
    const p = await pool({ workers: 1 });
    const calls = Array.from({ length: 300 }, (_, i) => p.eval('[i, i * i, "x" * (i % 7)]', { i }));
    assert.ok(p.stats().perWorker[0]!.inFlight > 1, 'requests are pipelined');
    const results = await Promise.all(calls);
    results.forEach((r, i) => assert.deepEqual(r, [i, i * i, 'x'.repeat(i % 7)]));
  });

  test("print() and writes to fds 1 and 2 arrive as 'stdout'/'stderr' events, never mixed with the data", async () => {
    const p = await pool();
    const events: Array<[string, OutputEvent]> = [];
    p.on('stdout', (e) => events.push(['stdout', e]));
    p.on('stderr', (e) => events.push(['stderr', e]));
    await p.exec('import os, sys\ndef noisy(n):\n    print("printed", n)\n    print("x" * 100000)\n    sys.stderr.write("to stderr\\n")\n    os.write(1, b"raw fd 1\\n")\n    os.write(2, b"raw fd 2\\n")\n    return n * 2');
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => p.call('__main__', 'noisy', [i])));
    assert.deepEqual(results, Array.from({ length: 20 }, (_, i) => i * 2));
    assert.equal(await p.eval('os.system("echo from a subprocess")'), 0);
    const worker = p.stats().perWorker[0]!;
    const text = (stream: string) => ({
      get: () => events.filter(([s]) => s === stream).map(([, e]) => e.text).join(''),
    });
    assert.ok(await until(() => text('stdout').get().includes('from a subprocess') && text('stderr').get().split('raw fd 2').length > 20));
    const stdout = text('stdout').get();
    const stderr = text('stderr').get();
    for (let i = 0; i < 20; i++) assert.ok(stdout.includes(`printed ${i}\n`));
    assert.equal(stdout.split('raw fd 1\n').length - 1, 20);
    assert.equal(stderr.split('to stderr\n').length - 1, 20);
    for (const [, e] of events) {
      assert.equal(e.workerId, worker.workerId);
      assert.equal(e.pid, worker.pid);
      assert.equal(typeof e.text, 'string');
    }
  });
});

describe('examples', () => {
  test('examples/basics.ts runs', async () => {
    const { code, stdout, stderr } = await runFile(path.join(ROOT, 'examples', 'basics.ts'));
    assert.equal(code, 0, stderr);
    for (const line of ['sqrt: 4', 'eval: 25', 'double: 42', 'async: awaited', 'counter: 5', 'other context sees counter: false', '2**70: 1180591620717411303424n', 'error: ERR_PYTHON ZeroDivisionError division by zero', 'refused: ERR_CONVERSION', 'factorial(20): 2432902008176640000n', 'done']) {
      assert.ok(stdout.includes(line), `missing ${JSON.stringify(line)} in:\n${stdout}`);
    }
  });
});
