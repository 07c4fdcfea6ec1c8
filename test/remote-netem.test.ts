/**
 * Remote workers over a slow network: an agent in a network namespace of its own, reached over a veth pair
 * whose namespace end delays what the agent sends, next to an agent on loopback. Round trips pay the delay,
 * heartbeats keep a slow agent (that answers) in, a slow agent does not hold the others back, and an agent whose
 * packets stop arriving is given up within heartbeatTimeout and taken back when they arrive again.
 *
 * The delay is made by one of two means, and each test says which (a `#` line) and why:
 * - `tc netem delay` on the namespace's end of the veth, where the kernel has the netem qdisc (sch_netem). It
 *   delays what leaves the agent (answers, pongs, the handshake's replies), so each round trip from the host takes
 *   DELAY_MS more, not twice that. `loss 100%` on the same qdisc silences the agent while it still hears the host
 *   (it sees the host give up, and frees its lease).
 * - Where the kernel has no netem (CONFIG_NET_SCH_NETEM unset, no module), or `tc` is missing, or
 *   PYWORKERS_TEST_NETEM=relay asks for it: a userspace relay in the namespace (test/delay-relay.ts). The agent
 *   then listens on the namespace's loopback, out of the host's reach, and the host connects to the relay on the
 *   namespace's veth address: namespace, veth and routing are the same, only the delay is made in userspace. The
 *   relay holds what the agent sends DELAY_MS (one way, as netem does); silenced, it drops everything either way
 *   and passes no close on, so the agent does not see the host give up: the host's reconnection ends its stale
 *   session there instead.
 *
 * Needs root (namespaces, links), iproute2 (`ip`; `tc` for netem) and openssl. Elsewhere the tests skip and say
 * which is missing; in CI (`CI` set) they fail instead: .ci/run installs the tools, and CI must run them. A kernel
 * without netem is no reason to skip: the relay stands in.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { createPool, WorkerCrashedError, type Pool, type WorkerExitEvent } from '../src/index.js';
import { alive, sleep, until } from './helpers.js';
import { AgentProcess, DelayRelay, hasOpenssl, makeServerCert, remoteOptions } from './remote-helpers.js';

const CI = Boolean(process.env.CI);
/** One-way delay added to what the agent in the namespace sends (ms): each round trip takes this much longer. */
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
 * qdisc on the namespace's end, or else a delay relay in the namespace in front of its agent.
 */
class SlowLink {
  readonly ns = `${PREFIX}${process.pid}`;
  readonly hostIf = `pwh${process.pid}`;
  readonly nsIf = `pwn${process.pid}`;
  readonly hostIp: string;
  readonly nsIp: string;
  /** Why the relay stands in for netem; undefined: netem. */
  #noNetem: string | undefined;
  #relay: DelayRelay | undefined;
  #endpoint: string | undefined;
  #up = false;

