/**
 * The host's side of one agent: one TLS connection carrying every worker the host leases there (RemoteLinks),
 * heartbeats that tell a silent agent within `heartbeatTimeout`, and reconnection with backoff and full jitter.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import net from 'node:net';
import tls from 'node:tls';
import { RemoteError, type RemoteReason } from '../errors.js';
import type { LinkEvents } from '../worker/link.js';
import { after } from '../util/timers.js';
import { formatAddress, type Address } from './address.js';
import { MAGIC, MAX_MESSAGE, MessageReader, MessageWriter, Msg, parseJson, REMOTE_PROTOCOL, WireError } from './wire.js';
import type { ResolvedRemoteOptions } from './options.js';
import { RemoteLink } from './remote-link.js';

/** What an agent says when it lets a host in. */
export interface Welcome {
  hostname: string;
  /** After a reconnection: what each worker of this host's previous connection had started (last request id). */
  previous?: Record<string, number | null>;
  grant: number;
  python: { version: string; executable: string };
  maxMemory: number | null;
  recycle: { maxRss: number | null; maxCalls: number | null; idleTimeout: number | null };
  setup: string[];
  pythonPath: string[];
}

export interface ConnectionEvents {
  /** Let in (again): its workers may be leased. */
  welcomed(connection: AgentConnection): void;
  /** The connection ended; its links have exited. */
  lost(connection: AgentConnection, error: RemoteError): void;
  /** The agent drains: give its workers back once their calls are done. */
  draining(connection: AgentConnection): void;
  /** The agent shared its workers out again (or has room again): hold `welcome.grant` workers there. */
  regrant(connection: AgentConnection): void;
}

/**
 * How long (ms, at most heartbeatTimeout) the workers of a lost connection wait for the agent's word on a
 * reconnection (what each had started) before every request sent to them is taken as possibly started.
 */
const VERDICT_WAIT = 2000;

const REFUSALS: Record<string, RemoteReason> = {
  ERR_REMOTE_AUTH: 'auth',
  ERR_REMOTE_VERSION: 'version',
  ERR_REMOTE_FULL: 'full',
  ERR_REMOTE_DRAINING: 'draining',
};

export class AgentConnection {
  /** The address connected to, `'ip:port'`. */
  readonly endpoint: string;
  welcome: Welcome | undefined;
  /** Takes no new lease: the agent drains, or DNS no longer lists it. */
  draining = false;
  /** The agent itself said it drains (DNS listing it again does not undo that). */
  drainedByAgent = false;
  /** Workers that failed to start here in a row (see Fleet#benchAgent). */
  startFailures = 0;
  /** Nothing is leased here before this time (ms since the epoch): its workers kept failing to start. */
  failingUntil = 0;
  lastStartError: Error | undefined;
  /** The agent had no room for a worker: lease nothing more there until it says it has (GRANT). */
  waitingForRoom = false;
  /** Why the last attempt failed, if it did. */
  lastError: RemoteError | undefined;
  /** Connections made and let in. */
  connects = 0;
  /** Names this host to the agent across reconnections: a session of ours it still holds is a stale one. */
  readonly #client = randomUUID();
  readonly #address: Address;
  readonly #servername: string | undefined;
  readonly #options: ResolvedRemoteOptions;
  readonly #events: ConnectionEvents;
  readonly #links = new Map<number, RemoteLink>();
  /** Links of a lost connection, waiting for the agent's word on what their workers had started. */
  readonly #orphans = new Map<number, RemoteLink>();
  #verdictTimer: NodeJS.Timeout | undefined;
  #socket: net.Socket | undefined;
  #writer: MessageWriter | undefined;
  #nextChannel = 1;
  #attempt = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #lastHeard = 0;
  #closed = false;
  /** Whether the socket keeps Node alive: while a link wants it, or while the pool waits for its first agent. */
  #referenced = false;
  #holding = false;

  constructor(address: Address, servername: string | undefined, options: ResolvedRemoteOptions, events: ConnectionEvents) {
    this.#address = address;
    this.endpoint = formatAddress(address);
    this.#servername = servername;
    this.#options = options;
    this.#events = events;
  }

  /** Let in and not draining: new workers may be leased here. */
  get open(): boolean {
    return this.welcome !== undefined && !this.draining && !this.#closed && !this.waitingForRoom && Date.now() >= this.failingUntil;
  }

  /** Workers leased here and not exited. */
  get leased(): number {
    return this.#links.size;
  }

  /** The agent's machine. */
  get hostname(): string {
    return this.welcome?.hostname ?? this.#address.host;
  }

