/**
 * The agent (`pyworkers serve`): runs worker processes on its machine and serves them over TLS to pyworkers
 * hosts. A host leases workers (each runs for that host alone: its exec() code, contexts and handles stay its
 * own) and speaks the worker protocol to them through the connection; the agent moves the bytes, enforces its
 * memory cap on its processes, reports their memory, and drains on SIGTERM.
 */
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import { resolvePython, type PythonInfo } from '../python.js';
import type { Address } from './address.js';
import { resolveAgentOptions, type AgentOptions, type ResolvedAgentOptions } from './agent-options.js';
import { Session } from './session.js';
import { Msg, REMOTE_PROTOCOL } from './wire.js';

export type { AgentOptions, AgentPoolOptions } from './agent-options.js';

/** The agent reads its workers' memory this often (ms): the cap, stopped workers, the figures hosts get. */
const WATCH_INTERVAL = 100;
/** Connections let through the TLS handshake and still waiting for their HELLO, at most. */
const MAX_UNAUTHENTICATED = 64;
/** What an ended session's workers had started is kept this long (ms) for its host's reconnection. */
const VERDICT_TTL = 60_000;
/** How long (ms) the share of a host whose connection dropped is kept for its return before the others get it. */
const SHARE_OUT_DELAY = 2000;
export interface DrainOutcome {
  /** Whether every worker was given back within the grace. */
  drained: boolean;
  durationMs: number;
}

/** A running agent. Start one with {@link startAgent} (or `pyworkers serve`). */
export class Agent {
  readonly options: ResolvedAgentOptions;
  readonly python: PythonInfo;
  readonly #server: net.Server;
  #health: http.Server | undefined;
  readonly #sessions = new Set<Session>();
  /** When each host (its client id) first came: the order of the share-out. Forgotten VERDICT_TTL after it left. */
  readonly #firstSeen = new Map<string, number>();
  /** Hosts whose connection ended, and when. */
  readonly #gone = new Map<string, number>();
  #shareOutTimer: NodeJS.Timeout | undefined;
  /** Workers of ended sessions not yet exited. */
  #dying = 0;
  #draining: Promise<DrainOutcome> | undefined;
  #drainWaiters: Array<() => void> = [];
  readonly #watchTimer: NodeJS.Timeout;
  readonly #hostname = os.hostname();
  /** What the workers of ended sessions had started, by the host's client id, until it reconnects (or VERDICT_TTL). */
  readonly #verdicts = new Map<string, { channels: Map<number, number | null>; pending: Array<Promise<void>>; expires: number }>();

  /**
   * @internal The environment of its workers: its own, without its token (a host's code must not read it), with
   * its memory cap (applied by the worker whatever its host's INIT says).
   */
  readonly workerEnv: NodeJS.ProcessEnv;

  /** @internal Use {@link startAgent}. */
  constructor(options: ResolvedAgentOptions, python: PythonInfo) {
    this.options = options;
    this.python = python;
    const { PYWORKERS_TOKEN: _token, ...env } = options.pool.env;
    this.workerEnv = { ...env, ...(options.pool.maxMemory ? { PYWORKERS_MEMORY_LIMIT: String(options.pool.maxMemory) } : {}) };
    const accept = (socket: net.Socket) => {
      // At most MAX_UNAUTHENTICATED connections waiting for their HELLO: a flood of idle peers cannot take the
      // agent's file descriptors (each is dropped after helloTimeout anyway).
      if (this.#draining || [...this.#sessions].filter((s) => !s.authed).length >= MAX_UNAUTHENTICATED) {
        socket.destroy();
        return;
      }
      this.#sessions.add(new Session(this, socket));
    };
    const tlsOptions = options.tls;
    this.#server = tlsOptions
      ? tls.createServer(
          {
            cert: tlsOptions.cert,
            key: tlsOptions.key,
            ...(tlsOptions.ca ? { ca: tlsOptions.ca, requestCert: true, rejectUnauthorized: true } : {}),
            minVersion: 'TLSv1.2',
            // The handshake counts against the HELLO's time too (Node's default would let it hang 120 s).
            handshakeTimeout: options.helloTimeout,
          },
          accept,
        )
      : net.createServer(accept);
    // A TLS handshake that fails (no client certificate, a plain-TCP peer) never reaches `accept`.
    this.#server.on('tlsClientError', () => {});
    // A peer that never even starts its handshake is not timed by Node: give handshake and HELLO together twice
    // the HELLO's time, then drop the connection unless it became a host's.
    this.#server.on('connection', (raw: net.Socket) => {
      const peer = `${raw.remoteAddress}:${raw.remotePort}`;
      const timer = setTimeout(() => {
        if (![...this.#sessions].some((s) => s.authed && s.peer === peer)) raw.destroy();
      }, 2 * options.helloTimeout);
      timer.unref();
      raw.once('close', () => clearTimeout(timer));
    });
    this.#watchTimer = setInterval(() => this.#watch(), WATCH_INTERVAL);
    this.#watchTimer.unref();
  }

