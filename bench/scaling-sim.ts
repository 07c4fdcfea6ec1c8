/**
 * Remote workers at a scale one machine cannot test: a deterministic discrete-event simulation of H hosts
 * (pools created with `createPool({ remote })`) and A agents (`pyworkers serve`) of W workers each, following the
 * rules of src/remote/ as they are: the share-out (an agent shares its W workers out among the hosts it let in,
 * one each in turn in the order they connected, up to what each asks (`workersPerAgent`) and `--per-host`; it
 * refuses a host 'full' only when W hosts are in; it runs at most W processes plus one replacement), one TLS
 * connection per (host, agent), heartbeats, DNS re-resolution, reconnection with exponential backoff and full
 * jitter, and a pool's scheduler (calls sent ahead up to `pipelineDepth`, work stealing) for what a lost agent
 * costs. The rule before the share-out (first come: min(asked, --per-host, free)) is kept to compare ('before').
 *
 *   node --import tsx bench/scaling-sim.ts                      # the cases of docs/scaling.md
 *   node --import tsx bench/scaling-sim.ts --agents 100 --hosts 10000 --connect-to 2
 *   node --import tsx bench/scaling-sim.ts --help
 *
 * Same seed, same figures. No dependencies beyond Node. What is modelled and what is assumed is printed with the
 * tables (ASSUMPTIONS below); docs/scaling.md quotes the output.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// ------------------------------------------------------------------ assumptions (printed with the tables)

/** What the figures rest on besides the code. Each is a flag of the command. */
export const ASSUMPTIONS = {
  /** Memory per TLS connection, either side (OpenSSL's buffers, Node's socket): an assumption; one measurement on a 2-core EPYC, Node 20, TLS 1.3 gave ~33 KiB idle. */
  tlsConnectionBytes: 64 * 1024,
  /** Bytes a TLS record adds to a message (TLS 1.2 AES-GCM: 5 header + 8 nonce + 16 tag; TLS 1.3: 22). */
  tlsRecordBytes: 29,
  /** IPv4 + TCP headers with timestamps, per segment (not in the byte figures; shown apart). */
  tcpIpBytes: 52,
  /** The agent's CPU for one full TLS handshake (measured once: 0.62 ms P-256, 0.74 ms RSA-2048, Node 20, TLS 1.3). */
  handshakeCpuMs: 0.7,
  /** File descriptors an agent holds per worker process: stdout, stderr, data and control pipes. */
  fdsPerWorker: 4,
  /** The agent's other descriptors: listening sockets (hosts, probes), epoll, stdio... */
  agentBaseFds: 20,
  /** A worker's resident memory, for the size of a PONG (JSON digits): 300 MiB. */
  workerRss: 300 * 1024 * 1024,
  /** A connection attempt (TCP + TLS handshake + HELLO) takes this long, uniform (ms). */
  connectMs: [2, 20] as const,
  /** A connection to an address where nothing listens fails this long after it starts (RST, ms). */
  refusedConnectMs: 1,
  /** From a worker's OPEN to its first call (ms): pyworkers' own start-up is ~80 ms; `--setup` imports add to it. */
  workerStartMs: 100,
  /** From a worker's END (given back idle) or kill to its exit on the agent (ms). */
  workerExitMs: 10,
  /** DNS: queries per resolve (A and AAAA) when the first name tried answers (a short Service name). */
  dnsQueriesShortName: 2,
  /** ... and for a name with fewer dots than ndots:5 and no trailing dot (3 search domains tried first). */
  dnsQueriesNdots: 8,
  /** An answer over plain UDP holds 512 bytes without EDNS0 (glibc's default); then the resolver asks over TCP. */
  dnsUdpBytes: 512,
} as const;

/** The code's constants the simulation follows (src/remote/, src/pool/scheduler.ts). */
export const CODE = {
  heartbeatInterval: 1000,
  heartbeatTimeout: 5000,
  resolveInterval: 5000,
  connectTimeout: 5000,
  initialDelay: 100,
  maxDelay: 5000,
  pipelineDepth: 32,
  /** A call waiting behind one that has run this long (ms) may be stolen by an idle worker. */
  stealAfter: 2,
  /** Message header: u32 length, u8 type, u32 channel. PING is a bare header. */
  header: 9,
} as const;

// ------------------------------------------------------------------ randomness and the event queue

/** sfc32, seeded through splitmix32: fast, 128 bits of state, the same numbers for the same seed. */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const split = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#a = split();
    this.#b = split();
    this.#c = split();
    this.#d = split();
    for (let i = 0; i < 12; i++) this.next();
  }

  /** Uniform in [0, 1). */
  next(): number {
    const a = this.#a;
    const b = this.#b;
    const c = this.#c;
    const d = this.#d;
    const t = (((a + b) | 0) + d) | 0;
    this.#d = (d + 1) | 0;
    this.#a = b ^ (b >>> 9);
    this.#b = (c + (c << 3)) | 0;
    this.#c = (((c << 21) | (c >>> 11)) + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  exponential(mean: number): number {
    return -mean * Math.log(1 - this.next());
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/** A 32-bit hash of integers (murmur3's finaliser over a running mix): seeds of sub-simulations, rendezvous weights. */
export function hash32(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x01000193);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A min-heap of events by time; ties keep the order they were pushed in (so a run is deterministic). */
export class EventQueue<E> {
  readonly #times: number[] = [];
  readonly #seqs: number[] = [];
  readonly #items: E[] = [];
  #seq = 0;

  get size(): number {
    return this.#items.length;
  }

  push(time: number, item: E): void {
    const t = this.#times;
    const s = this.#seqs;
    const it = this.#items;
    let i = it.length;
    const seq = this.#seq++;
    t.push(time);
    s.push(seq);
    it.push(item);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (t[p]! < time || (t[p] === time && s[p]! < seq)) break;
      t[i] = t[p]!;
      s[i] = s[p]!;
      it[i] = it[p]!;
      i = p;
    }
    t[i] = time;
    s[i] = seq;
    it[i] = item;
  }

  /** The earliest event's time (Infinity when empty). */
  peekTime(): number {
    return this.#items.length > 0 ? this.#times[0]! : Infinity;
  }

  /** Take the earliest event: [time, item]. */
  pop(): [number, E] {
    const t = this.#times;
    const s = this.#seqs;
    const it = this.#items;
    const time = t[0]!;
    const item = it[0]!;
    const lastT = t.pop()!;
    const lastS = s.pop()!;
    const lastI = it.pop()!;
    const n = it.length;
    if (n > 0) {
      let i = 0;
      while (true) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && (t[r]! < t[l]! || (t[r] === t[l] && s[r]! < s[l]!)) ? r : l;
        if (lastT < t[c]! || (lastT === t[c] && lastS < s[c]!)) break;
        t[i] = t[c]!;
        s[i] = s[c]!;
        it[i] = it[c]!;
        i = c;
      }
      t[i] = lastT;
      s[i] = lastS;
      it[i] = lastI;
    }
    return [time, item];
  }
}

// ------------------------------------------------------------------ figures

export interface Spread {
  min: number;
  mean: number;
  p50: number;
  p99: number;
  max: number;
}

function sum(values: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < values.length; i++) n += values[i]!;
  return n;
}

/** The q-quantile (nearest rank) of some numbers; 0 when there are none. */
export function quantile(values: ArrayLike<number>, q: number): number {
  const n = values.length;
  if (n === 0) return 0;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!;
}

/** min, mean, median, 99th percentile and max of some numbers (zeros when there are none). */
export function spread(values: ArrayLike<number>): Spread {
  const n = values.length;
  if (n === 0) return { min: 0, mean: 0, p50: 0, p99: 0, max: 0 };
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  const at = (q: number) => sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!;
  return { min: sorted[0]!, mean: sum / n, p50: at(0.5), p99: at(0.99), max: sorted[n - 1]! };
}

// ------------------------------------------------------------------ leases: who gets which workers

/**
 * 'share': the code (agent.ts shareOut): an agent shares its W workers out among the hosts it let in, one each in
 * turn in the order they connected, up to what each asks and `--per-host`; a host is refused 'full' only when its
 * share would be 0 (W hosts are in already). 'before': the rule the code had before, for comparison: a host was
 * granted min(asked, --per-host, free) when it connected, and kept it. 'shared': hypothetical, no lease at all
 * (every host let in everywhere), for connection counts.
 */
export type LeaseModel = 'share' | 'before' | 'shared';

export interface LeaseSettings {
  agents: number;
  hosts: number;
  /** Worker processes per agent (`pyworkers serve --workers`). */
  workers: number;
  /** The host's `remote.workersPerAgent` (undefined: no limit). */
  workersPerAgent?: number;
  /** The agent's `--per-host` (undefined: all of `workers`). */
  perHost?: number;
  /** Agents each host connects to (undefined: every address DNS gives, as the code does today); fewer: chosen by rendezvous hashing. */
  connectTo?: number;
  /**
   * With connectTo: a host refused by one of its agents tries the next in its rendezvous order until it holds
   * connectTo agents (not in the code today). Without: it keeps retrying the agents it picked.
   */
  fallback?: boolean;
  /** Default 'share' (the code). */
  model?: LeaseModel;
  /** Hosts start within this many ms of each other. */
  startSpreadMs: number;
  seed: number;
}

export interface Allocation {
  settings: LeaseSettings;
  /** Agents each host connects to. */
  connectTo: number;
  /** Per agent: hosts it let in (their connections stay open), workers shared out (or leased), refused (host, agent) pairs. */
  agentHosts: Int32Array;
  agentLeased: Int32Array;
  agentRefused: Int32Array;
  /**
   * Per agent, while the hosts arrived ('share'): GRANT messages to hosts already in whose share changed, and the
   * workers those hosts gave back (counted as if each had leased its whole share before the next host came: an
   * upper bound; idle workers go at once, busy ones once their running call ends).
   */
  agentGrants: Int32Array;
  agentGivenBack: Int32Array;
  /** Per host: agents that let it in, and its workers in all (its pool's size). */
  hostAgents: Int32Array;
  hostWorkers: Int32Array;
  /** Per agent: [host, workers] of each host let in, in the order they came. */
  leases: Array<Array<[number, number]>>;
  /** When each host started (ms): the phase of its timers. */
  hostStart: Float64Array;
  /** Connection attempts simulated. */
  events: number;
}

/**
 * agent.ts shareOut(): `workers` shared out among hosts in the order they came, one each in turn, up to what each
 * asked for (undefined or below 1: no limit) and `perHost`. A newcomer whose share is 0 is refused ('full').
 */
export function shareOut(wants: ReadonlyArray<number | undefined>, workers: number, perHost: number = workers): number[] {
  const caps = wants.map((w) => Math.min(w !== undefined && w >= 1 ? Math.floor(w) : Infinity, perHost));
  const shares = caps.map(() => 0);
  let left = workers;
  for (let more = true; left > 0 && more; ) {
    more = false;
    for (let i = 0; i < caps.length && left > 0; i++) {
      if (shares[i]! < caps[i]!) {
        shares[i]!++;
        left--;
        more = true;
      }
    }
  }
  return shares;
}

