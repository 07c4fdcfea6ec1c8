/**
 * Remote workers over a slow network: an agent in a network namespace of its own behind a veth pair whose
 * namespace end delays every packet with `tc netem`, next to an agent on loopback. Round trips pay the delay,
 * heartbeats keep a slow agent (that answers) in, a slow agent does not hold the others back, and an agent whose
 * packets stop arriving is given up within heartbeatTimeout and taken back when they arrive again.
 *
 * Needs root (namespaces, links, qdiscs), iproute2 (`ip`, `tc`), openssl and a kernel with the netem qdisc
 * (sch_netem). Elsewhere the tests skip and say which is missing; in CI (`CI` set) they fail instead: .ci/run
 * installs the tools, and CI must run them.
 *
 * The delay is on the namespace's end only: it delays what leaves the agent (answers, pongs, the handshake's
 * replies), so each round trip from the host takes DELAY_MS more, not twice that. `loss 100%` on the same qdisc
 * silences the agent while it still hears the host (it sees the host give up, and frees its lease).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { createPool, WorkerCrashedError, type Pool, type WorkerExitEvent } from '../src/index.js';
import { alive, sleep, until } from './helpers.js';
import { AgentProcess, hasOpenssl, makeServerCert, remoteOptions } from './remote-helpers.js';

const CI = Boolean(process.env.CI);
/** One-way delay added to the namespace's packets (ms): each round trip takes this much longer. */
const DELAY_MS = 25;
/** Namespaces of these tests are named so; a run removes those of runs that died before their cleanup. */
const PREFIX = 'pyw-netem-';

function findTool(name: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/sbin']) {
    if (!dir) continue;
    try {
      accessSync(path.join(dir, name), constants.X_OK);
      return path.join(dir, name);
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Run a command; its stderr (trimmed) in the error's message. */
function run(file: string, args: string[]): string {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`${path.basename(file)} ${args.join(' ')}: ${e.stderr?.trim() || e.message}`, { cause: error });
  }
}

/**
 * A network namespace joined to this one by a veth pair (a /30 of 10.213.0.0/16 chosen by pid), with a netem
 * qdisc on the namespace's end.
 */
class NetemLink {
  readonly ns = `${PREFIX}${process.pid}`;
  readonly hostIf = `pwh${process.pid}`;
  readonly nsIf = `pwn${process.pid}`;
  readonly hostIp: string;
  readonly nsIp: string;
  #up = false;

  constructor(
    private readonly ip: string,
    private readonly tc: string,
  ) {
    const slot = process.pid % 16384;
    const base = (slot % 64) * 4;
    this.hostIp = `10.213.${slot >> 6}.${base + 1}`;
    this.nsIp = `10.213.${slot >> 6}.${base + 2}`;
  }

  /** Namespaces of earlier runs whose process is gone (a run killed before its `after`). */
  removeStale(): void {
    const listed = run(this.ip, ['netns', 'list']);
    for (const line of listed.split('\n')) {
      const name = line.split(' ')[0] ?? '';
      const pid = Number(name.slice(PREFIX.length));
      if (!name.startsWith(PREFIX) || !Number.isInteger(pid) || pid <= 0) continue;
      if (pid === process.pid || !alive(pid)) run(this.ip, ['netns', 'delete', name]);
    }
  }

  /** Create it; throws with what failed (the caller skips or fails). Leaves nothing behind when it throws. */
  setUp(): void {
    this.removeStale();
    try {
      run(this.ip, ['netns', 'add', this.ns]);
    } catch (error) {
      throw new Error(`cannot create a network namespace: ${(error as Error).message}`, { cause: error });
    }
    this.#up = true;
    try {
      run(this.ip, ['link', 'add', this.hostIf, 'type', 'veth', 'peer', 'name', this.nsIf, 'netns', this.ns]);
      run(this.ip, ['address', 'add', `${this.hostIp}/30`, 'dev', this.hostIf]);
      run(this.ip, ['link', 'set', this.hostIf, 'up']);
      run(this.ip, ['-n', this.ns, 'address', 'add', `${this.nsIp}/30`, 'dev', this.nsIf]);
      run(this.ip, ['-n', this.ns, 'link', 'set', this.nsIf, 'up']);
      run(this.ip, ['-n', this.ns, 'link', 'set', 'lo', 'up']);
      this.#addNetem();
    } catch (error) {
      this.tearDown();
      throw error;
    }
  }

