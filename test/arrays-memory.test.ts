/**
 * Large payloads stay within bounds: a 100 MiB array's round trip holds at most two copies of the payload on
 * either side at its peak (here: the caller's array and the result on the host, one buffer in the worker).
 * A file of its own, so that this process's peak RSS is this test's.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { NDArray } from '../src/index.js';
import { pool } from './helpers.js';

const MiB = 1024 * 1024;
const PAYLOAD = 100 * MiB;

function status(pid: number, field: string): number {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)![1]) * 1024;
}

test('a 100 MiB array round trip holds at most two copies of the payload on either side', { skip: process.platform !== 'linux' && 'reads /proc' }, async () => {
  const p = await pool();
  const pid = p.stats().perWorker[0]!.pid!;
  const data = new Float64Array(PAYLOAD / 8);
  for (let i = 0; i < data.length; i += 512) data[i] = i; // resident, not just reserved
  (globalThis as { gc?: () => void }).gc?.();
  const hostBefore = process.memoryUsage().rss;
  const workerBefore = status(pid, 'VmRSS');

  const back = (await p.eval('x', { x: new NDArray(data, [data.length / 1024, 1024]) })) as NDArray<'float64'>;

  const hostPeak = process.resourceUsage().maxRSS * 1024;
  const workerPeak = status(pid, 'VmHWM');
  assert.deepStrictEqual(back.shape, [data.length / 1024, 1024]);
  assert.equal(back.data[data.length - 512], data.length - 512);
  const hostExtra = hostPeak - hostBefore;
  const workerExtra = workerPeak - workerBefore;
  // The host holds the caller's array (counted before) and the result (plus Node's read chunks the allocator has
  // not handed back yet: 10-20 % here); the worker one buffer, sent back as is. A copy more would be 2x.
  assert.ok(hostExtra <= 1.4 * PAYLOAD, `host peak grew by ${(hostExtra / MiB).toFixed(0)} MiB for a ${PAYLOAD / MiB} MiB payload`);
  assert.ok(workerExtra <= 1.4 * PAYLOAD, `worker peak grew by ${(workerExtra / MiB).toFixed(0)} MiB for a ${PAYLOAD / MiB} MiB payload`);
});
