/**
 * Shared by the test files: every pool is created through `pool()` and destroyed after each test, so a
 * failing test cannot leave workers behind or hang the suite.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { afterEach } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { createPool, type Pool, type PoolOptions } from '../src/index.js';

const pools = new Set<Pool>();

afterEach(async () => {
  const open = [...pools];
  pools.clear();
  await Promise.all(open.map((p) => p.destroy()));
});

/** A pool destroyed after the current test. Output is not forwarded unless asked. */
export async function pool(options: PoolOptions = {}): Promise<Pool> {
  const p = await createPool({ workers: 1, forwardOutput: false, ...options });
  pools.add(p);
  return p;
}

/** Resolve after `ms`. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Whether a process with this pid is alive (and not a zombie). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) Z /.test(stat);
  } catch {
    return false;
  }
}

/** Poll `check` until it is true or `ms` pass. */
export async function until(check: () => boolean | Promise<boolean>, ms = 5000, step = 20): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await sleep(step);
  }
  return check();
}

/** The error `promise` rejects with (fails the test when it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail('expected a rejection');
}

/**
 * An interpreter that can import `module` (numpy, pandas): $PYWORKERS_TEST_PYTHON, `python3` or Debian's
 * `/usr/bin/python3` (which `apt-get install python3-numpy` equips), or undefined.
 */
export function pythonWith(module: string): string | undefined {
  for (const candidate of [process.env.PYWORKERS_TEST_PYTHON, 'python3', '/usr/bin/python3']) {
    if (!candidate) continue;
    try {
      return execFileSync(candidate, ['-c', `import ${module}, sys; print(sys.executable)`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      // not this one
    }
  }
  return undefined;
}

/**
 * Test options that skip a test needing `module` where no interpreter has it, saying why. In CI (`CI=true`)
 * nothing is skipped: CI installs these packages, so a missing one fails the test.
 */
export function requires(python: string | undefined, module: string): { skip: string | false } {
  if (python || process.env.CI) return { skip: false };
  return { skip: `no Python with ${module} here (install it, e.g. apt-get install python3-${module})` };
}

/** The interpreter a test needs, or a failure that says it is missing. */
export function need(python: string | undefined, module: string): string {
  if (!python) assert.fail(`no Python interpreter can import ${module}: .ci/run installs it (python3-${module})`);
  return python;
}

/** Collect garbage in this process now (the test runner has no --expose-gc). */
export function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}
