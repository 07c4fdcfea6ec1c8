/**
 * The scaling simulation (bench/scaling-sim.ts) that docs/scaling.md quotes: its invariants (the agent's share-out
 * among its hosts, at most --workers + 1 processes, what a lost agent leaves in doubt...), without Python and
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
  expectedHostsWithoutWorkers,
  expectedHostsWithoutWorkersBefore,
  grantBefore,
  heartbeatBytes,
  inDoubtBound,
  leaseRace,
  plateauAttemptsPerSecond,
  reconnectStorm,
  Rng,
  rolloutStep,
  runCase,
  shareOut,
  simulateAgent,
  simulatePool,
  type AgentSimSettings,
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

  test("the agent's share-out: one each in turn in the order hosts came, up to what each asks and --per-host", () => {
    const u = undefined;
    assert.deepEqual(shareOut([u], 8), [8]); // a host alone, asking for no limit, gets all
    assert.deepEqual(shareOut([u, u], 4), [2, 2]); // 2 replicas on an agent of 4
    assert.deepEqual(shareOut([u, u, u], 4), [2, 1, 1]); // the first in the order gets the odd one
    assert.deepEqual(shareOut([1, u], 8), [1, 7]);
    assert.deepEqual(shareOut([u, u], 8, 3), [3, 3]); // --per-host 3: 2 workers unused
    assert.deepEqual(shareOut([u, u, u], 2), [1, 1, 0]); // more hosts than workers: the newcomer would be refused 'full'
    assert.deepEqual(shareOut([0, 2.5], 8), [6, 2]); // below 1: no limit; fractions floored (as agent.ts reads the HELLO)
    // The rule before, kept for comparison: min(asked, --per-host, free), nothing free is a refusal.
    assert.equal(grantBefore(undefined, 8, 8), 8);
    assert.equal(grantBefore(4, 2, 8), 2);
    assert.equal(grantBefore(4, 8, 3), 3);
    assert.equal(grantBefore(1, 8, 0), 0);
  });

  test('shares never exceed what a host asks or --per-host, never sum above the workers, and give every host one while hosts <= workers', () => {
    const rng = new Rng(9);
    for (let trial = 0; trial < 2000; trial++) {
      const workers = 1 + rng.int(16);
      const perHost = rng.next() < 0.3 ? 1 + rng.int(workers) : workers;
      const wants = Array.from({ length: rng.int(24) }, () => (rng.next() < 0.5 ? undefined : 1 + rng.int(10)));
      const shares = shareOut(wants, workers, perHost);
      const caps = wants.map((w) => Math.min(w ?? Infinity, perHost));
      shares.forEach((g, i) => assert.ok(g >= 0 && g <= caps[i]!, `${g} > ${caps[i]}`));
      assert.equal(sum(shares), Math.min(workers, sum(caps))); // nothing left unshared that a host asked for
      if (wants.length <= workers) assert.ok(shares.every((g) => g >= 1), JSON.stringify({ workers, wants, shares }));
      // Fair: hosts below their cap differ by one at most, the earlier ones first.
      const open = shares.filter((g, i) => g < caps[i]!);
      if (open.length > 0) assert.ok(Math.max(...open) - Math.min(...open) <= 1);
      for (let i = 1; i < shares.length; i++) if (shares[i]! < caps[i]! && shares[i - 1]! < caps[i - 1]!) assert.ok(shares[i - 1]! >= shares[i]!);
    }
  });

  test('connections kept equal H × agents connected when every host is let in, and always sum the same both ways', () => {
    const base = { ...DEFAULTS, label: 't' };
    // Room for everyone: 2 hosts share each of 3 agents of 8.
    const fits = allocateLeases({ ...base, agents: 3, hosts: 2 });
    assert.equal(connectionCosts(fits).established, 2 * 3);
    assert.deepEqual(Array.from(fits.hostWorkers), [12, 12]);
    // No lease (hypothetical): every (host, agent) pair tried is kept.
    for (const connectTo of [undefined, 5]) {
      const shared = allocateLeases({ ...base, agents: 40, hosts: 300, model: 'shared', connectTo });
      assert.equal(connectionCosts(shared).established, 300 * (connectTo ?? 40));
      assert.equal(connectionCosts(shared).attempted, 300 * (connectTo ?? 40));
    }
    // Shares (and the rule before): agents never share out more than they have, nor let in more than W hosts;
    // the counts agree from both sides.
    const variants: Array<Partial<CaseSettings>> = [{}, { workersPerAgent: 1 }, { connectTo: 4 }, { workersPerAgent: 2, connectTo: 4, fallback: true }, { model: 'before' }, { model: 'before', workersPerAgent: 1 }];
    for (const extra of variants) {
      const a = allocateLeases({ ...base, agents: 50, hosts: 400, ...extra });
      assert.equal(sum(a.agentHosts), sum(a.hostAgents));
      assert.equal(sum(a.agentLeased), sum(a.hostWorkers));
      assert.ok(Array.from(a.agentLeased).every((n) => n <= base.workers));
      assert.ok(Array.from(a.agentHosts).every((n) => n <= base.workers));
      // Every pair tried is kept or refused (with fallback a refused host tries further pairs).
      if (!extra.fallback) assert.equal(sum(a.agentHosts) + sum(a.agentRefused), 400 * a.connectTo);
      assert.equal(connectionCosts(a).attempted, 400 * a.connectTo);
    }
    // 400 hosts on agents of 8: every agent lets in 8 hosts (one worker each) and refuses the others.
    const full = allocateLeases({ ...base, agents: 50, hosts: 400 });
    assert.ok(Array.from(full.agentHosts).every((n) => n === 8));
    assert.ok(full.leases.every((l) => l.every(([, g]) => g === 1)));
  });

  test('rendezvous: each host picks k distinct agents, the same ones every time', () => {
    const picks = chooseAgents(42, 100, 8);
    assert.equal(new Set(picks).size, 8);
    assert.deepEqual(chooseAgents(42, 100, 8), picks);
    assert.deepEqual(chooseAgents(42, 100, 3), picks.slice(0, 3));
    assert.deepEqual(chooseAgents(1, 5, 9), [0, 1, 2, 3, 4]);
  });

  test('every host on every agent: hosts that start together get workers by chance, hosts that start apart mostly not', () => {
    // Together: each agent sees the hosts in a random order and lets in the first W: 30 (1 - 8/30)^10 get none.
    const together = { ...DEFAULTS, label: 't', agents: 10, hosts: 30, startSpreadMs: 0 };
    const trials = 400;
    let without = 0;
    let withoutBefore = 0;
    for (let i = 0; i < trials; i++) {
      without += Array.from(allocateLeases({ ...together, seed: 1000 + i }).hostWorkers).filter((w) => w === 0).length;
      withoutBefore += Array.from(allocateLeases({ ...together, model: 'before', seed: 1000 + i }).hostWorkers).filter((w) => w === 0).length;
    }
    const expected = expectedHostsWithoutWorkers(30, 10, 8); // 1.35
    assert.ok(Math.abs(without / trials - expected) < 0.25, `${without / trials} vs ${expected}`);
    const expectedBefore = expectedHostsWithoutWorkersBefore(30, 10); // 21.5: the first host took all of an agent
    assert.ok(Math.abs(withoutBefore / trials - expectedBefore) < 0.5, `${withoutBefore / trials} vs ${expectedBefore}`);
    // A second apart: nearly the same order at every agent, so about W hosts hold all the workers.
    const apart = allocateLeases({ ...DEFAULTS, agents: 100, hosts: 100 });
    const served = Array.from(apart.hostWorkers).filter((w) => w > 0).length;
    assert.ok(served >= 8 && served <= 12, String(served));
    assert.equal(sum(apart.hostWorkers), 800);
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

  test("a restarted agent's workers are shared among the first hosts back: former holders race the refused hosts", () => {
    const race = { workers: 8, formerHolders: 8, refusedHosts: 0, upAtMs: 2000, initialDelay: 100, maxDelay: 5000, seed: 1 };
    const alone = leaseRace(race);
    assert.equal(alone.toFormerHolders, 8);
    assert.equal(alone.leased, 8);
    // The first host back gets all 8 at once (a host alone's share); the others' arrivals only split them.
    assert.ok(alone.leasedAtMs >= 2000 && alone.leasedAtMs < 2000 + 5000 + 20);
    const crowded = leaseRace({ ...race, refusedHosts: 9_992 });
    assert.equal(crowded.leased, 8);
    assert.ok(crowded.toFormerHolders <= 1, String(crowded.toFormerHolders));
    // Two former holders of an agent of 4, nobody else: 2 each again.
    assert.equal(leaseRace({ ...race, workers: 4, formerHolders: 2 }).toFormerHolders, 4);
    // The rule before: the first host back took all 4.
    assert.equal(leaseRace({ ...race, workers: 4, formerHolders: 2, model: 'before' }).leased, 4);
  });

  const agentSim = (hosts: AgentSimSettings['hosts'], extra: Partial<AgentSimSettings> = {}): ReturnType<typeof simulateAgent> =>
    simulateAgent({ workers: 8, hosts, utilisation: 0.7, callMs: 10, latencyMs: 0.25, workerStartMs: 100, exitMs: 10, untilMs: 10_000, seed: 1, ...extra });

  test('one agent, hosts coming and going: at most workers + 1 processes, and every host ends up holding its share', () => {
    const rng = new Rng(21);
    let noRoom = 0;
    let atMost = 0;
    for (let trial = 0; trial < 60; trial++) {
      const workers = [2, 4, 8][trial % 3]!;
      const perHost = trial % 4 === 3 ? 1 + rng.int(workers) : undefined;
      const hosts = Array.from({ length: 1 + rng.int(12) }, () => {
        const arriveAt = rng.uniform(0, 4000);
        return { arriveAt, leaveAt: rng.next() < 0.3 ? arriveAt + rng.uniform(0, 3000) : undefined, wants: rng.next() < 0.3 ? 1 + rng.int(4) : undefined };
      });
      const r = agentSim(hosts, { workers, perHost, utilisation: [0.3, 0.7, 1][trial % 3]!, seed: trial });
      const context = JSON.stringify({ workers, perHost, hosts });
      assert.ok(r.maxRunning <= workers + 1, `${r.maxRunning} processes: ${context}`);
      noRoom += r.noRoom;
      if (r.maxRunning === workers + 1) atMost++;
      let total = 0;
      hosts.forEach((h, i) => {
        if (h.leaveAt !== undefined) return;
        const { share, held } = r.hosts[i]!;
        assert.equal(share, r.shares[i], `host ${i} knows its share: ${context}`);
        assert.equal(held, share, `host ${i} holds ${held}, its share is ${share}: ${context}`);
        assert.ok(share <= Math.min(h.wants ?? Infinity, perHost ?? workers), context);
        total += share;
      });
      assert.ok(total <= workers);
      // At most W hosts: none is refused, and each has at least one worker.
      if (hosts.length <= workers) {
        assert.ok(r.hosts.every((h) => h.letIn), context);
        hosts.forEach((h, i) => assert.ok(h.leaveAt !== undefined || r.hosts[i]!.share >= 1, context));
      }
    }
    // The cap was reached, and OPENs were answered "no room yet" (then a GRANT when a worker exited).
    assert.ok(atMost > 10 && noRoom > 10, `${atMost} ${noRoom}`);
  });

  test('a host that leaves gives its share back: the others get their shares of before it came', () => {
    const r = agentSim([{ arriveAt: 0 }, { arriveAt: 1 }, { arriveAt: 2000, leaveAt: 5000 }]);
    assert.deepEqual(r.shares, [4, 4, 0]);
    assert.deepEqual(r.hosts.slice(0, 2).map((h) => h.held), [4, 4]);
    assert.equal(r.hosts[2]!.share, 2); // while it was there: 3, 3, 2
    assert.equal(r.hosts[2]!.held, 2);
    assert.ok(r.hosts[2]!.fullShareMs < 1000, String(r.hosts[2]!.fullShareMs));
    assert.ok(r.maxRunning <= 9);
  });

  test("a rolling update's new host: its first worker at once (the one replacement), the rest as given-back workers exit", () => {
    // An agent of 4, 2 hosts: the newcomer's share is 1, started in the one room above W, whatever the calls.
    const small = rolloutStep(4, 2, 0.7, 30_000, 20, 1);
    assert.equal(small.share, 1);
    assert.equal(small.givenBack, 1);
    assert.ok(small.full.max < 200, String(small.full.max));
    assert.equal(small.maxRunning, 5);
    // An agent of 8, 2 hosts: share 2; the second worker waits for a given-back one, busy: for its running call.
    const short = rolloutStep(8, 2, 1, 10, 50, 1);
    const long = rolloutStep(8, 2, 1, 10_000, 50, 1);
    assert.equal(long.share, 2);
    assert.equal(long.givenBack, 2);
    assert.ok(short.full.mean < 200, String(short.full.mean));
    assert.ok(long.full.mean > 2000, String(long.full.mean)); // the first of two running 10 s calls to end: ~5 s
    assert.ok(long.first.max < 200);
    assert.ok(long.maxRunning <= 9);
  });

  test('heartbeat sizes: PING is a bare header, PONG grows with the workers reported', () => {
    const one = heartbeatBytes(1);
    const eight = heartbeatBytes(8);
    assert.equal(one.ping, 9 + 29);
    assert.ok(eight.pong - one.pong > 7 * 30 && eight.pong - one.pong < 7 * 45);
  });

  test('deterministic: the same seed gives the same figures, another seed others', () => {
    const c: CaseSettings = { ...DEFAULTS, label: 't', agents: 20, hosts: 60, connectTo: 3, trials: 3 };
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