  #addNetem(): void {
    const add = () => run(this.tc, ['-n', this.ns, 'qdisc', 'add', 'dev', this.nsIf, 'root', 'netem', 'delay', `${DELAY_MS}ms`]);
    try {
      add();
      return;
    } catch (error) {
      // The kernel loads sch_netem on demand where it can; where it cannot (a container), try modprobe once.
      const modprobe = findTool('modprobe');
      if (modprobe) {
        try {
          run(modprobe, ['sch_netem']);
          add();
          return;
        } catch {
          // the first error says it best
        }
      }
      throw new Error(`the netem qdisc cannot be added (a kernel without sch_netem, CONFIG_NET_SCH_NETEM?): ${(error as Error).message}`, { cause: error });
    }
  }

  /** The namespace end's netem settings from now on, e.g. `delay 25ms` or `delay 25ms loss 100%`. */
  netem(...settings: string[]): void {
    run(this.tc, ['-n', this.ns, 'qdisc', 'change', 'dev', this.nsIf, 'root', 'netem', ...settings]);
  }

  /** `ip netns exec NS`: a command prefix that runs (execs) its command in the namespace. */
  get exec(): string[] {
    return [this.ip, 'netns', 'exec', this.ns];
  }

  /** Delete the namespace (its veth end goes with it, and the pair with that) once nothing runs in it. */
  tearDown(): void {
    if (!this.#up) return;
    this.#up = false;
    try {
      run(this.ip, ['netns', 'delete', this.ns]);
    } catch {
      // already gone
    }
    // The host's end lives on while a process still holds the namespace: remove it now rather than later.
    try {
      run(this.ip, ['link', 'delete', this.hostIf]);
    } catch {
      // gone with the namespace
    }
  }
}

/** Why these tests cannot run here, or undefined. */
function missing(): { reason?: string; ip?: string; tc?: string } {
  if (process.platform !== 'linux') return { reason: 'network namespaces and tc netem are Linux' };
  if (process.getuid?.() !== 0) return { reason: 'needs root (a network namespace, a veth pair and a netem qdisc)' };
  if (!hasOpenssl()) return { reason: 'openssl is not installed (it makes the agents\' certificates)' };
  const ip = findTool('ip');
  const tc = findTool('tc');
  if (!ip || !tc) return { reason: 'iproute2 is not installed (ip, tc): apt-get install iproute2' };
  return { ip, tc };
}

