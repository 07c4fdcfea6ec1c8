/**
 * Which agents a remote pool uses: its endpoints resolved (a DNS name may stand for many agents, and is resolved
 * again on an interval), one connection per agent, and where the next worker is leased: the agent with the most
 * room for this host.
 */
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { RemoteError } from '../errors.js';
import { formatAddress } from './address.js';
import { AgentConnection, type ConnectionEvents } from './connection.js';
import type { ResolvedRemoteOptions } from './options.js';

export interface PlacementHooks {
  /** An agent let this host in: workers may be leased there. */
  capacity(): void;
  /** Give this agent's workers back once their calls are done (it drains, or DNS no longer lists it). */
  release(connection: AgentConnection): void;
  /** The agent changed this host's share: give back what is over it, lease what is under it. */
  regrant(connection: AgentConnection): void;
}

export class Placement {
  readonly #connections = new Map<string, AgentConnection>();
  /** Connections DNS no longer lists: closed once their workers are gone. */
  readonly #leaving = new Set<AgentConnection>();
  readonly #options: ResolvedRemoteOptions;
  readonly #hooks: PlacementHooks;
  readonly #events: ConnectionEvents;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #starting = false;
  #welcomed: (() => void) | undefined;

  constructor(options: ResolvedRemoteOptions, hooks: PlacementHooks) {
    this.#options = options;
    this.#hooks = hooks;
    this.#events = {
      welcomed: () => {
        this.#welcomed?.();
        this.#hooks.capacity();
      },
      lost: (connection) => {
        if (this.#leaving.has(connection)) this.#drop(connection);
      },
      draining: (connection) => this.#hooks.release(connection),
      regrant: (connection) => this.#hooks.regrant(connection),
    };
  }

  get connections(): AgentConnection[] {
    return [...this.#connections.values()];
  }

  /** Resolve and connect; resolves once an agent has let this host in, rejects after `timeout` ms if none did. */
  async start(timeout: number): Promise<void> {
    this.#starting = true;
    try {
      await this.#resolve(true);
      this.#scheduleResolve();
      if (this.connections.some((c) => c.welcome)) return;
      await this.#firstWelcome(timeout);
    } finally {
      // From now on a connection keeps Node alive only while its workers have work.
      this.#starting = false;
      for (const connection of this.#connections.values()) connection.hold(false);
    }
  }

  #firstWelcome(timeout: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#welcomed = undefined;
        reject(this.#failure(timeout));
      }, timeout);
      this.#welcomed = () => {
        clearTimeout(timer);
        this.#welcomed = undefined;
        resolve();
      };
    });
  }

  /** Resolve again after resolveInterval ± 20 %: a fleet of hosts started together does not query DNS in step. */
  #scheduleResolve(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      void this.#resolve(false).finally(() => this.#scheduleResolve());
    }, this.#options.resolveInterval * (0.8 + 0.4 * Math.random()));
    this.#timer.unref();
  }

  /** Why no agent could be used: each endpoint's last error. */
  #failure(timeout: number): RemoteError {
    const errors = this.connections.map((c) => c.lastError).filter((e): e is RemoteError => e !== undefined);
    const first = errors[0];
    const names = this.#options.endpoints.map(formatAddress).join(', ');
    const detail = errors.length > 0 ? `: ${errors.map((e) => e.message).join('; ')}` : '';
    return new RemoteError(first?.reason ?? 'unreachable', first?.endpoint ?? names, `No agent of ${names} let this host in within ${timeout} ms${detail}`, { cause: first });
  }

  async #resolve(first: boolean): Promise<void> {
    const seen = new Set<string>();
    let complete = true;
    await Promise.all(
      this.#options.endpoints.map(async (endpoint) => {
        let addresses: string[];
        if (net.isIP(endpoint.host)) addresses = [endpoint.host];
        else {
          try {
            const found = await lookup(endpoint.host, { all: true });
            // A dual-stack name gives each agent twice (A and AAAA): one family, IPv4 when there is one.
            const v4 = found.filter((a) => a.family === 4);
            addresses = (v4.length > 0 ? v4 : found).map((a) => a.address);
          } catch (error) {
            complete = false; // keep what we have: a DNS hiccup must not drop live agents
            if (first) this.#add(endpoint.host, endpoint.port, undefined, seen);
            return;
          }
        }
        const servername = net.isIP(endpoint.host) ? undefined : endpoint.host;
        for (const address of addresses) this.#add(address, endpoint.port, servername, seen);
      }),
    );
    if (this.#closed || !complete) return;
    for (const [key, connection] of this.#connections) {
      if (seen.has(key) || this.#leaving.has(connection)) continue;
      this.#leaving.add(connection);
      connection.draining = true;
      if (connection.leased === 0) this.#drop(connection);
      else this.#hooks.release(connection);
    }
    for (const connection of this.#leaving) if (connection.leased === 0) this.#drop(connection);
  }

  #add(host: string, port: number, servername: string | undefined, seen: Set<string>): void {
    const key = formatAddress({ host, port });
    seen.add(key);
    if (this.#closed) return;
    const known = this.#connections.get(key);
    if (known) {
      if (this.#leaving.delete(known)) known.draining = known.drainedByAgent; // listed again
      return;
    }
    const connection = new AgentConnection({ host, port }, servername, this.#options, this.#events);
    this.#connections.set(key, connection);
    if (this.#starting) connection.hold(true);
    connection.connect();
  }

  #drop(connection: AgentConnection): void {
    this.#leaving.delete(connection);
    this.#connections.delete(connection.endpoint);
    connection.close();
  }

  /**
   * The agent for a new worker: of those that let this host in and do not drain, the one with the most room
   * (leases left). `near`: a worker being replaced: its agent may go one above its grant meanwhile.
   */
  choose(near?: AgentConnection): AgentConnection | undefined {
    let best: AgentConnection | undefined;
    let bestRoom = 0;
    for (const connection of this.#connections.values()) {
      if (!connection.open) continue;
      const room = connection.welcome!.grant - connection.leased;
      if (room > bestRoom) {
        best = connection;
        bestRoom = room;
      }
    }
    if (best) return best;
    if (near?.open && near.leased < near.welcome!.grant + 1) return near;
    return undefined;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const connection of this.#connections.values()) connection.close();
  }
}