  /** @internal */
  async listen(): Promise<void> {
    await listenOn(this.#server, this.options.listen);
    const health = this.options.health;
    if (health) {
      this.#health = http.createServer((req, res) => {
        const path = (req.url ?? '/').split('?')[0];
        if (path === '/healthz') res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        else if (path === '/readyz') res.writeHead(this.ready ? 200 : 503, { 'content-type': 'text/plain' }).end(this.ready ? 'ready\n' : 'draining\n');
        else res.writeHead(404).end();
      });
      await listenOn(this.#health, health);
    }
  }

  /** Where it listens (the real port when `listen` asked for port 0). */
  get address(): Address {
    const a = this.#server.address() as net.AddressInfo;
    return { host: a.address, port: a.port };
  }

  /** Where its probes answer, with the `health` option. */
  get healthAddress(): Address | undefined {
    const a = this.#health?.address() as net.AddressInfo | undefined;
    return a ? { host: a.address, port: a.port } : undefined;
  }

  /** Takes hosts: false once draining. */
  get ready(): boolean {
    return !this.#draining && this.#server.listening;
  }

  get draining(): boolean {
    return this.#draining !== undefined;
  }

  /** Hosts connected, and the workers they lease. */
  stats(): { hosts: number; workers: number; leased: number } {
    let workers = 0;
    let leased = 0;
    for (const session of this.#sessions) {
      if (!session.authed) continue;
      workers += session.workers.size;
      leased += session.grant;
    }
    return { hosts: [...this.#sessions].filter((s) => s.authed).length, workers, leased };
  }

  /** Worker processes running (or starting), for every host. */
  running(): number {
    let n = 0;
    for (const session of this.#sessions) n += session.workers.size;
    return n + this.#dying;
  }

  /**
   * Share the workers out among the hosts let in: one each in turn (in the order they came), up to what each
   * asked for and `perHost`, until none is left. Hosts whose share changed are told (GRANT): a host over its
   * share gives workers back once their calls are done, one under it leases more.
   */
  shareOut(): void {
    clearTimeout(this.#shareOutTimer);
    this.#shareOutTimer = undefined;
    // In the order the hosts first came (a host that reconnects keeps its place).
    const since = (s: Session) => (s.client ? this.#firstSeen.get(s.client) : undefined) ?? Infinity;
    const hosts = [...this.#sessions].filter((s) => s.authed && !s.closed).sort((a, b) => since(a) - since(b));
    const shares = new Map<Session, number>(hosts.map((h) => [h, 0]));
    let left = this.options.pool.workers;
    for (let more = true; left > 0 && more; ) {
      more = false;
      for (const host of hosts) {
        if (left === 0) break;
        const share = shares.get(host)!;
        if (share < Math.min(host.wanted, this.options.perHost)) {
          shares.set(host, share + 1);
          left--;
          more = true;
        }
      }
    }
    for (const [host, share] of shares) {
      if (host.grant === share) continue;
      host.grant = share;
      if (host.welcomed) host.writer.send(Msg.GRANT, 0, { grant: share }); // one being let in learns it in its WELCOME
    }
  }

  /** @internal What a host learns when it is let in. */
  welcome(session: Session): Record<string, unknown> {
    const pool = this.options.pool;
    return {
      protocol: REMOTE_PROTOCOL,
      hostname: this.#hostname,
      grant: session.grant,
      python: { version: this.python.version, executable: this.python.executable },
      maxMemory: pool.maxMemory ?? null,
      recycle: { maxRss: pool.recycle.maxRss ?? null, maxCalls: pool.recycle.maxCalls ?? null, idleTimeout: pool.recycle.idleTimeout ?? null },
      setup: pool.setup,
      pythonPath: pool.pythonPath,
    };
  }

  /** @internal The heartbeat's answer: each worker's memory. */
  pong(session: Session): Record<string, unknown> {
    const workers: Record<number, [number, number, number, number]> = {};
    for (const [channel, worker] of session.workers) {
      const m = worker.memory; // the watchdog's reading, at most WATCH_INTERVAL old
      if (m) workers[channel] = [m.rss, m.peakRss, m.own, m.stopped ? 1 : 0];
    }
    return { workers };
  }

  /**
   * @internal A host reconnected: end its earlier sessions (a partition it gave up on leaves one here), wait for
   * their workers to exit, and answer what each had started (the last request id, by channel): the host runs
   * elsewhere what had not started, and fails only the rest.
   */
  async resume(session: Session): Promise<Record<number, number | null>> {
    for (const other of [...this.#sessions]) {
      if (other !== session && other.authed && other.client === session.client) other.close('replaced by a new connection of its host');
    }
    const entry = this.#verdicts.get(session.client!);
    if (!entry) return {};
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(entry.pending), new Promise((resolve) => (timer = setTimeout(resolve, 2000)))]);
    clearTimeout(timer);
    this.#verdicts.delete(session.client!);
    return Object.fromEntries(entry.channels);
  }

  /** @internal A host said hello: the share-out keeps the order in which hosts first came. */
  seen(client: string): void {
    if (!this.#firstSeen.has(client)) this.#firstSeen.set(client, Date.now());
    this.#gone.delete(client);
  }

  /** @internal A host's session ended with workers: their verdicts will follow. */
  expectVerdicts(client: string, exits: Array<Promise<void>>): void {
    const entry = this.#verdicts.get(client) ?? { channels: new Map<number, number | null>(), pending: [] as Array<Promise<void>>, expires: 0 };
    entry.pending.push(...exits);
    entry.expires = Date.now() + VERDICT_TTL;
    this.#verdicts.set(client, entry);
  }

  /** @internal */
  verdict(client: string, channel: number, lastStarted: number | null): void {
    this.#verdicts.get(client)?.channels.set(channel, lastStarted);
  }

  /** @internal */
  ended(session: Session): void {
    this.#sessions.delete(session);
    // Its workers are being killed: they count until they have exited.
    for (const worker of session.workers.values()) {
      this.#dying++;
      void worker.exited.then(() => {
        this.#dying--;
        this.exited();
      });
    }
    if (session.authed) {
      // A host whose connection dropped is usually back within moments: do not hand its share to the others (who
      // would start workers and give them back) unless it stays away.
      if (session.client && !this.#draining) {
        this.#gone.set(session.client, Date.now());
        this.#shareOutTimer ??= setTimeout(() => this.shareOut(), SHARE_OUT_DELAY);
        this.#shareOutTimer.unref();
      } else this.shareOut();
    }
    this.exited();
  }

  /** @internal A worker exited or a host left: there may be room for hosts that wait for it; a drain may be complete. */
  exited(): void {
    if (this.running() < this.options.pool.workers + 1) {
      for (const session of this.#sessions) {
        if (!session.waitingForRoom || session.closed) continue;
        session.waitingForRoom = false;
        session.writer.send(Msg.GRANT, 0, { grant: session.grant });
      }
    }
    if (this.#drainWaiters.length === 0 || this.stats().workers > 0) return;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const fn of waiters) fn();
  }

  /**
   * Stop taking hosts and workers; tell the hosts, which give their workers back once their calls are done;
   * after `timeout` ms kill what is left. Then close. Resolves to whether everything ended in time.
   */
  drain(timeout = this.options.drainTimeout): Promise<DrainOutcome> {
    if (this.#draining) return this.#draining;
    const started = performance.now();
    this.#draining = (async () => {
      this.#server.close();
      for (const session of this.#sessions) {
        if (session.authed) session.writer.send(Msg.DRAIN, 0, { timeout });
      }
      let timer: NodeJS.Timeout | undefined;
      const given = new Promise<boolean>((resolve) => {
        this.#drainWaiters.push(() => resolve(true));
        this.exited();
      });
      const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeout)));
      const drained = await Promise.race([given, late]);
      clearTimeout(timer);
      await this.#shutDown();
      return { drained, durationMs: performance.now() - started };
    })();
    return this.#draining;
  }

  /** Kill every worker, drop every host, close. */
  async close(): Promise<void> {
    this.#draining ??= Promise.resolve({ drained: false, durationMs: 0 });
    this.#server.close();
    await this.#shutDown();
  }

  async #shutDown(): Promise<void> {
    clearInterval(this.#watchTimer);
    const exits: Array<Promise<void>> = [];
    for (const session of [...this.#sessions]) {
      for (const worker of session.workers.values()) {
        exits.push(new Promise((resolve) => worker.link.data.once('close', () => resolve())));
      }
      session.socket.end();
      session.close('agent closing');
    }
    await Promise.race([Promise.all(exits), new Promise((resolve) => setTimeout(resolve, 2000))]);
    await new Promise<void>((resolve) => (this.#health ? this.#health.close(() => resolve()) : resolve()));
    this.#health?.closeAllConnections();
  }

  /** The cap: a worker whose own memory passes maxMemory is killed; one stopped for livenessTimeout too. */
  #watch(): void {
    const { maxMemory, livenessTimeout } = this.options.pool;
    const now = Date.now();
    for (const [client, entry] of this.#verdicts) if (entry.expires < now) this.#verdicts.delete(client);
    for (const [client, at] of this.#gone) {
      if (now - at < VERDICT_TTL) continue;
      this.#gone.delete(client);
      this.#firstSeen.delete(client);
    }
    for (const session of this.#sessions) {
      if (now - session.lastHeard > session.silentAfter && session.authed) {
        session.close('host silent');
        continue;
      }
      for (const worker of session.workers.values()) {
        const m = (worker.memory = worker.link.rss());
        if (!m) continue;
        if (m.stopped) {
          worker.stoppedSince ??= now;
          if (now - worker.stoppedSince >= livenessTimeout) {
            worker.reason ??= `stopped for ${now - worker.stoppedSince} ms (SIGSTOP?)`;
            worker.link.kill();
          }
          continue;
        }
        worker.stoppedSince = undefined;
        if (maxMemory !== undefined && m.own > maxMemory) {
          worker.reason ??= 'maxMemory';
          worker.link.kill();
        }
      }
    }
  }
}

function listenOn(server: net.Server, address: Address): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port === 0 ? 0 : address.port, address.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Start an agent: resolves once it listens. */
export async function startAgent(options: AgentOptions): Promise<Agent> {
  const resolved = resolveAgentOptions(options);
  const python = await resolvePython(resolved.pool);
  const agent = new Agent(resolved, python);
  await agent.listen();
  process.once('exit', () => void agent.close());
  return agent;
}