/** The rule before the share-out, for comparison: min(asked, --per-host, free) when the host connected; 0 is a refusal. */
export function grantBefore(asked: number | undefined, perHost: number, free: number): number {
  return Math.max(0, Math.min(asked ?? Infinity, perHost, free));
}

/** The shares of n hosts that all ask for the same, cached by n (every host of a case has the same settings). */
function shareTable(workers: number, wants: number | undefined, perHost: number): (n: number) => number[] {
  const cache: number[][] = [];
  return (n) => (cache[n] ??= shareOut(new Array<number | undefined>(n).fill(wants), workers, perHost));
}

/** A host's rendezvous weight for an agent (highest random weight): the same for every host that lists the same agents. */
export function rendezvousWeight(host: number, agent: number): number {
  let h = Math.imul(host ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(agent + 0x632be5ab, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Every agent, in the host's rendezvous order (best first). */
export function rendezvousOrder(host: number, agents: number): number[] {
  return Array.from({ length: agents }, (_, a) => a).sort((x, y) => rendezvousWeight(host, y) - rendezvousWeight(host, x) || x - y);
}

/** The `k` agents a host would connect to under rendezvous hashing, best first; all (in index order) when k >= agents. */
export function chooseAgents(host: number, agents: number, k: number): number[] {
  if (k >= agents) return Array.from({ length: agents }, (_, a) => a);
  // The k largest weights, kept sorted in a small buffer (ties: the lower index).
  const top: number[] = [];
  const weights: number[] = [];
  for (let a = 0; a < agents; a++) {
    const w = rendezvousWeight(host, a);
    if (top.length === k && w <= weights[k - 1]!) continue;
    let i = Math.min(top.length, k - 1);
    if (top.length < k) {
      top.push(a);
      weights.push(w);
      i = top.length - 1;
    }
    while (i > 0 && weights[i - 1]! < w) {
      top[i] = top[i - 1]!;
      weights[i] = weights[i - 1]!;
      i--;
    }
    top[i] = a;
    weights[i] = w;
  }
  return top;
}

/** How far down its rendezvous order a host is computed ahead (further: on demand). */
const FALLBACK_LOOKAHEAD = 16;

/**
 * Hosts start (uniformly within `startSpreadMs`) and connect to their agents; each connection's HELLO reaches its
 * agent after a handshake of `connectMs`; each agent lets hosts in in the order their HELLOs arrive. So which hosts
 * get workers on an agent depends on that order: hosts that start a second apart reach every agent in nearly the
 * same order; hosts that start together, in a random order per agent. Hosts stay, so a refused host's retries
 * (it backs off to `maxDelay` and tries forever) change nothing here: they are a rate (see connectionCosts).
 */
export function allocateLeases(s: LeaseSettings): Allocation {
  const A = s.agents;
  const H = s.hosts;
  const W = s.workers;
  const k = Math.min(A, s.connectTo ?? A);
  const perHost = s.perHost ?? W;
  const model = s.model ?? 'share';
  const sharesOf = shareTable(W, s.workersPerAgent, perHost);
  const rng = new Rng(hash32(s.seed, 1));
  const queue = new EventQueue<number>();
  const hostStart = new Float64Array(H);
  const [cMin, cMax] = ASSUMPTIONS.connectMs;
  const fallback = s.fallback === true && k < A;
  // With fallback: each host's whole rendezvous order, and how far down it has gone.
  const order: number[][] = [];
  const cursor = new Int32Array(H);
  for (let h = 0; h < H; h++) {
    const start = rng.uniform(0, s.startSpreadMs);
    hostStart[h] = start;
    const agents = chooseAgents(h, A, fallback ? Math.min(A, k + FALLBACK_LOOKAHEAD) : k);
    if (fallback) {
      order.push(agents);
      cursor[h] = k;
    }
    for (const a of agents.slice(0, k)) queue.push(start + rng.uniform(cMin, cMax), h * A + a);
  }
  const agentHosts = new Int32Array(A);
  const agentLeased = new Int32Array(A);
  const agentRefused = new Int32Array(A);
  const agentGrants = new Int32Array(A);
  const agentGivenBack = new Int32Array(A);
  const hostAgents = new Int32Array(H);
  const hostWorkers = new Int32Array(H);
  // The hosts let in on each agent, in the order they came; 'before': with their grants.
  const letIn: number[][] = Array.from({ length: A }, () => []);
  const granted: number[][] = Array.from({ length: A }, () => []);
  let events = queue.size;
  while (queue.size > 0) {
    const [t, pair] = queue.pop();
    const h = Math.floor(pair / A);
    const a = pair - h * A;
    if (model === 'shared') {
      agentHosts[a]!++;
      hostAgents[h]!++;
      continue;
    }
    const hosts = letIn[a]!;
    let refused: boolean;
    if (model === 'share') {
      const now = sharesOf(hosts.length);
      const next = sharesOf(hosts.length + 1);
      refused = next[hosts.length] === 0;
      if (!refused) {
        for (let i = 0; i < hosts.length; i++) {
          if (next[i] === now[i]) continue;
          agentGrants[a]!++;
          if (next[i]! < now[i]!) agentGivenBack[a]! += now[i]! - next[i]!;
        }
      }
    } else {
      const g = grantBefore(s.workersPerAgent, perHost, W - agentLeased[a]!);
      refused = g === 0;
      if (!refused) {
        agentLeased[a]! += g;
        granted[a]!.push(g);
      }
    }
    if (refused) {
      if (fallback && cursor[h]! < A) {
        if (cursor[h]! >= order[h]!.length) order[h] = rendezvousOrder(h, A);
        queue.push(t + ASSUMPTIONS.refusedConnectMs + rng.uniform(cMin, cMax), h * A + order[h]![cursor[h]!++]!);
        events++;
      } else agentRefused[a]!++; // it retries this agent at the backoff's ceiling
      continue;
    }
    hosts.push(h);
    agentHosts[a]!++;
    hostAgents[h]!++;
  }
  const leases: Array<Array<[number, number]>> = [];
  for (let a = 0; a < A; a++) {
    const hosts = letIn[a]!;
    const shares = model === 'share' ? sharesOf(hosts.length) : granted[a]!;
    leases.push(hosts.map((h, i) => [h, shares[i]!]));
    if (model === 'share') for (const g of shares) agentLeased[a]! += g;
    for (let i = 0; i < hosts.length; i++) hostWorkers[hosts[i]!]! += shares[i]!;
  }
  return { settings: s, connectTo: k, agentHosts, agentLeased, agentRefused, agentGrants, agentGivenBack, hostAgents, hostWorkers, leases, hostStart, events };
}

/** Hosts with no worker on any agent: their createPool() rejects after startTimeout ('full'), or their pool has no worker. */
export function hostsWithoutWorkers(alloc: Allocation): number {
  if (alloc.settings.model === 'shared') return 0;
  let n = 0;
  for (const w of alloc.hostWorkers) if (w === 0) n++;
  return n;
}

/**
 * Hosts with no worker when every host connects to every agent and each agent sees them in a random order (hosts
 * that start at the same moment): an agent lets in the first min(W, H), so a host is left out of one with
 * probability 1 - min(W, H)/H, independently per agent. (Hosts that start a second apart reach every agent in
 * nearly the same order: then about H - W hosts get nothing.)
 */
export function expectedHostsWithoutWorkers(hosts: number, agents: number, workers: number): number {
  return hosts * (1 - Math.min(workers, hosts) / hosts) ** agents;
}

/** The same under the rule before the share-out, with its defaults: the first host to reach an agent took all of it. */
export function expectedHostsWithoutWorkersBefore(hosts: number, agents: number): number {
  return hosts * (1 - 1 / hosts) ** agents;
}

/** Connection attempts per second one refused (host, agent) pair makes once its backoff reached maxDelay: delays are uniform in [0, maxDelay]. */
export function plateauAttemptsPerSecond(maxDelay: number): number {
  return 2000 / maxDelay;
}

export interface ConnectionCosts {
  /** TLS connections the hosts keep open (let in), in all. */
  established: number;
  /** The (host, agent) pairs the hosts try: H × agents connected to. */
  attempted: number;
  perAgent: Spread;
  perHost: Spread;
  /** Per agent: handshakes per second from refused hosts retrying (at the backoff's ceiling), and the CPU they take. */
  refusedPerSecond: Spread;
  refusedCpuShare: number;
  /** Per agent: file descriptors and TLS memory of the busiest agent. */
  agentFds: number;
  agentTlsBytes: number;
  /** Per host: TLS memory of the host with most connections. */
  hostTlsBytes: number;
  hostsWithout: number;
  /** Workers per host that has some. */
  workersPerServedHost: Spread;
  /** Workers shared out (leased) on all agents, of agents × workers. */
  workersInUse: number;
  /** Per agent: GRANTs to hosts already in, and workers they gave back, while the hosts arrived (see Allocation). */
  grants: Spread;
  givenBack: Spread;
}

export function connectionCosts(alloc: Allocation, maxDelay: number = CODE.maxDelay): ConnectionCosts {
  const { agentHosts, hostAgents, agentRefused } = alloc;
  let established = 0;
  for (const n of agentHosts) established += n;
  const perAgent = spread(agentHosts);
  const refused = Float64Array.from(agentRefused, (n) => n * plateauAttemptsPerSecond(maxDelay));
  const refusedPerSecond = spread(refused);
  const served = Array.from(alloc.hostWorkers).filter((w) => w > 0);
  const perHost = spread(hostAgents);
  return {
    established,
    attempted: alloc.settings.hosts * alloc.connectTo,
    perAgent,
    perHost,
    refusedPerSecond,
    refusedCpuShare: (refusedPerSecond.max * ASSUMPTIONS.handshakeCpuMs) / 1000,
    agentFds: perAgent.max + ASSUMPTIONS.fdsPerWorker * alloc.settings.workers + ASSUMPTIONS.agentBaseFds,
    agentTlsBytes: perAgent.max * ASSUMPTIONS.tlsConnectionBytes,
    hostTlsBytes: perHost.max * ASSUMPTIONS.tlsConnectionBytes,
    hostsWithout: hostsWithoutWorkers(alloc),
    workersPerServedHost: spread(served),
    workersInUse: sum(alloc.agentLeased),
    grants: spread(alloc.agentGrants),
    givenBack: spread(alloc.agentGivenBack),
  };
}

// ------------------------------------------------------------------ heartbeats

/** The PONG's JSON for a session leasing `workers` workers (agent.ts pong(): channel → [rss, peakRss, own, stopped]). */
export function pongPayload(workers: number, rss: number = ASSUMPTIONS.workerRss): string {
  const w: Record<number, [number, number, number, number]> = {};
  for (let c = 1; c <= workers; c++) w[c] = [rss, rss + 4096 * 1000, rss - 4096 * 2000, 0];
  return JSON.stringify({ workers: w, draining: false });
}

const pongSizes = new Map<number, number>();

/** Bytes of one PING and of one PONG on the wire (message header, payload, TLS record). */
export function heartbeatBytes(leased: number): { ping: number; pong: number } {
  const tls = ASSUMPTIONS.tlsRecordBytes;
  let pong = pongSizes.get(leased);
  if (pong === undefined) pongSizes.set(leased, (pong = CODE.header + Buffer.byteLength(pongPayload(leased)) + tls));
  return { ping: CODE.header + tls, pong };
}

export interface HeartbeatLoad {
  /** The busiest agent: messages per second in (PING) and out (PONG), bytes per second both ways. */
  agentMessagesPerSecond: number;
  agentBytesPerSecond: number;
  /** ... and with TCP/IP headers (one segment per message). */
  agentWireBytesPerSecond: number;
  /** All agents together. */
  totalMessagesPerSecond: number;
  totalBytesPerSecond: number;
  /** The host with most connections: PINGs per second it sends. */
  hostPingsPerSecond: number;
}

export function heartbeatLoad(alloc: Allocation, heartbeatInterval: number = CODE.heartbeatInterval): HeartbeatLoad {
  const perSecond = 1000 / heartbeatInterval;
  let maxMsgs = 0;
  let maxBytes = 0;
  let totalMsgs = 0;
  let totalBytes = 0;
  const shared = alloc.settings.model === 'shared';
  for (let a = 0; a < alloc.settings.agents; a++) {
    // Shared (hypothetical): the agent's workers reported to each host; lease: each session's own.
    const sessions: Array<[number, number]> = shared ? [[alloc.agentHosts[a]!, alloc.settings.workers]] : alloc.leases[a]!.map(([, g]) => [1, g]);
    let msgs = 0;
    let bytes = 0;
    for (const [count, g] of sessions) {
      const { ping, pong } = heartbeatBytes(g);
      msgs += 2 * perSecond * count;
      bytes += (ping + pong) * perSecond * count;
    }
    totalMsgs += msgs;
    totalBytes += bytes;
    if (msgs > maxMsgs || (msgs === maxMsgs && bytes > maxBytes)) {
      maxMsgs = msgs;
      maxBytes = bytes;
    }
  }
  let hostMax = 0;
  for (const n of alloc.hostAgents) hostMax = Math.max(hostMax, n);
  return {
    agentMessagesPerSecond: maxMsgs,
    agentBytesPerSecond: maxBytes,
    agentWireBytesPerSecond: maxBytes + maxMsgs * ASSUMPTIONS.tcpIpBytes,
    totalMessagesPerSecond: totalMsgs,
    totalBytesPerSecond: totalBytes,
    hostPingsPerSecond: hostMax * perSecond,
  };
}

// ------------------------------------------------------------------ DNS

export interface DnsLoad {
  /** getaddrinfo calls per second from all hosts (each pool resolves each name every resolveInterval). */
  resolvesPerSecond: number;
  /** The busiest second: hosts that started close together keep their timers in step (setInterval, no jitter). */
  peakResolvesPerSecond: number;
  /** DNS queries per second: short name (A + AAAA), and a name shorter than ndots:5 without a trailing dot. */
  queriesShortName: number;
  queriesNdots: number;
  /** Size of the A answer listing every agent; over 512 bytes it is truncated and asked again over TCP. */
  answerBytes: number;
  overTcp: boolean;
}

export function dnsLoad(hosts: number, agents: number, hostStart: ArrayLike<number>, names = 1, resolveInterval: number = CODE.resolveInterval, name = 'pyworkers-agent.default.svc.cluster.local'): DnsLoad {
  const resolvesPerSecond = (hosts * names * 1000) / resolveInterval;
  // The timers' phases: each pool resolves at start + n × resolveInterval; count them per second of one period.
  const seconds = Math.max(1, Math.ceil(resolveInterval / 1000));
  const perSecond = new Float64Array(seconds);
  for (let h = 0; h < hosts; h++) perSecond[Math.floor((hostStart[h]! % resolveInterval) / 1000) % seconds]! += names;
  let peak = 0;
  for (const n of perSecond) peak = Math.max(peak, n);
  const question = name.length + 2 + 4;
  const answerBytes = 12 + question + agents * 16;
  return {
    resolvesPerSecond,
    peakResolvesPerSecond: peak,
    queriesShortName: resolvesPerSecond * ASSUMPTIONS.dnsQueriesShortName,
    queriesNdots: resolvesPerSecond * ASSUMPTIONS.dnsQueriesNdots,
    answerBytes,
    overTcp: answerBytes > ASSUMPTIONS.dnsUdpBytes,
  };
}

// ------------------------------------------------------------------ a host's pool: what a lost agent leaves in doubt

export interface PoolSimSettings {
  /** The host's workers (its pool), and how many of them the lost agent held. */
  workers: number;
  lost: number;
  /** Offered load over the pool's capacity (arrivals × mean call time / workers); above 1 the queue grows. */
  utilisation: number;
  /** Mean time of a call in Python (exponential), ms. */
  callMs: number;
  pipelineDepth: number;
  /** Round trip host ↔ agent, ms. */
  rttMs: number;
  /**
   * 0: the connection closes at once (agent SIGKILLed: its kernel closes the socket); the calls sent there are
   * counted at that moment. Above 0: the agent goes silent (SIGSTOP, a cut without RST) and the host takes it for
   * lost this many ms later; calls go on being sent there meanwhile. Either way the agent cannot answer the
   * host's reconnection with what its workers had started (a live agent after a reset does: then only the calls
   * that had started are lost; not modelled), so every call sent there is in doubt.
   */
  detectMs: number;
  /** Kill moments sampled (one run sampled at intervals when detectMs is 0, one run each otherwise). */
  samples: number;
  seed: number;
}

export interface PoolSimResult {
  /** Calls sent to the lost agent's workers and not answered when the loss is noticed: they reject with WorkerCrashedError. */
  inDoubt: Spread;
  /** Calls in the host's queue then: they run on the other workers (none run twice). */
  queued: Spread;
  /** The formula's bound: lost workers × pipelineDepth (1 running + pipelineDepth − 1 sent ahead each). */
  bound: number;
  events: number;
}

/** The bound on calls in doubt when an agent is lost: its leased workers × pipelineDepth. */
export function inDoubtBound(leasedWorkers: number, pipelineDepth: number): number {
  return leasedWorkers * pipelineDepth;
}

interface SimJob {
  service: number;
  /** Which send this is (a stolen call is sent again): a delivery of an older send is void. */
  sends: number;
  started: boolean;
  revoked: boolean;
  stealing: boolean;
  startedAt: number;
}

interface SimWorker {
  /** The host's view: sent and not answered (`load`). */
  sent: SimJob[];
  /** The worker's view: arrived, not started. */
  waiting: SimJob[];
  running: SimJob | undefined;
  lost: boolean;
  stealing: boolean;
  stealTimer: boolean;
}

const enum Ev {
  Arrive,
  AtWorker,
  Finish,
  Reply,
  StealCheck,
  RevokeAt,
  RevokeReply,
  Sample,
  Kill,
  Detect,
}

interface PoolEvent {
  kind: Ev;
  sends?: number;
  w?: SimWorker;
  job?: SimJob;
  thief?: SimWorker;
  ok?: boolean;
}

/**
 * One host's pool with the scheduler's rules (src/pool/scheduler.ts): a call goes to an idle worker, else is sent
 * ahead to the least busy one with fewer than pipelineDepth in flight, else waits in the host's queue; a worker that
 * becomes idle steals a call not yet started from the busiest one once that one's running call is 2 ms old (a
 * revoke on the control channel: one round trip). Calls are Poisson, their times exponential. Workers at the lost
 * agent are chosen at random among the pool's.
 */
export function simulatePool(s: PoolSimSettings): PoolSimResult {
  const rng = new Rng(hash32(s.seed, 2, s.workers, s.lost, Math.round(s.utilisation * 1000), s.pipelineDepth, s.detectMs));
  const inDoubt: number[] = [];
  const queuedAt: number[] = [];
  let events = 0;
  const warmup = Math.max(200, 50 * s.callMs);
  if (s.detectMs === 0) {
    const gap = 2 * s.callMs;
    events += runPool(s, rng, warmup, gap, s.samples, inDoubt, queuedAt);
  } else {
    for (let i = 0; i < s.samples; i++) events += runPool(s, rng, warmup + rng.uniform(0, s.callMs), 0, 1, inDoubt, queuedAt);
  }
  return { inDoubt: spread(inDoubt), queued: spread(queuedAt), bound: inDoubtBound(s.lost, s.pipelineDepth), events };
}

/** `count` distinct workers at random, into `out`. */
function pickLost(workers: SimWorker[], count: number, rng: Rng, out: SimWorker[]): void {
  out.length = 0;
  const chosen = new Set<number>();
  while (chosen.size < count) chosen.add(rng.int(workers.length));
  for (const i of [...chosen].sort((x, y) => x - y)) out.push(workers[i]!);
}

function runPool(s: PoolSimSettings, rng: Rng, warmup: number, gap: number, samples: number, inDoubt: number[], queuedAt: number[]): number {
  const workers: SimWorker[] = Array.from({ length: s.workers }, () => ({ sent: [], waiting: [], running: undefined, lost: false, stealing: false, stealTimer: false }));
  const lost: SimWorker[] = [];
  pickLost(workers, s.lost, rng, lost);
  const queue: SimJob[] = [];
  const q = new EventQueue<PoolEvent>();
  const rate = (s.utilisation * s.workers) / s.callMs; // calls per ms
  const half = s.rttMs / 2;
  let now = 0;
  let events = 0;
  let sampled = 0;
  let done = false;

  const pick = (): SimWorker | undefined => {
    let best: SimWorker | undefined;
    for (const w of workers) {
      if (w.sent.length >= s.pipelineDepth) continue;
      if (!best || w.sent.length < best.sent.length) best = w;
      if (w.sent.length === 0) break;
    }
    return best;
  };
  const send = (w: SimWorker, job: SimJob) => {
    job.sends++;
    job.revoked = false;
    w.sent.push(job);
    if (w.sent.length === 1) job.startedAt = now;
    if (!w.lost) q.push(now + half, { kind: Ev.AtWorker, w, job, sends: job.sends });
  };
  const dispatch = () => {
    while (queue.length > 0) {
      const w = pick();
      if (!w) break;
      send(w, queue.shift()!);
    }
  };
  const enqueue = (job: SimJob, front: boolean) => {
    const w = queue.length === 0 ? pick() : undefined;
    if (w) {
      send(w, job);
      return;
    }
    if (front) queue.unshift(job);
    else queue.push(job);
    dispatch();
  };
  const startNext = (w: SimWorker) => {
    while (w.waiting.length > 0) {
      const job = w.waiting.shift()!;
      if (job.revoked) continue;
      w.running = job;
      job.started = true;
      q.push(now + job.service, { kind: Ev.Finish, w, job });
      return;
    }
  };
  const steal = (idle: SimWorker) => {
    if (queue.length > 0 || idle.sent.length > 0 || idle.stealing) return;
    let victim: SimWorker | undefined;
    for (const w of workers) if (w !== idle && w.sent.length > 1 && (!victim || w.sent.length > victim.sent.length)) victim = w;
    if (!victim) return;
    const age = now - victim.sent[0]!.startedAt;
    if (age < CODE.stealAfter) {
      if (!idle.stealTimer) {
        idle.stealTimer = true;
        q.push(now + CODE.stealAfter - age + 0.1, { kind: Ev.StealCheck, w: idle });
      }
      return;
    }
    let job: SimJob | undefined;
    for (let i = victim.sent.length - 1; i >= 1; i--) {
      if (!victim.sent[i]!.stealing) {
        job = victim.sent[i];
        break;
      }
    }
    if (!job) return;
    job.stealing = idle.stealing = true;
    // A revoke to a silent agent is never answered: the thief and the job stay marked (as in the code, until the
    // control request's deadline or the connection's loss).
    if (!victim.lost) q.push(now + half, { kind: Ev.RevokeAt, w: victim, job, thief: idle });
  };

  q.push(rng.exponential(1 / rate), { kind: Ev.Arrive });
  if (samples > 0 && gap > 0) q.push(warmup, { kind: Ev.Sample });
  else {
    q.push(warmup, { kind: Ev.Kill });
    q.push(warmup + s.detectMs, { kind: Ev.Detect });
  }
  while (!done && q.size > 0) {
    const [t, e] = q.pop();
    now = t;
    events++;
    switch (e.kind) {
      case Ev.Arrive:
        enqueue({ service: rng.exponential(s.callMs), sends: 0, started: false, revoked: false, stealing: false, startedAt: 0 }, false);
        q.push(now + rng.exponential(1 / rate), { kind: Ev.Arrive });
        break;
      case Ev.AtWorker: {
        const w = e.w!;
        if (w.lost || e.job!.revoked || e.sends !== e.job!.sends) break;
        w.waiting.push(e.job!);
        if (!w.running) startNext(w);
        break;
      }
      case Ev.Finish: {
        const w = e.w!;
        if (w.lost) break;
        w.running = undefined;
        q.push(now + half, { kind: Ev.Reply, w, job: e.job! });
        startNext(w);
        break;
      }
      case Ev.Reply: {
        const w = e.w!;
        if (w.lost) break;
        const at = w.sent.indexOf(e.job!);
        if (at >= 0) w.sent.splice(at, 1);
        if (at === 0 && w.sent.length > 0) w.sent[0]!.startedAt = now;
        dispatch();
        if (w.sent.length === 0) steal(w);
        break;
      }
      case Ev.StealCheck:
        e.w!.stealTimer = false;
        steal(e.w!);
        break;
      case Ev.RevokeAt: {
        const w = e.w!;
        if (w.lost) break;
        const job = e.job!;
        const ok = !job.started;
        if (ok) {
          job.revoked = true;
          const at = w.waiting.indexOf(job);
          if (at >= 0) w.waiting.splice(at, 1);
        }
        q.push(now + half, { kind: Ev.RevokeReply, w, job, thief: e.thief!, ok });
        break;
      }
      case Ev.RevokeReply: {
        const w = e.w!;
        if (w.lost) break;
        const job = e.job!;
        const thief = e.thief!;
        thief.stealing = job.stealing = false;
        if (!e.ok) break;
        const at = w.sent.indexOf(job);
        if (at >= 0) w.sent.splice(at, 1);
        if (at === 0 && w.sent.length > 0) w.sent[0]!.startedAt = now;
        enqueue(job, true);
        steal(thief);
        break;
      }
      case Ev.Sample: {
        // Which of the pool's workers the lost agent held: drawn again at each sample (the scheduler favours the
        // first idle worker in the pool's order, so a worker's load depends on its place).
        let n = 0;
        pickLost(workers, s.lost, rng, lost);
        for (const w of lost) n += w.sent.length;
        inDoubt.push(n);
        queuedAt.push(queue.length);
        if (++sampled >= samples) done = true;
        else q.push(now + gap, { kind: Ev.Sample });
        break;
      }
      case Ev.Kill:
        for (const w of lost) w.lost = true;
        break;
      case Ev.Detect: {
        let n = 0;
        for (const w of lost) n += w.sent.length;
        inDoubt.push(n);
        queuedAt.push(queue.length);
        done = true;
        break;
      }
    }
  }
  return events;
}

// ------------------------------------------------------------------ reconnection

/** connection.ts #onLost: the delay before attempt `attempt` (0 after a WELCOME): random up to min(maxDelay, initialDelay × 2^attempt). */
export function backoffDelay(attempt: number, initialDelay: number, maxDelay: number, jitter: boolean, rng: Rng): number {
  const ceiling = Math.min(maxDelay, initialDelay * 2 ** attempt);
  return jitter ? rng.next() * ceiling : ceiling;
}

export interface StormSettings {
  /** Hosts that were connected to the lost agent and reconnect to it. */
  hosts: number;
  /** The agent takes connections again this long after the loss (restarted at the same address), ms. */
  upAtMs: number;
  jitter: boolean;
  initialDelay: number;
  maxDelay: number;
  /** The hosts notice the loss within this many ms of each other (a closed connection: ~1 ms; a silent agent: heartbeatInterval). */
  detectSpreadMs: number;
  /** ... and this long after it happened (0: the connection closes; heartbeatTimeout for a silent agent). */
  detectMs: number;
  windowMs: number;
  seed: number;
}

export interface StormResult {
  /** Attempts while nothing listened (refused at once), and those that reached the agent. */
  failedAttempts: number;
  peakPerWindow: number;
  /** When the busiest window starts, ms after the loss. */
  peakAt: number;
  /** Peak as a rate, per second. */
  peakPerSecond: number;
  /** The agent's CPU for the busiest window's handshakes, as a share of the window (one Node thread). */
  peakCpuShare: number;
  /** Reconnected, ms after the agent was back: median, 99th percentile, last. */
  reconnected: Spread;
}

/** Every host retries with the backoff formula; attempts before `upAtMs` fail, the first after it reaches the agent. */
export function reconnectStorm(s: StormSettings): StormResult {
  const rng = new Rng(hash32(s.seed, 3, s.hosts, s.jitter ? 1 : 0));
  const at = new Float64Array(s.hosts);
  let failed = 0;
  for (let h = 0; h < s.hosts; h++) {
    let t = s.detectMs + rng.next() * s.detectSpreadMs;
    let attempt = 0;
    while (true) {
      t += backoffDelay(attempt, s.initialDelay, s.maxDelay, s.jitter, rng);
      attempt = Math.min(attempt + 1, 30);
      if (t >= s.upAtMs) break;
      failed++;
      t += ASSUMPTIONS.refusedConnectMs;
    }
    at[h] = t;
  }
  const windows = new Map<number, number>();
  for (const t of at) {
    const w = Math.floor(t / s.windowMs);
    windows.set(w, (windows.get(w) ?? 0) + 1);
  }
  let peak = 0;
  let peakWindow = 0;
  for (const [w, n] of windows) {
    if (n > peak || (n === peak && w < peakWindow)) {
      peak = n;
      peakWindow = w;
    }
  }
  const [cMin, cMax] = ASSUMPTIONS.connectMs;
  const back = Float64Array.from(at, (t) => t - s.upAtMs + (cMin + cMax) / 2);
  return {
    failedAttempts: failed,
    peakPerWindow: peak,
    peakAt: peakWindow * s.windowMs,
    peakPerSecond: (peak * 1000) / s.windowMs,
    peakCpuShare: (peak * ASSUMPTIONS.handshakeCpuMs) / s.windowMs,
    reconnected: spread(back),
  };
}

/** A replacement at a new address: each host connects at its next resolve after the address is in DNS (no backoff). */
export function dnsArrivalPeak(hostStart: ArrayLike<number>, appearsAtMs: number, resolveInterval: number, windowMs: number): { peakPerWindow: number; last: number } {
  const windows = new Map<number, number>();
  let last = 0;
  for (let h = 0; h < hostStart.length; h++) {
    const phase = hostStart[h]! % resolveInterval;
    let t = Math.floor(appearsAtMs / resolveInterval) * resolveInterval + phase;
    if (t < appearsAtMs) t += resolveInterval;
    const w = Math.floor(t / windowMs);
    windows.set(w, (windows.get(w) ?? 0) + 1);
    last = Math.max(last, t - appearsAtMs);
  }
  let peak = 0;
  for (const n of windows.values()) peak = Math.max(peak, n);
  return { peakPerWindow: peak, last };
}

export interface LeaseRaceSettings {
  workers: number;
  workersPerAgent?: number;
  perHost?: number;
  /** Default 'share' (the code). */
  model?: LeaseModel;
  /** Hosts that held the lost agent's workers: they reconnect with the backoff from its start. */
  formerHolders: number;
  /** Hosts the agent had refused: they retry at the backoff's ceiling, at a random phase. */
  refusedHosts: number;
  upAtMs: number;
  initialDelay: number;
  maxDelay: number;
  seed: number;
}

export interface LeaseRaceResult {
  /** The agent's workers are shared out again (as many as it will share out) this long after the loss (Infinity: not within the horizon). */
  leasedAtMs: number;
  /** ... and with the workers started: capacity back. */
  capacityBackMs: number;
  /** Workers that went back to hosts that had them before, of those shared out. */
  toFormerHolders: number;
  leased: number;
}

/**
 * Who gets a restarted agent's workers: its former holders (backoff from attempt 0, full jitter) race the hosts
 * it had refused (retrying every U(0, maxDelay), at a stationary phase); the agent lets hosts in in the order they
 * arrive and shares its workers out among them ('before': grants in that order).
 */
export function leaseRace(s: LeaseRaceSettings): LeaseRaceResult {
  const rng = new Rng(hash32(s.seed, 4, s.formerHolders, s.refusedHosts));
  const perHost = s.perHost ?? s.workers;
  const share = (s.model ?? 'share') === 'share';
  const sharesOf = shareTable(s.workers, s.workersPerAgent, perHost);
  // Items: host index; former holders first. Each carries its attempt count.
  const n = s.formerHolders + s.refusedHosts;
  const attempts = new Int32Array(n);
  const q = new EventQueue<number>();
  for (let h = 0; h < s.formerHolders; h++) q.push(backoffDelay(0, s.initialDelay, s.maxDelay, true, rng), h);
  for (let h = s.formerHolders; h < n; h++) {
    // Forward recurrence time of a renewal process with U(0, M) gaps: density 2(1 - x/M)/M.
    q.push(s.maxDelay * (1 - Math.sqrt(1 - rng.next())), h);
    attempts[h] = 30;
  }
  // Hosts let in, in order, and ('before') what each was granted.
  const letIn: number[] = [];
  const granted: number[] = [];
  let free = s.workers;
  const horizon = s.upAtMs + 120_000;
  let leased = 0;
  let leasedAt = Infinity;
  while (q.size > 0) {
    const [t, h] = q.pop();
    if (t > horizon) break;
    if (t >= s.upAtMs) {
      if (share) {
        const next = sharesOf(letIn.length + 1);
        if (next[letIn.length] === 0) break; // W hosts are in: nothing changes any more
        letIn.push(h);
        const total = next.reduce((x, y) => x + y, 0);
        if (total > leased) {
          leased = total;
          leasedAt = t;
        }
        if (letIn.length === n) break;
        continue; // let in: it holds its share and does not come back
      }
      const g = grantBefore(s.workersPerAgent, perHost, free);
      free -= g;
      letIn.push(h);
      granted.push(g);
      if (g > 0) {
        leased += g;
        leasedAt = t;
      }
      if (free === 0 || letIn.length === n) break;
      continue;
    }
    attempts[h] = Math.min(attempts[h]! + 1, 30);
    q.push(t + ASSUMPTIONS.refusedConnectMs + backoffDelay(attempts[h]!, s.initialDelay, s.maxDelay, true, rng), h);
  }
  const shares = share ? sharesOf(letIn.length) : granted;
  let toFormer = 0;
  for (let i = 0; i < letIn.length; i++) if (letIn[i]! < s.formerHolders) toFormer += shares[i]!;
  const [cMin, cMax] = ASSUMPTIONS.connectMs;
  const leasedAtMs = leasedAt + (cMin + cMax) / 2;
  return { leasedAtMs, capacityBackMs: leasedAtMs + ASSUMPTIONS.workerStartMs, toFormerHolders: toFormer, leased };
}

// ------------------------------------------------------------------ one agent, hosts coming and going: shares and processes

export interface AgentSimHost {
  /** When its HELLO reaches the agent (ms). */
  arriveAt: number;
  /** When its connection ends (the agent kills its workers), ms; undefined: it stays. */
  leaveAt?: number;
  /** Its `workersPerAgent` (undefined: no limit). */
  wants?: number;
}

export interface AgentSimSettings {
  workers: number;
  perHost?: number;
  hosts: AgentSimHost[];
  /** Each ready worker is busy this share of the time (1: always, one call after another); calls exponential of callMs. */
  utilisation: number;
  callMs: number;
  /** One way, host to agent or back, ms. */
  latencyMs: number;
  workerStartMs: number;
  /** From the END of a worker given back (or a kill) to its exit, ms. */
  exitMs: number;
  /** Simulated up to this time (ms). */
  untilMs: number;
  seed: number;
}

export interface AgentSimHostResult {
  /** Let in (false: refused 'full'). */
  letIn: boolean;
  /** ms after its HELLO: its first worker ready, and as many ready as its share then (Infinity: not by untilMs). */
  firstWorkerMs: number;
  fullShareMs: number;
  /** At the end (or when it left): its share, and the workers it held (starting or ready, not given back). */
  share: number;
  held: number;
}

export interface AgentSimResult {
  hosts: AgentSimHostResult[];
  /** Worker processes on the agent at most (starting, running, given back and not yet exited). */
  maxRunning: number;
  /** Above `workers` processes (the one replacement in use): for this long in all, and until this time at the latest. */
  overMs: number;
  lastOverAt: number;
  /** GRANT messages (shares changed, or room freed), workers given back, OPENs answered "no room yet", processes started. */
  grants: number;
  givenBack: number;
  noRoom: number;
  started: number;
  /** The agent's shares at the end, per host (0: not in). */
  shares: number[];
}

interface SimProc {
  host: number;
  /** The host's view. */
  state: 'opening' | 'starting' | 'ready' | 'retiring' | 'gone';
  busy: boolean;
  /** The agent started it (OPEN accepted); it has exited. */
  onAgent: boolean;
  exited: boolean;
}

const enum Ag {
  Hello,
  Leave,
  Open,
  End,
  Exit,
  ToHost,
  Ready,
  CallEnd,
  CallStart,
}

interface AgEvent {
  kind: Ag;
  host: number;
  proc?: SimProc;
  /** ToHost: the message. */
  msg?: 'welcome' | 'grant' | 'opened' | 'noRoom' | 'refusedOpen' | 'exit';
  grant?: number;
}

/**
 * One agent and the hosts that come and go, message by message, with the rules of agent.ts (shareOut on every
 * arrival and departure, a GRANT to each host whose share changed, OPEN refused above `workers` + 1 processes with
 * a GRANT to the waiting hosts when one exits) and of fleet.ts (#regrant: a host over its share gives back idle and
 * starting workers first, busy ones once their call ends; one under it leases more). Workers alternate calls and
 * idle gaps at the given load.
 */
export function simulateAgent(s: AgentSimSettings): AgentSimResult {
  const rng = new Rng(hash32(s.seed, 5, s.workers, s.hosts.length));
  const W = s.workers;
  const perHost = s.perHost ?? W;
  const H = s.hosts.length;
  const q = new EventQueue<AgEvent>();
  const lat = s.latencyMs;
  // The agent's side.
  const order: number[] = [];
  const grantAt = new Array<number>(H).fill(0);
  const agentProcs: Array<Set<SimProc>> = Array.from({ length: H }, () => new Set());
  const waitingAt = new Array<boolean>(H).fill(false);
  const inAgent = new Array<boolean>(H).fill(false);
  let dying = 0;
  // The host's side.
  const grantKnown = new Array<number>(H).fill(0);
  const welcomed = new Array<boolean>(H).fill(false);
  const waiting = new Array<boolean>(H).fill(false);
  const gone = new Array<boolean>(H).fill(false);
  const procs: SimProc[][] = Array.from({ length: H }, () => []);
  const results: AgentSimHostResult[] = s.hosts.map(() => ({ letIn: false, firstWorkerMs: Infinity, fullShareMs: Infinity, share: 0, held: 0 }));
  let maxRunning = 0;
  let overMs = 0;
  let lastOverAt = 0;
  let overSince = -1;
  let grants = 0;
  let givenBack = 0;
  let noRoom = 0;
  let started = 0;
  let now = 0;

  const running = () => {
    let n = dying;
    for (const set of agentProcs) n += set.size;
    return n;
  };
  const countRunning = () => {
    const r = running();
    maxRunning = Math.max(maxRunning, r);
    if (r > W && overSince < 0) overSince = now;
    if (r <= W && overSince >= 0) {
      overMs += now - overSince;
      lastOverAt = now;
      overSince = -1;
    }
  };
  const toHost = (host: number, msg: AgEvent['msg'], extra: Partial<AgEvent> = {}) => q.push(now + lat, { kind: Ag.ToHost, host, msg, ...extra });
  const shareOutNow = () => {
    const shares = shareOut(order.map((h) => s.hosts[h]!.wants), W, perHost);
    order.forEach((h, i) => {
      if (grantAt[h] === shares[i]) return;
      const told = grantAt[h]! > 0; // as agent.ts: a host being let in learns its share in its WELCOME
      grantAt[h] = shares[i]!;
      if (told) {
        grants++;
        toHost(h, 'grant', { grant: shares[i] });
      }
    });
  };
  const agentExited = () => {
    countRunning();
    if (running() < W + 1) {
      for (let h = 0; h < H; h++) {
        if (!waitingAt[h] || !inAgent[h]) continue;
        waitingAt[h] = false;
        grants++;
        toHost(h, 'grant', { grant: grantAt[h] });
      }
    }
  };
  // Host side.
  const held = (h: number) => procs[h]!.filter((p) => p.state === 'opening' || p.state === 'starting' || p.state === 'ready');
  const leased = (h: number) => procs[h]!.filter((p) => p.state !== 'gone').length;
  const checkShare = (h: number) => {
    const r = results[h]!;
    const ready = procs[h]!.filter((p) => p.state === 'ready').length;
    if (ready > 0 && r.firstWorkerMs === Infinity) r.firstWorkerMs = now - s.hosts[h]!.arriveAt;
    if (grantKnown[h]! > 0 && ready >= grantKnown[h]! && r.fullShareMs === Infinity) r.fullShareMs = now - s.hosts[h]!.arriveAt;
  };
  const fill = (h: number) => {
    if (gone[h] || !welcomed[h]) return;
    while (!waiting[h] && grantKnown[h]! - leased(h) > 0) {
      const p: SimProc = { host: h, state: 'opening', busy: false, onAgent: false, exited: false };
      procs[h]!.push(p);
      q.push(now + lat, { kind: Ag.Open, host: h, proc: p });
    }
  };
  const giveBack = (p: SimProc) => {
    p.state = 'retiring';
    givenBack++;
    if (!p.busy) q.push(now + lat, { kind: Ag.End, host: p.host, proc: p }); // idle (or starting): END at once
  };
  const regrant = (h: number) => {
    const mine = held(h);
    const over = mine.length - grantKnown[h]!;
    if (over > 0) {
      // Idle and starting workers first (load 0), then busy ones; in the order they were leased.
      const sorted = [...mine].sort((x, y) => Number(x.busy) - Number(y.busy));
      for (const p of sorted.slice(0, over)) giveBack(p);
    }
    fill(h);
  };
  const idleGap = () => (s.utilisation >= 1 ? 0 : rng.exponential((s.callMs * (1 - s.utilisation)) / s.utilisation));

  s.hosts.forEach((host, h) => {
    q.push(host.arriveAt, { kind: Ag.Hello, host: h });
    if (host.leaveAt !== undefined) q.push(host.leaveAt, { kind: Ag.Leave, host: h });
  });
  while (q.size > 0 && q.peekTime() <= s.untilMs) {
    const [t, e] = q.pop();
    now = t;
    const h = e.host;
    switch (e.kind) {
      case Ag.Hello: {
        if (gone[h]) break;
        const shares = shareOut([...order, h].map((x) => s.hosts[x]!.wants), W, perHost);
        if (shares[order.length] === 0) break; // refused 'full'
        order.push(h);
        inAgent[h] = true;
        results[h]!.letIn = true;
        shareOutNow();
        toHost(h, 'welcome', { grant: grantAt[h] });
        break;
      }
      case Ag.Leave: {
        gone[h] = true;
        results[h]!.share = grantKnown[h]!;
        results[h]!.held = held(h).length;
        if (!inAgent[h]) break;
        inAgent[h] = false;
        order.splice(order.indexOf(h), 1);
        grantAt[h] = 0;
        // Its workers are killed: they count until they have exited.
        for (const p of agentProcs[h]!) {
          dying++;
          q.push(now + s.exitMs, { kind: Ag.Exit, host: h, proc: p });
        }
        agentProcs[h]!.clear();
        shareOutNow();
        agentExited();
        break;
      }
      case Ag.Open: {
        const p = e.proc!;
        if (!inAgent[h]) break;
        if (agentProcs[h]!.size >= grantAt[h]! + 1) toHost(h, 'refusedOpen', { proc: p });
        else if (running() >= W + 1) {
          noRoom++;
          waitingAt[h] = true;
          toHost(h, 'noRoom', { proc: p });
        } else {
          agentProcs[h]!.add(p);
          p.onAgent = true;
          started++;
          countRunning();
          q.push(now + s.workerStartMs, { kind: Ag.Ready, host: h, proc: p });
        }
        break;
      }
      case Ag.End: {
        const p = e.proc!;
        if (p.onAgent && !p.exited && agentProcs[h]!.has(p)) q.push(now + s.exitMs, { kind: Ag.Exit, host: h, proc: p });
        break;
      }
      case Ag.Exit: {
        const p = e.proc!;
        if (p.exited) break;
        p.exited = true;
        if (agentProcs[h]!.delete(p)) toHost(h, 'exit', { proc: p });
        else dying--;
        agentExited();
        break;
      }
      case Ag.Ready: {
        // On the agent: the worker is up; the host hears of it one latency later (ToHost 'opened').
        const p = e.proc!;
        if (p.exited || !agentProcs[h]!.has(p)) break;
        toHost(h, 'opened', { proc: p });
        break;
      }
      case Ag.CallStart: {
        const p = e.proc!;
        if (p.exited || p.state !== 'ready') break;
        p.busy = true;
        q.push(now + rng.exponential(s.callMs), { kind: Ag.CallEnd, host: h, proc: p });
        break;
      }
      case Ag.CallEnd: {
        const p = e.proc!;
        p.busy = false;
        if (p.exited) break;
        // Given back while busy: the host ends it once the answer is in (one latency there, one back).
        if (p.state === 'retiring') q.push(now + 2 * lat, { kind: Ag.End, host: h, proc: p });
        else q.push(now + idleGap(), { kind: Ag.CallStart, host: h, proc: p });
        break;
      }
      case Ag.ToHost: {
        if (gone[h]) break;
        const p = e.proc;
        switch (e.msg) {
          case 'welcome':
            welcomed[h] = true;
            grantKnown[h] = e.grant!;
            waiting[h] = false;
            fill(h);
            break;
          case 'grant':
            grantKnown[h] = e.grant!;
            waiting[h] = false;
            regrant(h);
            checkShare(h);
            break;
          case 'noRoom':
            // No worker there (and not leased): lease nothing more here until a GRANT says there is room.
            waiting[h] = true;
            p!.state = 'gone';
            procs[h] = procs[h]!.filter((x) => x !== p);
            break;
          case 'refusedOpen':
            p!.state = 'gone';
            procs[h] = procs[h]!.filter((x) => x !== p);
            break;
          case 'opened':
            if (p!.state === 'opening') {
              p!.state = 'ready';
              q.push(now + idleGap(), { kind: Ag.CallStart, host: h, proc: p });
            }
            checkShare(h);
            break;
          case 'exit':
            // A worker given back has exited: the lease is free (fleet.ts #onExit fills again).
            p!.state = 'gone';
            procs[h] = procs[h]!.filter((x) => x !== p);
            fill(h);
            break;
        }
        break;
      }
    }
  }
  now = s.untilMs;
  countRunning();
  if (overSince >= 0) {
    overMs += now - overSince;
    lastOverAt = now;
  }
  for (let h = 0; h < H; h++) {
    if (gone[h]) continue;
    results[h]!.share = grantKnown[h]!;
    results[h]!.held = held(h).length;
  }
  return { hosts: results, maxRunning, overMs, lastOverAt, grants, givenBack, noRoom, started, shares: grantAt.slice() };
}

export interface RolloutRow {
  workers: number;
  /** Hosts holding the agent's workers before (at the load given), then one more arrives. */
  hosts: number;
  utilisation: number;
  callMs: number;
  /** The newcomer's share, and what the hosts before gave back. */
  share: number;
  givenBack: number;
  /** The newcomer's first worker ready, its whole share ready (ms after its HELLO). */
  first: Spread;
  full: Spread;
  /** The agent back at `workers` processes (the last given-back worker exited), ms after the HELLO. */
  settled: Spread;
  maxRunning: number;
}

/** A rolling update's first step at one agent: `hosts` hosts hold its workers, busy at `utilisation`; one more connects. */
export function rolloutStep(workers: number, hosts: number, utilisation: number, callMs: number, trials: number, seed: number, latencyMs = 0.25): RolloutRow {
  // Late enough for the workers' calls to have reached their steady state.
  const arrive = 2000 + 5 * callMs;
  const first: number[] = [];
  const full: number[] = [];
  const settled: number[] = [];
  let maxRunning = 0;
  let share = 0;
  let givenBack = 0;
  for (let i = 0; i < trials; i++) {
    const r = simulateAgent({
      workers,
      hosts: [...Array.from({ length: hosts }, (_, h) => ({ arriveAt: h })), { arriveAt: arrive }],
      utilisation,
      callMs,
      latencyMs,
      workerStartMs: ASSUMPTIONS.workerStartMs,
      exitMs: ASSUMPTIONS.workerExitMs,
      untilMs: arrive + 20 * callMs + 10_000,
      seed: hash32(seed, i),
    });
    const newcomer = r.hosts[hosts]!;
    first.push(newcomer.firstWorkerMs);
    full.push(newcomer.fullShareMs);
    settled.push(r.overMs > 0 ? r.lastOverAt - arrive : 0);
    maxRunning = Math.max(maxRunning, r.maxRunning);
    share = newcomer.share;
  }
  // What the hosts in gave back for it: their shares before and after.
  const before = shareOut(new Array<undefined>(hosts).fill(undefined), workers);
  const after = shareOut(new Array<undefined>(hosts + 1).fill(undefined), workers);
  for (let h = 0; h < hosts; h++) givenBack += before[h]! - after[h]!;
  return { workers, hosts, utilisation, callMs, share, givenBack, first: spread(first), full: spread(full), settled: spread(settled), maxRunning };
}

// ------------------------------------------------------------------ a case, end to end

export interface CaseSettings extends LeaseSettings {
  label: string;
  heartbeatInterval: number;
  heartbeatTimeout: number;
  resolveInterval: number;
  names: number;
  initialDelay: number;
  maxDelay: number;
  pipelineDepth: number;
  utilisation: number;
  callMs: number;
  rttMs: number;
  /** The lost agent is back (same address) this long after its loss, ms. */
  restartMs: number;
  /** A replacement at a new address is in DNS this long after the loss, ms. */
  dnsReplaceMs: number;
  /** Allocation trials (different seeds) for the hosts-without-workers figure. */
  trials: number;
}

export interface CaseReport {
  settings: CaseSettings;
  alloc: Allocation;
  costs: ConnectionCosts;
  /** hostsWithout over `trials` seeds. */
  withoutOverTrials: Spread;
  heartbeat: HeartbeatLoad;
  dns: DnsLoad;
  lost?: LostAgentReport;
  ms: number;
}

export interface LostAgentReport {
  agent: number;
  hosts: number;
  workers: number;
  /** Share of those hosts' pools that was on the lost agent (mean over them). */
  poolShareLost: number;
  /** Calls in doubt (sum over the agent's workers; each host's pool simulated), connection closed at once. */
  inDoubt: number;
  /** ... the same when the agent goes silent (detected after heartbeatTimeout). */
  inDoubtSilent: number;
  bound: number;
  /** Calls in those hosts' queues when the loss was noticed (go on elsewhere, or wait when the host has no other worker). */
  queued: number;
  race: LeaseRaceResult;
  /** Hosts that lost every worker they had. */
  hostsLeftWithNone: number;
}

export const DEFAULTS: Omit<CaseSettings, 'label' | 'agents' | 'hosts'> = {
  workers: 8,
  startSpreadMs: 1000,
  seed: 1,
  heartbeatInterval: CODE.heartbeatInterval,
  heartbeatTimeout: CODE.heartbeatTimeout,
  resolveInterval: CODE.resolveInterval,
  names: 1,
  initialDelay: CODE.initialDelay,
  maxDelay: CODE.maxDelay,
  pipelineDepth: CODE.pipelineDepth,
  utilisation: 0.7,
  callMs: 10,
  rttMs: 0.5,
  restartMs: 2000,
  dnsReplaceMs: 10_000,
  trials: 1,
};

export function runCase(c: CaseSettings): CaseReport {
  const t0 = performance.now();
  const alloc = allocateLeases(c);
  const costs = connectionCosts(alloc, c.maxDelay);
  const without: number[] = [costs.hostsWithout];
  for (let i = 1; i < c.trials; i++) without.push(hostsWithoutWorkers(allocateLeases({ ...c, seed: hash32(c.seed, 100 + i) })));
  const heartbeat = heartbeatLoad(alloc, c.heartbeatInterval);
  const dns = dnsLoad(c.hosts, c.agents, alloc.hostStart, c.names, c.resolveInterval);
  const lost = c.model === 'shared' || c.model === 'before' ? undefined : lostAgent(c, alloc);
  return { settings: c, alloc, costs, withoutOverTrials: spread(without), heartbeat, dns, lost, ms: performance.now() - t0 };
}

/** The largest pool simulated as it is (see lostAgent). */
export const POOL_SIM_CAP = 32;

/** The agent with the most hosts is lost: what its hosts' calls, their pools and its workers go through. */
export function lostAgent(c: CaseSettings, alloc: Allocation): LostAgentReport | undefined {
  let agent = 0;
  for (let a = 1; a < c.agents; a++) if (alloc.agentHosts[a]! > alloc.agentHosts[agent]!) agent = a;
  const leases = alloc.leases[agent]!;
  if (leases.length === 0) return undefined;
  let inDoubt = 0;
  let inDoubtSilent = 0;
  let queued = 0;
  let share = 0;
  let none = 0;
  for (const [h, g] of leases) {
    const pool = alloc.hostWorkers[h]!;
    share += g / pool;
    if (g === pool) none++;
    // A pool above POOL_SIM_CAP workers is simulated at that size with the same share lost, and scaled back: the
    // scheduler scans every worker per call, and per worker a larger pool at the same load behaves alike.
    const size = Math.min(pool, POOL_SIM_CAP);
    const part = pool === size ? g : Math.max(1, Math.round((g * size) / pool));
    const scale = g / part;
    const base = { workers: size, lost: part, utilisation: c.utilisation, callMs: c.callMs, pipelineDepth: c.pipelineDepth, rttMs: c.rttMs, seed: hash32(c.seed, h) };
    const atOnce = simulatePool({ ...base, detectMs: 0, samples: 400 });
    const silent = simulatePool({ ...base, detectMs: c.heartbeatTimeout + c.heartbeatInterval / 2, samples: 6 });
    inDoubt += atOnce.inDoubt.mean * scale;
    inDoubtSilent += silent.inDoubt.mean * scale;
    queued += atOnce.queued.mean;
  }
  const workers = alloc.agentLeased[agent]!;
  const race = leaseRace({
    workers: c.workers,
    workersPerAgent: c.workersPerAgent,
    perHost: c.perHost,
    model: c.model,
    formerHolders: leases.length,
    refusedHosts: alloc.agentRefused[agent]!,
    upAtMs: c.restartMs,
    initialDelay: c.initialDelay,
    maxDelay: c.maxDelay,
    seed: c.seed,
  });
  return {
    agent,
    hosts: leases.length,
    workers,
    poolShareLost: share / leases.length,
    inDoubt,
    inDoubtSilent,
    bound: inDoubtBound(workers, c.pipelineDepth),
    queued,
    race,
    hostsLeftWithNone: none,
  };
}

/** What the in-doubt table shows: one host's pool of 8, losing 1 or all 8 workers, at three loads, two depths. */
export function inDoubtTable(seed: number, callMs = 10, rttMs = 0.5, detectSilentMs = CODE.heartbeatTimeout + CODE.heartbeatInterval / 2): Array<{ lost: number; utilisation: number; depth: number; atOnce: PoolSimResult; silent: PoolSimResult }> {
  const rows = [];
  for (const lost of [1, 8]) {
    for (const utilisation of [0.5, 0.8, 0.95]) {
      for (const depth of [CODE.pipelineDepth, 1]) {
        const base = { workers: 8, lost, utilisation, callMs, pipelineDepth: depth, rttMs, seed };
        rows.push({ lost, utilisation, depth, atOnce: simulatePool({ ...base, detectMs: 0, samples: 2000 }), silent: simulatePool({ ...base, detectMs: detectSilentMs, samples: 20 }) });
      }
    }
  }
  return rows;
}

// ------------------------------------------------------------------ printing

const n0 = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '—');
const n1 = (x: number) =>
  !Number.isFinite(x) ? '—' : Math.abs(x) >= 100 ? n0(x) : x !== 0 && Math.abs(x) < 0.1 ? x.toPrecision(1) : x.toLocaleString('en-US', { maximumFractionDigits: 1 });
const pct = (x: number) => `${(x * 100).toLocaleString('en-US', { maximumFractionDigits: x < 0.1 ? 1 : 0 })} %`;
export function bytes(x: number): string {
  if (x >= 1024 ** 3) return `${(x / 1024 ** 3).toFixed(1)} GiB`;
  if (x >= 1024 ** 2) return `${(x / 1024 ** 2).toFixed(1)} MiB`;
  if (x >= 1024) return `${(x / 1024).toFixed(1)} KiB`;
  return `${Math.round(x)} B`;
}
const secs = (ms: number) => (Number.isFinite(ms) ? (ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`) : 'not in 2 min');

/** A Markdown table (aligned; numbers right-aligned). */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = head.map((_, i) => rows.every((r) => /^[-~≤<>]?[\d,.—]+( ?[%a-zA-Z/]*)?$|^—$/.test(r[i] ?? '')));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  const rule = `| ${widths.map((w, i) => (numeric[i] ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w))).join(' | ')} |`;
  return [line(head), rule, ...rows.map(line)].join('\n');
}

function settingLabel(s: LeaseSettings): string {
  if (s.model === 'shared') return `shared workers (hypothetical), connect to ${s.connectTo ?? 'all'}`;
  const parts = [s.workersPerAgent === undefined ? 'defaults' : `workersPerAgent ${s.workersPerAgent}`];
  if (s.perHost !== undefined) parts.push(`--per-host ${s.perHost}`);
  if (s.connectTo !== undefined && s.connectTo < s.agents) parts.push(`connect to ${s.connectTo} (rendezvous${s.fallback ? ', next on refusal' : ''})`);
  if (s.startSpreadMs !== DEFAULTS.startSpreadMs) parts.push(s.startSpreadMs === 0 ? 'hosts start together' : `hosts start within ${secs(s.startSpreadMs)}`);
  if (s.model === 'before') parts.unshift('before (first come)');
  return parts.join(', ');
}

const caseLabel = (s: LeaseSettings) => `${n0(s.agents)} × ${s.workers}, ${n0(s.hosts)}`;

export function formatCases(reports: CaseReport[]): string {
  const out: string[] = [];
  // The rule before the share-out is compared in the first table only (unless it is all there is).
  const current = reports.filter((r) => r.settings.model !== 'before');
  const now = current.length > 0 ? current : reports;
  out.push('### Shares: which hosts get workers\n');
  out.push(
    table(
      ['A × W, H', 'settings', 'workers shared out', 'hosts with no worker', 'hosts with some: workers (min / median / max)', 'hosts let in per agent (mean / max)', 'per agent while hosts arrived: GRANTs / workers given back (max)'],
      reports
        .filter((r) => r.settings.model !== 'shared')
        .map((r) => {
          const s = r.settings;
          const c = r.costs;
          const without = s.trials > 1 ? `${n1(r.withoutOverTrials.mean)} (mean of ${s.trials} seeds)` : n0(c.hostsWithout);
          return [
            caseLabel(s),
            settingLabel(s),
            `${n0(c.workersInUse)} of ${n0(s.agents * s.workers)}`,
            without,
            `${n0(c.workersPerServedHost.min)} / ${n0(c.workersPerServedHost.p50)} / ${n0(c.workersPerServedHost.max)}`,
            `${n1(c.perAgent.mean)} / ${n0(c.perAgent.max)}`,
            s.model === 'before' ? '—' : `${n0(c.grants.max)} / ${n0(c.givenBack.max)}`,
          ];
        }),
    ),
  );
  out.push('\n### Connections\n');
  out.push(
    table(
      ['A × W, H', 'settings', 'TLS conns tried', 'kept open', 'per agent (mean / max)', 'per host', 'refused handshakes/s per agent (max)', 'agent CPU on them', 'FDs per agent', 'TLS memory per agent / per host'],
      now.map((r) => {
        const s = r.settings;
        const c = r.costs;
        return [
          caseLabel(s),
          settingLabel(s),
          n0(c.attempted),
          n0(c.established),
          `${n1(c.perAgent.mean)} / ${n0(c.perAgent.max)}`,
          `${n0(r.alloc.connectTo)} tried, ${n0(c.perHost.max)} kept`,
          n1(c.refusedPerSecond.max),
          pct(c.refusedCpuShare),
          n0(c.agentFds),
          `${bytes(c.agentTlsBytes)} / ${bytes(c.hostTlsBytes)}`,
        ];
      }),
    ),
  );
  out.push(
    `\n### Heartbeats (each kept connection: a PING every heartbeatInterval, a PONG with its workers' memory; PING ${heartbeatBytes(1).ping} B, PONG ${heartbeatBytes(1).pong} B with 1 worker, ${heartbeatBytes(8).pong} B with 8, TLS record included)\n`,
  );
  out.push(
    table(
      ['A × W, H', 'settings', 'busiest agent: msgs/s', 'bytes/s (TLS records)', 'with TCP/IP headers', 'all agents: msgs/s', 'bytes/s', 'PINGs/s sent by a host'],
      now.map((r) => {
        const h = r.heartbeat;
        return [caseLabel(r.settings), settingLabel(r.settings), n0(h.agentMessagesPerSecond), `${bytes(h.agentBytesPerSecond)}/s`, `${bytes(h.agentWireBytesPerSecond)}/s`, n0(h.totalMessagesPerSecond), `${bytes(h.totalBytesPerSecond)}/s`, n0(h.hostPingsPerSecond)];
      }),
    ),
  );
  const byCase = new Map<string, CaseReport>();
  for (const r of now) if (!byCase.has(`${r.settings.agents}/${r.settings.hosts}`)) byCase.set(`${r.settings.agents}/${r.settings.hosts}`, r);
  out.push('\n### DNS (every pool resolves each name every resolveInterval)\n');
  out.push(
    table(
      ['A, H', 'resolves/s (mean)', 'busiest second', 'queries/s: short name', 'FQDN under ndots:5', 'A answer', 'over TCP'],
      [...byCase.values()].map((r) => {
        const d = r.dns;
        return [`${n0(r.settings.agents)}, ${n0(r.settings.hosts)}`, n1(d.resolvesPerSecond), n0(d.peakResolvesPerSecond), n0(d.queriesShortName), n0(d.queriesNdots), `${n0(d.answerBytes)} B`, d.overTcp ? 'yes (> 512 B)' : 'no'];
      }),
    ),
  );
  out.push('\n### A lost agent (the one with most hosts; SIGKILL, back at the same address after restartMs)\n');
  out.push(
    table(
      ['A × W, H', 'settings', 'its hosts', 'their pools lost', 'hosts left with no worker', 'in doubt: closed at once', 'silent (detected after ~5.5 s)', 'bound (workers × depth)', 'queued at hosts (move)', 'all workers shared out again', 'to former holders'],
      now
        .filter((r) => r.lost)
        .map((r) => {
          const l = r.lost!;
          return [
            caseLabel(r.settings),
            settingLabel(r.settings),
            n0(l.hosts),
            pct(l.poolShareLost),
            n0(l.hostsLeftWithNone),
            n1(l.inDoubt),
            n1(l.inDoubtSilent),
            n0(l.bound),
            n1(l.queued),
            secs(l.race.capacityBackMs),
            `${n0(l.race.toFormerHolders)} of ${n0(l.race.leased)}`,
          ];
        }),
    ),
  );
  return out.join('\n');
}

export interface StormRow {
  label: string;
  situation: string;
  jitter: StormResult;
  none: StormResult;
  dns?: { peakPerWindow: number; last: number };
}

export function formatStorms(rows: StormRow[]): string {
  const capacity = 1000 / ASSUMPTIONS.handshakeCpuMs;
  return (
    table(
      ['reconnecting hosts', 'the agent', 'peak attempts per 100 ms: full jitter', 'no jitter', "× an agent's handshake capacity (jitter / none)", 'all back after it is up (jitter / none)', 'median (jitter)', 'failed attempts first (jitter)', 'new address via DNS: peak per 100 ms', 'all connected'],
      rows.map((r) => [
        r.label,
        r.situation,
        n0(r.jitter.peakPerWindow),
        n0(r.none.peakPerWindow),
        `${n1(r.jitter.peakPerSecond / capacity)} / ${n1(r.none.peakPerSecond / capacity)}`,
        `${secs(r.jitter.reconnected.max)} / ${secs(r.none.reconnected.max)}`,
        secs(r.jitter.reconnected.p50),
        n0(r.jitter.failedAttempts),
        r.dns ? n0(r.dns.peakPerWindow) : '—',
        r.dns ? secs(r.dns.last) : '—',
      ]),
    ) + `\n\nAn agent's handshake capacity: ${n0(capacity)}/s (one Node thread at ${ASSUMPTIONS.handshakeCpuMs} ms each). New address: a replacement pod listed in DNS; each host connects at its next resolve.`
  );
}

/** Agents of W workers needed for every host to hold `perAgent` workers on each of `k` agents (an agent lets in at most W hosts). */
export function agentsNeeded(hosts: number, workers: number, k: number, perAgent = 1): number {
  return Math.ceil((hosts * k * perAgent) / workers);
}

export function formatSizing(sizes: Array<{ agents: number; hosts: number; workers: number }>): string {
  return table(
    ['A × W, H', 'workers', 'hosts that can hold one (hosts spread over the agents)', 'agents of W for every host: 1 worker on 1 agent', 'on 2 agents', 'connections then (k = 2)', 'per agent'],
    sizes.map(({ agents, hosts, workers }) => {
      const two = agentsNeeded(hosts, workers, 2);
      return [`${n0(agents)} × ${workers}, ${n0(hosts)}`, n0(agents * workers), n0(Math.min(hosts, agents * workers)), n0(agentsNeeded(hosts, workers, 1)), n0(two), n0(hosts * 2), n1((hosts * 2) / two)];
    }),
  );
}

/** The rolling-update rows of docs/scaling.md: an agent of 4 (the manifest's) or 8 workers, 2 hosts, one more connects. */
export function rolloutRows(seed: number, trials = 200): RolloutRow[] {
  const rows: RolloutRow[] = [];
  for (const [workers, callMs, utilisation] of [
    [4, 10, 0.7],
    [4, 30_000, 0.7],
    [8, 10, 0.7],
    [8, 1000, 0.7],
    [8, 30_000, 0.7],
    [8, 30_000, 1],
  ] as const) {
    rows.push(rolloutStep(workers, 2, utilisation, callMs, trials, seed));
  }
  return rows;
}

export function formatRollout(rows: RolloutRow[]): string {
  return table(
    ['agent of W', 'hosts in, then one more', 'calls', 'load', "newcomer's share", 'workers given back for it', 'its first worker ready (mean)', 'its whole share ready: mean / p99 / max', 'back to W processes after: mean / max', 'processes at most'],
    rows.map((r) => [
      `W = ${r.workers}`,
      `${r.hosts} + 1`,
      secs(r.callMs),
      pct(r.utilisation),
      String(r.share),
      String(r.givenBack),
      secs(r.first.mean),
      `${secs(r.full.mean)} / ${secs(r.full.p99)} / ${secs(r.full.max)}`,
      `${secs(r.settled.mean)} / ${secs(r.settled.max)}`,
      String(r.maxRunning),
    ]),
  );
}

export function formatInDoubt(rows: ReturnType<typeof inDoubtTable>): string {
  return table(
    ['lost / pool', 'load', 'pipelineDepth', 'closed at once: in doubt, mean', 'p99', 'queued (move)', 'silent, noticed after ~5.5 s: in doubt, mean', 'max', 'queued (move)', 'bound'],
    rows.map((r) => [`${r.lost} / 8`, pct(r.utilisation), String(r.depth), n1(r.atOnce.inDoubt.mean), n0(r.atOnce.inDoubt.p99), n1(r.atOnce.queued.mean), n1(r.silent.inDoubt.mean), n0(r.silent.inDoubt.max), n1(r.silent.queued.mean), n0(r.atOnce.bound)]),
  );
}

export function formatAssumptions(): string {
  const a = ASSUMPTIONS;
  return [
    `Assumptions: ${bytes(a.tlsConnectionBytes)} per TLS connection (each side; measured ~33 KiB idle on Node 20),`,
    `${a.tlsRecordBytes} B per TLS record, ${a.tcpIpBytes} B TCP/IP per segment, ${a.handshakeCpuMs} ms of agent CPU per TLS handshake (measured 0.62-0.74 ms),`,
    `${a.fdsPerWorker} FDs per worker + ${a.agentBaseFds} per agent, PONG figures of ${bytes(a.workerRss)} workers,`,
    `connection set-up ${a.connectMs[0]}-${a.connectMs[1]} ms, worker start ${a.workerStartMs} ms (plus your --setup), calls exponential.`,
  ].join('\n');
}

// ------------------------------------------------------------------ the command

/**
 * The cases of docs/scaling.md: each size with the code's defaults, with the rule before the share-out (for
 * comparison), with hosts that start together (a random order at each agent), and with changes we would make.
 */
export function defaultCases(seed = 1): CaseSettings[] {
  const c = (label: string, agents: number, hosts: number, extra: Partial<CaseSettings> = {}, trials = 1): CaseSettings => ({ ...DEFAULTS, seed, label, agents, hosts, trials, ...extra });
  return [
    c('A=3, H=2', 3, 2, { workers: 4 }, 400),
    c('A=3, H=2', 3, 2, { workers: 4, model: 'before' }, 400),
    c('A=100, H=100', 100, 100, {}, 40),
    c('A=100, H=100', 100, 100, { model: 'before' }, 40),
    c('A=100, H=100', 100, 100, { startSpreadMs: 0 }, 40),
    c('A=100, H=100', 100, 100, { connectTo: 8 }, 40),
    c('A=100, H=100', 100, 100, { connectTo: 8, fallback: true }, 40),
    c('A=100, H=10,000', 100, 10_000, {}),
    c('A=100, H=10,000', 100, 10_000, { model: 'before' }),
    c('A=100, H=10,000', 100, 10_000, { startSpreadMs: 0 }),
    c('A=100, H=10,000', 100, 10_000, { connectTo: 2 }),
    c('A=2,500, H=10,000', 2500, 10_000, { connectTo: 2, fallback: true }),
    c('A=100, H=10,000', 100, 10_000, { model: 'shared' }),
    c('A=100, H=10,000', 100, 10_000, { model: 'shared', connectTo: 2 }),
  ];
}

const FLAGS: Record<string, keyof CaseSettings> = {
  agents: 'agents',
  hosts: 'hosts',
  workers: 'workers',
  'workers-per-agent': 'workersPerAgent',
  'per-host': 'perHost',
  'connect-to': 'connectTo',
  'start-spread': 'startSpreadMs',
  seed: 'seed',
  'heartbeat-interval': 'heartbeatInterval',
  'heartbeat-timeout': 'heartbeatTimeout',
  'resolve-interval': 'resolveInterval',
  names: 'names',
  'initial-delay': 'initialDelay',
  'max-delay': 'maxDelay',
  'pipeline-depth': 'pipelineDepth',
  utilisation: 'utilisation',
  'call-ms': 'callMs',
  'rtt-ms': 'rttMs',
  'restart-ms': 'restartMs',
  trials: 'trials',
};

const HELP = `Usage: node --import tsx bench/scaling-sim.ts [options]

With no option: the cases of docs/scaling.md (A=3 × W=4 with H=2; A=100 × W=8 with H=100 and H=10,000).
With --agents and --hosts: that case alone (W = 8 unless --workers).

Options (defaults: the code's):
${Object.keys(FLAGS)
  .map((f) => `  --${f} N`)
  .join('\n')}
  --fallback          with --connect-to: a refused host tries the next agent in its rendezvous order
  --before            the lease rule before the share-out (first come: min(asked, --per-host, free)), to compare
  --shared            hypothetical: no lease, every host let in on every agent it connects to
  --help`;

function parseCli(argv: string[]): { cases: CaseSettings[]; seed: number } | undefined {
  const o: Partial<CaseSettings> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') return undefined;
    if (arg === '--shared') {
      o.model = 'shared';
      continue;
    }
    if (arg === '--fallback') {
      o.fallback = true;
      continue;
    }
    if (arg === '--before') {
      o.model = 'before';
      continue;
    }
    const [flag, inline] = arg.replace(/^--/, '').split('=') as [string, string | undefined];
    const key = FLAGS[flag];
    if (!key || !arg.startsWith('--')) throw new Error(`unknown option ${arg} (--help)`);
    const value = Number(inline ?? argv[++i]);
    if (!Number.isFinite(value) || value < 0) throw new Error(`--${flag} needs a number`);
    (o as Record<string, number>)[key] = value;
  }
  const seed = o.seed ?? 1;
  if (o.agents === undefined && o.hosts === undefined) {
    return { cases: defaultCases(seed).map((c) => ({ ...c, ...o })), seed };
  }
  const agents = o.agents ?? 3;
  const hosts = o.hosts ?? 2;
  return { cases: [{ ...DEFAULTS, trials: hosts * agents <= 20_000 ? 40 : 1, ...o, agents, hosts, label: `A=${agents}, H=${hosts}` }], seed };
}