  constructor(
    private readonly ip: string,
    private readonly tc: string | undefined,
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
    } catch (error) {
      this.tearDown();
      throw error;
    }
    this.#noNetem = this.#addNetem();
  }

  /** Put netem on the namespace's end; undefined when done, else why it cannot be (the relay stands in then). */
  #addNetem(): string | undefined {
    if (process.env.PYWORKERS_TEST_NETEM === 'relay') return 'PYWORKERS_TEST_NETEM=relay';
    const tc = this.tc;
    if (!tc) return 'tc is not installed (iproute2)';
    const add = () => run(tc, ['-n', this.ns, 'qdisc', 'add', 'dev', this.nsIf, 'root', 'netem', 'delay', `${DELAY_MS}ms`]);
    try {
      add();
      return undefined;
    } catch (error) {
      // The kernel loads sch_netem on demand where it can; where it cannot (a container), try modprobe once.
      const modprobe = findTool('modprobe');
      if (modprobe) {
        try {
          run(modprobe, ['sch_netem']);
          add();
          return undefined;
        } catch {
          // the first error says it best
        }
      }
      const message = (error as Error).message;
      // What tc says of a qdisc the kernel has neither built in nor as a module.
      return /qdisc kind is unknown/i.test(message) ? `this kernel has no sch_netem (${message.replace(/^.*: (?=Error)/, 'tc: ')})` : `tc cannot add netem: ${message}`;
    }
  }

  /** How the agent's packets are delayed, and why so: for the tests' output. */
  get mechanism(): string {
    return this.#noNetem === undefined ? `netem (tc qdisc on ${this.nsIf}: delay ${DELAY_MS}ms)` : `userspace relay: ${this.#noNetem}`;
  }

  /** Start an agent in the namespace, behind the delay (and the relay in front of it where there is no netem). */
  async startAgent(args: string[]): Promise<AgentProcess> {
    const cert = makeServerCert([`IP:${this.nsIp}`]);
    if (this.#noNetem === undefined) {
      const agent = await AgentProcess.start({ host: this.nsIp, cert, prefix: this.exec, args });
      this.#endpoint = agent.endpoint;
      return agent;
    }
    // On the namespace's loopback the agent is out of the host's reach: the host can only come in through the relay.
    const agent = await AgentProcess.start({ host: '127.0.0.1', cert, prefix: this.exec, args });
    this.#relay = await DelayRelay.start({ host: this.nsIp, target: agent.endpoint, delay: DELAY_MS, prefix: this.exec });
    this.#endpoint = this.#relay.endpoint;
    return agent;
  }

  /** Where the host reaches the agent in the namespace (startAgent first). */
  get endpoint(): string {
    assert.ok(this.#endpoint, 'no agent in the namespace yet');
    return this.#endpoint;
  }

  /** Silence the agent (`loss 100%`: nothing of it arrives), or end that; once this resolves, it is so. */
  async loss(on: boolean): Promise<void> {
    if (this.#relay) await (on ? this.#relay.drop() : this.#relay.pass());
    else run(this.tc!, ['-n', this.ns, 'qdisc', 'change', 'dev', this.nsIf, 'root', 'netem', 'delay', `${DELAY_MS}ms`, ...(on ? ['loss', '100%'] : [])]);
  }

  /** Stop the relay, then tear down. */
  async close(): Promise<void> {
    await this.#relay?.stop();
    this.tearDown();
  }

  /** `ip netns exec NS`: a command prefix that runs (execs) its command in the namespace. */
  get exec(): string[] {
    return [this.ip, 'netns', 'exec', this.ns];
  }

  /** Delete the namespace (its veth end goes with it, and the pair with that) once nothing runs in it. */
  tearDown(): void {
    if (!this.#up) return;
    this.#up = false;
    this.#relay?.child.kill('SIGKILL');
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

/** Why these tests cannot run here, or the tools they run with (no `tc`: the relay delays). */
function missing(): { reason?: string; ip?: string; tc?: string } {
  if (process.platform !== 'linux') return { reason: 'network namespaces are Linux' };
  if (process.getuid?.() !== 0) return { reason: 'needs root (a network namespace, a veth pair, a qdisc)' };
  if (!hasOpenssl()) return { reason: 'openssl is not installed (it makes the agents\' certificates)' };
  const ip = findTool('ip');
  if (!ip) return { reason: 'iproute2 is not installed (ip): apt-get install iproute2' };
  return { ip, tc: findTool('tc') };
}

const pools = new Set<Pool>();
async function remotePool(agents: Array<{ endpoint: string }>, remote: Record<string, unknown> = {}, options: Record<string, unknown> = {}): Promise<Pool> {
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

describe(`remote workers behind a network namespace's delay (netem or a relay there: ${DELAY_MS} ms added to each round trip)`, () => {
  let link: SlowLink | undefined;
  let skipped: string | undefined;
  /** The agent in the namespace, behind the delay. */
  let slow: AgentProcess;
  /** Where the host reaches it: the agent itself (netem), or the relay in front of it. */
  let slowAt: { endpoint: string };
  /** The agent on loopback. */
  let fast: AgentProcess;
  const cleanUp = () => link?.tearDown();

  before(async () => {
    const { reason, ip, tc } = missing();
    let why = reason;
    if (!why) {
      const candidate = new SlowLink(ip!, tc);
      try {
        candidate.setUp();
        link = candidate;
      } catch (error) {
        why = (error as Error).message;
      }
    }
    if (why) {
      // The issue asks for this test in CI: there, what is missing is a failure, not a skip.
      if (CI) assert.fail(`${why} (CI must run the netem test: root, iproute2 and openssl from .ci/run)`);
      skipped = why;
      return;
    }
    process.once('exit', cleanUp); // a test that throws past `after` still leaves no namespace behind
    fast = await AgentProcess.start({ args: ['--workers', '1'] });
    slow = await link!.startAgent(['--workers', '1']);
    slowAt = { endpoint: link!.endpoint };
  });

  after(async () => {
    try {
      await Promise.all([...pools].map(destroy));
      await Promise.all([slow?.stop(), fast?.stop()]);
      await link?.close();
    } finally {
      cleanUp();
      process.off('exit', cleanUp);
    }
  });

  /** Skip this test when the suite cannot run here; true when it can (and the test's output says how the delay is made). */
  function runs(t: TestContext): boolean {
    if (skipped) t.skip(skipped);
    else t.diagnostic(`delay by ${link!.mechanism}`);
    return !skipped;
  }

  test('a round trip takes the added delay; heartbeats keep the slow agent in', async (t) => {
    if (!runs(t)) return;
    const pool = await remotePool([slowAt], { heartbeatInterval: 100, heartbeatTimeout: 1000 });
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
    const pool = await remotePool([slowAt, fast], {}, { pipelineDepth: 1 });
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
    const pool = await remotePool([slowAt, fast], { heartbeatInterval, heartbeatTimeout, connectTimeout: 1000 }, { pipelineDepth: 1 });
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
        await link!.loss(true);
        const silenced = performance.now();
        const completedBefore = completed;
        // Given up, the agent's worker takes nothing more (it is no longer 'ready'): that is when the host noticed.
        assert.ok(await until(() => readyWorkers(pool) === 1, heartbeatTimeout * 4), 'the host gave the silent agent up');
        const detectedMs = performance.now() - silenced;
        t.diagnostic(`given up after ${detectedMs.toFixed(0)} ms (heartbeatTimeout ${heartbeatTimeout}, heartbeatInterval ${heartbeatInterval})`);
        // The last pong came at most an interval before the loss; the timeout is checked once an interval.
        assert.ok(detectedMs >= heartbeatTimeout - heartbeatInterval - DELAY_MS, `given up after ${detectedMs.toFixed(0)} ms: before heartbeatTimeout`);
        assert.ok(detectedMs <= heartbeatTimeout + heartbeatInterval + 500, `given up after ${detectedMs.toFixed(0)} ms`);
        // Its worker leaves then, or once the host stops waiting for the agent's word on what it had started.
        assert.ok(await until(() => pool.stats().workers === 1, 5000), 'the silent agent\'s worker left');
        t.diagnostic(`its worker left ${((exits[0]?.at ?? performance.now()) - silenced).toFixed(0)} ms after the loss began`);
        assert.equal(exits.length, 1, 'one worker left');
        // It stays out while silent; the loopback agent serves meanwhile.
        await sleep(700);
        assert.equal(pool.stats().workers, 1, 'no worker came back while the agent was silent');
        const duringOutage = completed - completedBefore;
        assert.ok(duringOutage > 50, `${duringOutage} calls completed while one agent was silent`);
        // A call on the silent agent's worker when it fell silent rejects; no other fails.
        assert.ok(failures.length <= 1, `${failures.length} calls failed: ${failures.map(String).join('; ')}`);
        for (const error of failures) assert.ok(error instanceof WorkerCrashedError, String(error));

        await link!.loss(false);
        const healed = performance.now();
        assert.ok(await until(() => readyWorkers(pool) === 2, 8000), 'the host took the agent back');
        t.diagnostic(`back ${(performance.now() - healed).toFixed(0)} ms after the packets flowed again`);
      } finally {
        stop = true;
        await load;
        await link!.loss(false);
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