const pools = new Set<Pool>();
async function remotePool(agents: AgentProcess[], remote: Record<string, unknown> = {}, options: Record<string, unknown> = {}): Promise<Pool> {
  const pool = await createPool({ forwardOutput: false, ...options, remote: remoteOptions(agents, { reconnect: { initialDelay: 50, maxDelay: 500 }, ...remote }) as never });
  pools.add(pool);
  return pool;
}
async function destroy(pool: Pool): Promise<void> {
  pools.delete(pool);
  await pool.destroy();
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const readyWorkers = (pool: Pool) => pool.stats().perWorker.filter((w) => w.state === 'ready').length;

describe(`remote workers behind tc netem (${DELAY_MS} ms added to each round trip)`, () => {
  let link: NetemLink | undefined;
  let skipped: string | undefined;
  /** The agent in the namespace, behind the delay. */
  let slow: AgentProcess;
  /** The agent on loopback. */
  let fast: AgentProcess;
  const cleanUp = () => link?.tearDown();

  before(async () => {
    const { reason, ip, tc } = missing();
    let why = reason;
    if (!why) {
      const candidate = new NetemLink(ip!, tc!);
      try {
        candidate.setUp();
        link = candidate;
      } catch (error) {
        why = (error as Error).message;
      }
    }
    if (why) {
      // The issue asks for this test in CI: there, what is missing is a failure, not a skip.
      if (CI) assert.fail(`${why} (CI must run the netem test: root, iproute2 from .ci/run, a kernel with sch_netem)`);
      skipped = why;
      return;
    }
    process.once('exit', cleanUp); // a test that throws past `after` still leaves no namespace behind
    fast = await AgentProcess.start({ args: ['--workers', '1'] });
    slow = await AgentProcess.start({ host: link!.nsIp, cert: makeServerCert([`IP:${link!.nsIp}`]), prefix: link!.exec, args: ['--workers', '1'] });
  });

  after(async () => {
    try {
      await Promise.all([...pools].map(destroy));
      await Promise.all([slow?.stop(), fast?.stop()]);
    } finally {
      cleanUp();
      process.off('exit', cleanUp);
    }
  });

  /** Skip this test when the suite cannot run here; true when it can. */
  function runs(t: TestContext): boolean {
    if (skipped) t.skip(skipped);
    return !skipped;
  }

  test('a round trip takes the added delay; heartbeats keep the slow agent in', async (t) => {
    if (!runs(t)) return;
    const pool = await remotePool([slow], { heartbeatInterval: 100, heartbeatTimeout: 1000 });
    try {
      const exits: WorkerExitEvent[] = [];
      pool.on('workerExit', (e) => exits.push(e));
      const pid = pool.stats().perWorker[0]!.pid;
      for (let i = 0; i < 3; i++) await pool.eval('1'); // warm
      const times: number[] = [];
      for (let i = 0; i < 20; i++) {
        const started = performance.now();
        assert.equal(await pool.eval('1 + 1'), 2);
        times.push(performance.now() - started);
      }
      const m = median(times);
      t.diagnostic(`round trip: median ${m.toFixed(1)} ms, min ${Math.min(...times).toFixed(1)} ms, max ${Math.max(...times).toFixed(1)} ms`);
      assert.ok(m >= DELAY_MS - 1, `the median round trip ${m.toFixed(1)} ms is below the added ${DELAY_MS} ms: is the delay on the path?`);
      assert.ok(m < DELAY_MS * 4 + 100, `the median round trip ${m.toFixed(1)} ms`);
      // Pongs arrive DELAY_MS late, far inside heartbeatTimeout: nothing is lost over 3 s (30 heartbeats).
      await sleep(3000);
      assert.deepEqual(exits, [], 'no worker left');
      const stats = pool.stats();
      assert.equal(stats.workers, 1);
      assert.equal(stats.restarts, 0);
      assert.equal(stats.perWorker[0]!.pid, pid, 'the same worker, on the same connection');
      assert.equal(await pool.eval('6 * 7'), 42);
    } finally {
      await destroy(pool);
    }
  });

  test('a slow agent does not hold the others back: work goes to whichever worker is free', async (t) => {
    if (!runs(t)) return;
    const pool = await remotePool([slow, fast], {}, { pipelineDepth: 1 });
    try {
      // createPool resolves with the first agent in; the other may be a moment behind.
      assert.ok(await until(() => readyWorkers(pool) === 2, 10_000), 'both agents leased a worker');
      const served = new Map<number, number>();
      const total = 400;
      let next = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < total) {
            next++;
            const agentPid = await pool.call<number>('os', 'getppid'); // a worker's parent is its agent
            served.set(agentPid, (served.get(agentPid) ?? 0) + 1);
          }
        }),
      );
      const wall = performance.now() - started;
      const bySlow = served.get(slow.pid) ?? 0;
      const byFast = served.get(fast.pid) ?? 0;
      t.diagnostic(`${total} calls in ${wall.toFixed(0)} ms: ${byFast} on loopback, ${bySlow} behind the delay`);
      assert.equal(bySlow + byFast, total, `every call ran on one of the two agents: ${JSON.stringify([...served])}`);
      assert.ok(bySlow >= 1, 'the slow agent served some');
      assert.ok(byFast >= total * 0.8, `the loopback agent served the large majority (${byFast} of ${total})`);
      // Each call behind the delay takes DELAY_MS or more: sequentially there, 400 calls would take 10 s.
      assert.ok(wall < (total * DELAY_MS) / 4, `${total} calls took ${wall.toFixed(0)} ms`);
    } finally {
      await destroy(pool);
    }
  });

  test('an agent whose packets stop is given up within heartbeatTimeout, and taken back when they flow again', async (t) => {
    if (!runs(t)) return;
    const heartbeatInterval = 100;
    const heartbeatTimeout = 800;
    const pool = await remotePool([slow, fast], { heartbeatInterval, heartbeatTimeout, connectTimeout: 1000 }, { pipelineDepth: 1 });
    try {
      assert.ok(await until(() => readyWorkers(pool) === 2, 10_000), 'both agents leased a worker');
      const exits: Array<{ at: number; event: WorkerExitEvent }> = [];
      pool.on('workerExit', (event) => exits.push({ at: performance.now(), event }));
      // Calls all along: they must keep completing on the loopback agent while the other is silent.
      let stop = false;
      let completed = 0;
      const failures: unknown[] = [];
      const load = Promise.all(
        Array.from({ length: 4 }, async () => {
          while (!stop) {
            try {
              await pool.call('os', 'getppid');
              completed++;
            } catch (error) {
              failures.push(error);
            }
          }
        }),
      );
      try {
        await sleep(300);
        link!.netem('delay', `${DELAY_MS}ms`, 'loss', '100%');
        const silenced = performance.now();
        const completedBefore = completed;
        assert.ok(await until(() => pool.stats().workers === 1, heartbeatTimeout * 4), 'the silent agent\'s worker left');
        const detectedMs = (exits[0]?.at ?? performance.now()) - silenced;
        t.diagnostic(`given up after ${detectedMs.toFixed(0)} ms (heartbeatTimeout ${heartbeatTimeout}, heartbeatInterval ${heartbeatInterval})`);
        assert.equal(exits.length, 1, 'one worker left');
        // The last pong came at most an interval before the loss; the timeout is checked once an interval.
        assert.ok(detectedMs >= heartbeatTimeout - heartbeatInterval - DELAY_MS, `given up after ${detectedMs.toFixed(0)} ms: before heartbeatTimeout`);
        assert.ok(detectedMs <= heartbeatTimeout + heartbeatInterval + 500, `given up after ${detectedMs.toFixed(0)} ms`);
        // It stays out while silent; the loopback agent serves meanwhile.
        await sleep(700);
        assert.equal(pool.stats().workers, 1, 'no worker came back while the agent was silent');
        const duringOutage = completed - completedBefore;
        assert.ok(duringOutage > 50, `${duringOutage} calls completed while one agent was silent`);
        // A call on the silent agent's worker when it fell silent rejects; no other fails.
        assert.ok(failures.length <= 1, `${failures.length} calls failed: ${failures.map(String).join('; ')}`);
        for (const error of failures) assert.ok(error instanceof WorkerCrashedError, String(error));

        link!.netem('delay', `${DELAY_MS}ms`);
        const healed = performance.now();
        assert.ok(await until(() => readyWorkers(pool) === 2, 8000), 'the host took the agent back');
        t.diagnostic(`back ${(performance.now() - healed).toFixed(0)} ms after the packets flowed again`);
      } finally {
        stop = true;
        await load;
        link!.netem('delay', `${DELAY_MS}ms`);
      }
      // Both agents serve again (each call sleeps so that both workers are busy at once).
      const where = await Promise.all(Array.from({ length: 8 }, () => pool.eval<number>('__import__("time").sleep(0.05) or __import__("os").getppid()')));
      assert.deepEqual(new Set(where), new Set([slow.pid, fast.pid]));
      assert.ok(failures.length <= 1);
    } finally {
      await destroy(pool);
    }
  });
});