function main(): void {
  let parsed;
  try {
    parsed = parseCli(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  if (!parsed) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  const started = performance.now();
  const reports = parsed.cases.map(runCase);
  const timing = new Map<string, number>();
  for (const r of reports) timing.set(r.settings.label, (timing.get(r.settings.label) ?? 0) + r.ms);

  const first = parsed.cases[0]!;
  const storms: StormRow[] = [];
  const stormStart = performance.now();
  const seen = new Set<number>();
  for (const r of reports) {
    const c = r.settings;
    if (seen.has(c.hosts)) continue;
    seen.add(c.hosts);
    const label = `${n0(c.hosts)} (H of A=${n0(c.agents)}, H=${n0(c.hosts)})`;
    const base = { hosts: c.hosts, initialDelay: c.initialDelay, maxDelay: c.maxDelay, detectMs: 0, detectSpreadMs: 1, windowMs: 100, seed: c.seed };
    const restarted = { ...base, upAtMs: c.restartMs };
    storms.push({
      label,
      situation: `SIGKILLed, back after ${secs(c.restartMs)}`,
      jitter: reconnectStorm({ ...restarted, jitter: true }),
      none: reconnectStorm({ ...restarted, jitter: false }),
      dns: dnsArrivalPeak(r.alloc.hostStart, c.dnsReplaceMs, c.resolveInterval, 100),
    });
    const cut = { ...base, upAtMs: 0 };
    storms.push({ label, situation: 'connections cut, agent up', jitter: reconnectStorm({ ...cut, jitter: true }), none: reconnectStorm({ ...cut, jitter: false }) });
  }
  const stormMs = performance.now() - stormStart;
  const doubtStart = performance.now();
  const doubt = inDoubtTable(parsed.seed, first.callMs, first.rttMs, first.heartbeatTimeout + first.heartbeatInterval / 2);
  const doubtMs = performance.now() - doubtStart;
  const rolloutStart = performance.now();
  const rollout = rolloutRows(parsed.seed);
  const rolloutMs = performance.now() - rolloutStart;

  const print = (s: string) => process.stdout.write(`${s}\n`);
  print(`# Remote workers at scale: simulation (seed ${parsed.seed}; A agents of W workers, H hosts; calls of ${first.callMs} ms at ${pct(first.utilisation)} load, RTT ${first.rttMs} ms)\n`);
  print(formatCases(reports));
  print(`\n### Sizing (a worker serves one host; an agent lets in at most W hosts)\n`);
  const sizes = new Map<string, { agents: number; hosts: number; workers: number }>();
  for (const c of parsed.cases) if (c.model !== 'shared') sizes.set(`${c.agents}/${c.hosts}/${c.workers}`, { agents: c.agents, hosts: c.hosts, workers: c.workers });
  print(formatSizing([...sizes.values()]));
  print(`\n### A rolling update at one agent: 2 hosts hold its workers, busy at the load given; a third connects (mean of 200 runs; RTT 0.5 ms, worker start ${ASSUMPTIONS.workerStartMs} ms, exit ${ASSUMPTIONS.workerExitMs} ms)\n`);
  print(formatRollout(rollout));
  print(`\n### Reconnect storm: every host was connected to the lost agent and reconnects (backoff ${first.initialDelay} ms doubling to ${first.maxDelay} ms)\n`);
  print(formatStorms(storms));
  print(`\n### Calls in doubt when an agent is lost: one host's pool of 8 workers, calls of ${first.callMs} ms\n`);
  print(formatInDoubt(doubt));
  print(`\n${formatAssumptions()}`);
  const times = [...timing].map(([label, ms]) => `${label} ${Math.round(ms)} ms`).join(', ');
  print(`\nTime: ${times}; storms ${Math.round(stormMs)} ms; in-doubt table ${Math.round(doubtMs)} ms; rolling update ${Math.round(rolloutMs)} ms; total ${Math.round(performance.now() - started)} ms.`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