  connect(): void {
    if (this.#closed || this.#socket) return;
    const { host, port } = this.#address;
    const o = this.#options;
    const socket = o.insecure
      ? net.connect({ host, port })
      : tls.connect({ host, port, servername: this.#servername, ca: o.ca, cert: o.cert, key: o.key, minVersion: 'TLSv1.2' });
    this.#socket = socket;
    socket.setNoDelay(true);
    if (!this.#referenced) socket.unref();
    const writer = new MessageWriter(socket);
    this.#writer = writer;
    let failure: RemoteError | undefined;
    const timer = after(o.connectTimeout, () => {
      failure = new RemoteError('unreachable', this.endpoint, `agent ${this.endpoint} did not answer within ${o.connectTimeout} ms`);
      socket.destroy();
    });
    const reader = new MessageReader((type, channel, payload) => this.#onMessage(type, channel, payload), () => MAX_MESSAGE);
    socket.once(o.insecure ? 'connect' : 'secureConnect', () => {
      writer.send(Msg.HELLO, 0, {
        magic: MAGIC,
        protocol: REMOTE_PROTOCOL,
        token: o.token,
        workers: o.workersPerAgent,
        client: this.#client,
        heartbeatInterval: o.heartbeatInterval,
        host: os.hostname(),
        pid: process.pid,
      });
    });
    socket.on('data', (chunk: Buffer) => {
      this.#lastHeard = Date.now();
      try {
        reader.push(chunk);
        if (this.welcome) clearTimeout(timer); // let in: the attempt is over
      } catch (error) {
        if (!(error instanceof RemoteError || error instanceof WireError)) {
          // Not the agent's fault (a listener of the pool's events threw): as a local worker's would, it surfaces.
          queueMicrotask(() => {
            throw error;
          });
          return;
        }
        failure = error instanceof RemoteError ? error : new RemoteError('protocol', this.endpoint, `agent ${this.endpoint} sent what this host cannot read: ${error.message}`);
        socket.destroy();
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      const tlsFailure = !o.insecure && (error.code?.startsWith('ERR_SSL') || error.code?.startsWith('ERR_TLS') || /certificate|self.signed|SSL|alert/i.test(error.message));
      failure ??= new RemoteError(tlsFailure ? 'tls' : 'unreachable', this.endpoint, `agent ${this.endpoint}: ${error.message}`, { cause: error });
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (this.#socket !== socket) return;
      this.#onLost(failure ?? new RemoteError('unreachable', this.endpoint, `the connection to agent ${this.endpoint} was closed`));
    });
  }

  #onMessage(type: number, channel: number, payload: Buffer): void {
    if (type === Msg.DATA) {
      this.#links.get(channel)?.data.push(payload);
      return;
    }
    if (type === Msg.CONTROL) {
      this.#links.get(channel)?.control.push(payload);
      return;
    }
    const link = channel === 0 ? undefined : this.#links.get(channel);
    switch (type) {
      case Msg.WELCOME:
        this.#onWelcome(parseJson(payload) as unknown as Welcome);
        return;
      case Msg.REFUSED: {
        const refusal = parseJson(payload);
        const reason = REFUSALS[String(refusal.code)] ?? 'protocol';
        throw new RemoteError(reason, this.endpoint, `agent ${this.endpoint} refused this host: ${String(refusal.message)}`);
      }
      case Msg.PONG: {
        const pong = parseJson(payload) as { workers: Record<string, [number, number, number, number]> };
        for (const [key, m] of Object.entries(pong.workers ?? {})) this.#links.get(Number(key))?.measured(m);
        return;
      }
      case Msg.DRAIN:
        if (!this.draining) {
          this.draining = this.drainedByAgent = true;
          this.#events.draining(this);
        }
        return;
      case Msg.OPENED: {
        const answer = parseJson(payload);
        if (answer.room === true) this.waitingForRoom = true;
        if (answer.draining === true && !this.draining) {
          this.draining = this.drainedByAgent = true;
          this.#events.draining(this);
        }
        if (typeof answer.error === 'string') this.#links.delete(channel); // no worker there: not leased
        link?.opened(answer);
        this.#updateRef();
        return;
      }
      case Msg.GRANT: {
        const grant = parseJson(payload).grant;
        if (!this.welcome || typeof grant !== 'number') throw new WireError('a GRANT without its share');
        this.welcome.grant = grant;
        this.waitingForRoom = false;
        this.#events.regrant(this);
        return;
      }
      case Msg.STDOUT:
      case Msg.STDERR:
        link?.events.output(type === Msg.STDOUT ? 'stdout' : 'stderr', payload.toString('utf8'));
        return;
      case Msg.EOF:
        if (link) (parseJson(payload).pipe === 'control' ? link.control : link.data).push(null);
        return;
      case Msg.EXIT:
        if (link) {
          this.#links.delete(channel);
          link.exited(parseJson(payload));
          this.#updateRef();
        }
        return;
      default:
        throw new WireError(`unknown message type ${type}`);
    }
  }

  #onWelcome(welcome: Welcome): void {
    if (typeof welcome.grant !== 'number' || typeof welcome.hostname !== 'string') throw new WireError('a WELCOME without its fields');
    this.#settleOrphans(welcome.previous ?? {});
    this.welcome = welcome;
    this.draining = this.drainedByAgent = false;
    this.waitingForRoom = false;
    this.lastError = undefined;
    this.#attempt = 0;
    this.connects++;
    this.#lastHeard = Date.now();
    const interval = this.#options.heartbeatInterval;
    let lastTick = Date.now();
    this.#heartbeat = setInterval(() => {
      const now = Date.now();
      // A tick this late means this process's event loop stalled: the agent's answers may be waiting unread in
      // the socket. Judge silence on the next tick, not on this one.
      const late = now - lastTick > 2 * interval;
      lastTick = now;
      const silent = now - this.#lastHeard;
      if (!late && silent > this.#options.heartbeatTimeout) {
        this.#socket?.destroy(new RemoteError('unreachable', this.endpoint, `agent ${this.endpoint} was silent for ${silent} ms (heartbeatTimeout ${this.#options.heartbeatTimeout} ms)`));
        return;
      }
      this.#writer?.send(Msg.PING, 0);
    }, interval);
    this.#heartbeat.unref();
    this.#events.welcomed(this);
  }

  #onLost(error: RemoteError): void {
    clearInterval(this.#heartbeat);
    this.#socket = undefined;
    this.#writer = undefined;
    this.welcome = undefined;
    this.draining = false;
    const cause = (error as Error & { cause?: unknown }).cause;
    const lost = cause instanceof RemoteError ? cause : error;
    this.lastError = lost;
    const links = [...this.#links.entries()];
    this.#links.clear();
    const why = `the connection to agent ${this.endpoint} was lost: ${lost.message}`;
    if (this.#closed) {
      for (const [, link] of links) link.drop(why);
    } else {
      // The agent may be alive (a cut, a partition): on reconnection it says what each worker had started, and
      // what had not can run elsewhere. Meanwhile these workers take nothing new.
      for (const [channel, link] of links) {
        link.suspend(why);
        this.#orphans.set(channel, link);
      }
      if (links.length > 0 && !this.#verdictTimer) {
        // Ref'd: calls wait on it (at most 2 s).
        this.#verdictTimer = setTimeout(() => this.#settleOrphans(undefined), Math.min(VERDICT_WAIT, this.#options.heartbeatTimeout));
      }
    }
    this.#events.lost(this, lost);
    if (this.#closed) return;
    // Full jitter: a fleet of hosts that lost one agent does not come back in step.
    const ceiling = Math.min(this.#options.reconnect.maxDelay, this.#options.reconnect.initialDelay * 2 ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 30);
    this.#retryTimer = setTimeout(() => this.connect(), Math.random() * ceiling);
    this.#retryTimer.unref();
  }

  /** End the links of a lost connection: with what the agent said each had started, else as possibly started. */
  #settleOrphans(previous: Record<string, number | null> | undefined): void {
    clearTimeout(this.#verdictTimer);
    this.#verdictTimer = undefined;
    const orphans = [...this.#orphans.entries()];
    this.#orphans.clear();
    for (const [channel, link] of orphans) {
      const verdict = previous?.[channel];
      // null: the agent could not tell (no progress file); answers may have been lost with the connection, so
      // unlike an exit reported in order ('head'), every request sent may have started.
      link.drop(link.suspended ?? 'the connection was lost', typeof verdict === 'number' ? verdict : 'all');
    }
  }

  /** Lease a worker: its process starts on the agent; the link speaks to it through this connection. */
  openLink(events: LinkEvents): RemoteLink {
    const channel = this.#nextChannel;
    this.#nextChannel = this.#nextChannel >= 0xfffffff0 ? 1 : this.#nextChannel + 1;
    const link = new RemoteLink(this, channel, events);
    if (!this.#writer || !this.welcome) {
      queueMicrotask(() => link.drop(`agent ${this.endpoint} is not connected`));
      return link;
    }
    this.#links.set(channel, link);
    this.#writer.send(Msg.OPEN, channel);
    this.#updateRef();
    return link;
  }

  /** @internal Bytes for a worker's pipe (none: a message without payload, e.g. END). */
  write(type: number, channel: number, chunks?: readonly Uint8Array[]): void {
    if (!this.#writer || !this.#links.has(channel)) return;
    if (chunks) this.#writer.writeAll(type, channel, chunks);
    else this.#writer.send(type, channel);
  }

  /** @internal Keep Node alive while a link wants it. */
  updateRef(): void {
    this.#updateRef();
  }

  /** Keep Node alive for this connection (while createPool waits for it), or stop. */
  hold(on: boolean): void {
    this.#holding = on;
    this.#updateRef();
  }

  #updateRef(): void {
    let wanted = this.#holding;
    for (const link of this.#links.values()) if (link.referenced) wanted = true;
    if (wanted === this.#referenced) return;
    this.#referenced = wanted;
    if (wanted) this.#socket?.ref();
    else this.#socket?.unref();
  }

  /** Stop: no reconnection; the links are lost. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#socket?.destroy();
    this.#settleOrphans(undefined);
  }

  get closed(): boolean {
    return this.#closed;
  }
}
