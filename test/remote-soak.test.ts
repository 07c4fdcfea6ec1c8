/**
 * The remote soak: three agents (processes of their own) behind proxies, 50,000 calls while agents are
 * SIGKILLed and restarted, SIGSTOPped and continued, and their connections cut. Every call settles; executions
 * are counted in Python (one line per execution in a shared file): a call that succeeded ran exactly once, one
 * that failed with WorkerCrashedError (it was on a lost agent and may have run) at most once, none twice.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createPool, WorkerCrashedError } from '../src/index.js';
import { sleep } from './helpers.js';
import { AgentProcess, CutProxy, freePort, hasOpenssl, makeCerts, TOKEN } from './remote-helpers.js';

const CALLS = 50_000;
const IN_FLIGHT = 64;

test('50,000 calls through three agents under SIGKILL, SIGSTOP and cut connections: 0 lost, 0 run twice, 0 hung', { skip: !hasOpenssl() && 'openssl is not installed (CI installs it)', timeout: 240_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pyworkers-remote-soak-'));
  const log = path.join(dir, 'executions');
  const ports = await Promise.all([0, 1, 2].map(() => freePort()));
  const agents = await Promise.all(ports.map((port) => AgentProcess.start({ port, args: ['--workers', '2'] })));
  const proxies = ports.map((port) => new CutProxy(() => port));
  await Promise.all(proxies.map((p) => p.start()));
  const pool = await createPool({
    forwardOutput: false,
    remote: {
      endpoints: proxies.map((p) => `127.0.0.1:${p.port}`),
      token: TOKEN,
      ca: makeCerts().ca,
      heartbeatInterval: 100,
      heartbeatTimeout: 700,
      connectTimeout: 1000,
      reconnect: { initialDelay: 20, maxDelay: 300 },
    },
  });
  const chaos = { kills: 0, stops: 0, cuts: 0 };
  try {
    await pool.exec(`import os\n_log = os.open(${JSON.stringify(log)}, os.O_WRONLY | os.O_APPEND | os.O_CREAT)\nimport time\ndef record(i):\n    os.write(_log, b'%d\\n' % i)\n    time.sleep(0.001)\n    return i`);
    let running = true;
    const monkey = (async () => {
      let round = 0;
      while (running) {
        await sleep(150);
        const i = round++ % 3;
        const action = round % 3;
        if (action === 0) {
          agents[i]!.signal('SIGKILL');
          await agents[i]!.exited;
          chaos.kills++;
          await sleep(150);
          agents[i] = await AgentProcess.start({ port: ports[i], args: ['--workers', '2'] });
        } else if (action === 1) {
          agents[i]!.signal('SIGSTOP');
          chaos.stops++;
          await sleep(900); // past heartbeatTimeout: the host gives it up
          agents[i]!.signal('SIGCONT');
        } else {
          proxies[i]!.cut();
          chaos.cuts++;
        }
      }
    })();

    const outcome = new Array<'ok' | 'crashed' | undefined>(CALLS);
    const other: unknown[] = [];
    let next = 0;
    const lane = async () => {
      while (next < CALLS) {
        const i = next++;
        try {
          const value = await pool.call('__main__', 'record', [i]);
          assert.equal(value, i);
          outcome[i] = 'ok';
        } catch (error) {
          if (error instanceof WorkerCrashedError) outcome[i] = 'crashed';
          else other.push(error);
        }
      }
    };
    const started = Date.now();
    let hung: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(Array.from({ length: IN_FLIGHT }, lane)),
      new Promise((_, reject) => (hung = setTimeout(() => reject(new Error(`calls hung: ${outcome.filter((o) => o === undefined).length} unsettled`)), 180_000))),
    ]).finally(() => clearTimeout(hung));
    running = false;
    await monkey;
    const seconds = (Date.now() - started) / 1000;

    assert.deepEqual(other.map(String), [], 'every failure is a WorkerCrashedError');
    const counts = new Map<number, number>();
    for (const line of readFileSync(log, 'utf8').split('\n')) if (line) counts.set(Number(line), (counts.get(Number(line)) ?? 0) + 1);
    let ok = 0;
    let crashed = 0;
    let crashedUnrun = 0;
    for (let i = 0; i < CALLS; i++) {
      const runs = counts.get(i) ?? 0;
      assert.ok(outcome[i] !== undefined, `call ${i} never settled`);
      if (outcome[i] === 'ok') {
        ok++;
        assert.equal(runs, 1, `call ${i} succeeded and ran ${runs} times`);
      } else {
        crashed++;
        if (runs === 0) crashedUnrun++;
        assert.ok(runs <= 1, `call ${i} ran ${runs} times`);
      }
    }
    assert.ok(chaos.kills >= 2 && chaos.stops >= 2 && chaos.cuts >= 2, `chaos ${JSON.stringify(chaos)}`);
    assert.ok(ok > CALLS * 0.9, `${ok} of ${CALLS} succeeded`);
    console.log(`# remote soak: ${CALLS} calls in ${seconds.toFixed(1)} s, ${ok} ok, ${crashed} failed in doubt (WorkerCrashedError; ${crashedUnrun} of them had not run), 0 twice; ${chaos.kills} SIGKILLs, ${chaos.stops} SIGSTOPs, ${chaos.cuts} cuts`);
  } finally {
    await pool.destroy();
    await Promise.all(agents.map((a) => a.stop()));
    await Promise.all(proxies.map((p) => p.close()));
    rmSync(dir, { recursive: true, force: true });
  }
});
