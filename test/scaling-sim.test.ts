/**
 * The scaling simulation (bench/scaling-sim.ts) that docs/scaling.md quotes: its invariants, without Python and
 * without the command-line part. Each test runs in well under a second.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  allocateLeases,
  backoffDelay,
  chooseAgents,
  connectionCosts,
  DEFAULTS,
  EventQueue,
  expectedHostsWithoutWorkersByDefault,
  grant,
  heartbeatBytes,
  inDoubtBound,
  leaseRace,
  plateauAttemptsPerSecond,
  reconnectStorm,
  Rng,
  runCase,
  simulatePool,
  type CaseSettings,
  type StormSettings,
} from '../bench/scaling-sim.js';

const sum = (xs: ArrayLike<number>) => Array.from(xs).reduce((a, b) => a + b, 0);

describe('scaling simulation', () => {
  test('the event queue pops in time order, ties in the order pushed', () => {
    const q = new EventQueue<string>();
    const rng = new Rng(7);
    const times = Array.from({ length: 2000 }, () => Math.floor(rng.next() * 100));
    times.forEach((t, i) => q.push(t, `${t}:${i}`));
    let last = -1;
    let lastIndex = -1;
    while (q.size > 0) {
      const [t, item] = q.pop();
      const index = Number(item.split(':')[1]);
      assert.ok(t > last || (t === last && index > lastIndex), `${t}:${index} after ${last}:${lastIndex}`);
      last = t;
      lastIndex = index;
    }
  });

  test("the agent's grant: min(asked, --per-host, free); nothing free is a refusal", () => {
    assert.equal(grant(undefined, 8, 8), 8); // today's default: the first host takes all
    assert.equal(grant(1, 8, 8), 1);
    assert.equal(grant(4, 2, 8), 2);
    assert.equal(grant(4, 8, 3), 3);
    assert.equal(grant(1, 8, 0), 0);
  });

  test('connections kept equal H × agents connected when every host is let in, and always sum the same both ways', () => {
    const base = { ...DEFAULTS, label: 't' };
    // Room for everyone: 2 hosts × 4 workers on each of 3 agents of 8.
    const fits = allocateLeases({ ...base, agents: 3, hosts: 2, workersPerAgent: 4 });
    assert.equal(connectionCosts(fits).established, 2 * 3);
    // No lease (hypothetical): every (host, agent) pair tried is kept.
    for (const connectTo of [undefined, 5]) {
      const shared = allocateLeases({ ...base, agents: 40, hosts: 300, model: 'shared', connectTo });
      assert.equal(connectionCosts(shared).established, 300 * (connectTo ?? 40));
      assert.equal(connectionCosts(shared).attempted, 300 * (connectTo ?? 40));
    }
    // The lease: agents never lease more than they have; counts agree from both sides.
    for (const extra of [{}, { workersPerAgent: 1 }, { workersPerAgent: 1, connectTo: 4 }, { workersPerAgent: 2, connectTo: 4, fallback: true }]) {
      const a = allocateLeases({ ...base, agents: 50, hosts: 400, ...extra });
      assert.equal(sum(a.agentHosts), sum(a.hostAgents));
      assert.equal(sum(a.agentLeased), sum(a.hostWorkers));
      assert.ok(Array.from(a.agentLeased).every((n) => n <= base.workers));
      // Every pair tried is kept or refused (with fallback a refused host tries further pairs).
      if (!('fallback' in extra)) assert.equal(sum(a.agentHosts) + sum(a.agentRefused), 400 * a.connectTo);
      assert.equal(connectionCosts(a).attempted, 400 * a.connectTo);
    }
  });

  test('rendezvous: each host picks k distinct agents, the same ones every time', () => {
    const picks = chooseAgents(42, 100, 8);
    assert.equal(new Set(picks).size, 8);
    assert.deepEqual(chooseAgents(42, 100, 8), picks);
    assert.deepEqual(chooseAgents(42, 100, 3), picks.slice(0, 3));
    assert.deepEqual(chooseAgents(1, 5, 9), [0, 1, 2, 3, 4]);
  });

  test("with today's defaults, hosts starting together leave (1 - 1/H)^A of them without a worker", () => {
    const base = { ...DEFAULTS, label: 't', agents: 100, hosts: 100, startSpreadMs: 0 };
    let without = 0;
    const trials = 100;
    for (let i = 0; i < trials; i++) {
      const a = allocateLeases({ ...base, seed: 1000 + i });
      without += Array.from(a.hostWorkers).filter((w) => w === 0).length;
    }
    const expected = expectedHostsWithoutWorkersByDefault(100, 100); // 36.6
    assert.ok(Math.abs(without / trials - expected) < 3, `${without / trials} vs ${expected}`);
  });

  test('backoff: the ceiling doubles from initialDelay to maxDelay; full jitter stays under it', () => {
    const rng = new Rng(3);
    assert.deepEqual([0, 1, 2, 5, 6, 30].map((n) => backoffDelay(n, 100, 5000, false, rng)), [100, 200, 400, 3200, 5000, 5000]);
    for (let n = 0; n < 10; n++) {
      const d = backoffDelay(n, 100, 5000, true, rng);
      assert.ok(d >= 0 && d < Math.min(5000, 100 * 2 ** n));
    }
    // At the ceiling, a refused host tries 2000 / maxDelay times per second.
    let t = 0;
    let attempts = 0;
    while (t < 10_000_000) {
      t += backoffDelay(30, 100, 5000, true, rng);
      attempts++;
    }
    assert.ok(Math.abs(attempts / 10_000 - plateauAttemptsPerSecond(5000)) < 0.01);
  });

  test('full jitter spreads a reconnect storm: the busiest 100 ms gets far fewer attempts than without', () => {
    const s: StormSettings = { hosts: 10_000, upAtMs: 2000, jitter: true, initialDelay: 100, maxDelay: 5000, detectMs: 0, detectSpreadMs: 1, windowMs: 100, seed: 1 };
    const jitter = reconnectStorm(s);
    const none = reconnectStorm({ ...s, jitter: false });
    assert.equal(none.peakPerWindow, 10_000); // in step: every host in the same window
    assert.ok(jitter.peakPerWindow < none.peakPerWindow / 5, `${jitter.peakPerWindow} vs ${none.peakPerWindow}`);
    // The price: the last host is back later (up to a ceiling after the agent is).
    assert.ok(jitter.reconnected.max > none.reconnected.max);
    assert.ok(jitter.reconnected.max <= 5000 + 20);
  });

  test('a lost agent leaves its workers × pipelineDepth calls in doubt when its hosts are saturated, never more', () => {
    for (const pipelineDepth of [32, 1]) {
      const base = { workers: 8, lost: 3, callMs: 10, pipelineDepth, rttMs: 0.5, seed: 1 };
      // Overloaded: every worker holds pipelineDepth calls, the rest wait in the host's queue.
      const saturated = simulatePool({ ...base, utilisation: 3, detectMs: 0, samples: 200 });
      assert.equal(saturated.inDoubt.min, inDoubtBound(3, pipelineDepth));
      assert.equal(saturated.inDoubt.max, inDoubtBound(3, pipelineDepth));
      // Any load: at most the bound.
      for (const utilisation of [0.3, 0.8, 0.95]) {
        for (const detectMs of [0, 5500]) {
          const r = simulatePool({ ...base, utilisation, detectMs, samples: detectMs ? 5 : 300 });
          assert.ok(r.inDoubt.max <= r.bound, `${utilisation} ${detectMs}: ${r.inDoubt.max} > ${r.bound}`);
        }
      }
    }
    // A silent agent that held the host's whole pool: calls keep going there until it is taken for lost.
    const silent = simulatePool({ workers: 4, lost: 4, utilisation: 0.5, callMs: 10, pipelineDepth: 32, rttMs: 0.5, detectMs: 5500, samples: 3, seed: 2 });
    assert.equal(silent.inDoubt.min, inDoubtBound(4, 32));
  });

  test("the pool model agrees with queueing theory: an 8-worker pool at 50 % holds ~4 calls", () => {
    const r = simulatePool({ workers: 8, lost: 8, utilisation: 0.5, callMs: 10, pipelineDepth: 32, rttMs: 0, detectMs: 0, samples: 3000, seed: 5 });
    assert.ok(Math.abs(r.inDoubt.mean - 4.03) < 0.4, String(r.inDoubt.mean)); // M/M/8 at a = 4: L = 4 + 0.03
  });

  test("a restarted agent's workers go to whoever reconnects first: former holders race the refused hosts", () => {
    const alone = leaseRace({ workers: 8, workersPerAgent: 1, formerHolders: 8, refusedHosts: 0, upAtMs: 2000, initialDelay: 100, maxDelay: 5000, seed: 1 });
    assert.equal(alone.toFormerHolders, 8);
    assert.ok(alone.leasedAtMs >= 2000 && alone.leasedAtMs < 2000 + 5000 + 20);
    const crowded = leaseRace({ workers: 8, workersPerAgent: 1, formerHolders: 8, refusedHosts: 9_992, upAtMs: 2000, initialDelay: 100, maxDelay: 5000, seed: 1 });
    assert.equal(crowded.leased, 8);
    assert.ok(crowded.toFormerHolders <= 1, String(crowded.toFormerHolders));
  });

  test('heartbeat sizes: PING is a bare header, PONG grows with the workers reported', () => {
    const one = heartbeatBytes(1);
    const eight = heartbeatBytes(8);
    assert.equal(one.ping, 9 + 29);
    assert.ok(eight.pong - one.pong > 7 * 30 && eight.pong - one.pong < 7 * 45);
  });

  test('deterministic: the same seed gives the same figures, another seed others', () => {
    const c: CaseSettings = { ...DEFAULTS, label: 't', agents: 20, hosts: 60, workersPerAgent: 1, connectTo: 3, trials: 3 };
    const figures = (seed: number) => {
      const r = runCase({ ...c, seed });
      return JSON.stringify({ costs: r.costs, without: r.withoutOverTrials, heartbeat: r.heartbeat, dns: r.dns, lost: r.lost, hosts: Array.from(r.alloc.hostWorkers) });
    };
    assert.equal(figures(11), figures(11));
    assert.notEqual(figures(11), figures(12));
    const storm = (seed: number) => JSON.stringify(reconnectStorm({ hosts: 500, upAtMs: 1000, jitter: true, initialDelay: 100, maxDelay: 5000, detectMs: 0, detectSpreadMs: 1, windowMs: 100, seed }));
    assert.equal(storm(4), storm(4));
    assert.notEqual(storm(4), storm(5));
  });
});
