/**
 * One host's connection to the agent: its HELLO (checked before anything else is read), the workers it leases
 * (one process each, on a channel of the connection), and the bytes relayed between them.
 */
import type net from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { ProcessLink, type ProcessMemory } from '../worker/link.js';
import { after } from '../util/timers.js';
import type { Agent } from './agent.js';
import { digest } from './agent-options.js';
import { MAGIC, MAX_HELLO, MAX_MESSAGE, MessageReader, MessageWriter, Msg, parseJson, REMOTE_PROTOCOL, WireError } from './wire.js';


/** One worker process, leased to one host on one channel of its connection. */
interface LeasedWorker {
  link: ProcessLink;
  reason: string | undefined;
  stoppedSince: number | undefined;
  /** The watchdog's last reading of its memory (sent to the host with each heartbeat answer). */
  memory: ProcessMemory | undefined;
  /** Resolves once its process has exited. */
  exited: Promise<void>;
  markExited: () => void;
}

let nextWorkerId = 1;

/** A host's connection. */
export class Session {
  authed = false;
  /** How many workers this host may hold: its share (see Agent#shareOut). */
  grant = 0;
  /** How many it asked for. */
  wanted = Infinity;
  /** It was told there was no room for a worker: tell it when there is. */
  waitingForRoom = false;
  /** It was let in (sent its WELCOME): a change of its share is told with a GRANT. */
  welcomed = false;
  readonly workers = new Map<number, LeasedWorker>();
  lastHeard = Date.now();
  /** The host's id for this connection (kept across its reconnections). */
  client: string | undefined;
  /** Dropped after this long without a word from the host: the agent's sessionTimeout, or longer for a host that pings rarely. */
  silentAfter: number;
  readonly writer: MessageWriter;
  readonly peer: string;
  #closed = false;
  #helloSeen = false;
  readonly #helloTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly agent: Agent,
    readonly socket: net.Socket,
  ) {
    this.peer = `${socket.remoteAddress}:${socket.remotePort}`;
    this.silentAfter = agent.options.sessionTimeout;
    this.writer = new MessageWriter(socket);
    socket.setNoDelay(true);
    const reader = new MessageReader(
      (type, channel, payload) => this.#onMessage(type, channel, payload),
      () => (this.authed ? MAX_MESSAGE : MAX_HELLO),
    );
    socket.on('data', (chunk: Buffer) => {
      this.lastHeard = Date.now();
      try {
        reader.push(chunk);
      } catch (error) {
        this.close(error instanceof WireError ? `refused: ${error.message}` : String(error));
      }
    });
    socket.on('error', () => this.close('connection error'));
    socket.on('close', () => this.close('connection closed'));
    this.#helloTimer = after(agent.options.helloTimeout, () => {
      if (!this.authed) this.close('no HELLO in time');
    });
  }

  /** Refuse with a reason the host can show, then end the connection. */
  refuse(code: string, message: string): void {
    this.writer.send(Msg.REFUSED, 0, { code, message });
    this.socket.end(); // the refusal is flushed before the connection ends; destroyed a moment later at the latest
    after(1000, () => this.socket.destroy());
    this.close(message, false);
  }

  close(_why: string, destroy = true): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#helloTimer);
    // What each worker had started is kept for the host's reconnection (see Agent.resume).
    if (this.client && this.workers.size > 0) this.agent.expectVerdicts(this.client, [...this.workers.values()].map((w) => w.exited));
    for (const worker of this.workers.values()) worker.link.kill();
    if (destroy) this.socket.destroy();
    this.agent.ended(this);
  }

  get closed(): boolean {
    return this.#closed;
  }

  #onMessage(type: number, channel: number, payload: Buffer): void {
    if (this.#closed) return;
    if (!this.authed) {
      if (type !== Msg.HELLO || this.#helloSeen) throw new WireError(`message type ${type} before the HELLO was answered`);
      this.#helloSeen = true;
      this.#hello(parseJson(payload)).catch((error: unknown) => this.close(`refused: ${(error as Error).message}`));
      return;
    }
    switch (type) {
      case Msg.DATA:
        this.workers.get(channel)?.link.data.write(payload);
        return;
      case Msg.CONTROL:
        this.workers.get(channel)?.link.control.write(payload);
        return;
      case Msg.PING:
        this.writer.send(Msg.PONG, 0, this.agent.pong(this));
        return;
      case Msg.OPEN:
        this.#open(channel);
        return;
      case Msg.KILL: {
        const worker = this.workers.get(channel);
        if (worker) {
          worker.reason ??= 'killed by its host';
          worker.link.kill();
        }
        return;
      }
      case Msg.END: {
        const worker = this.workers.get(channel);
        worker?.link.data.end();
        worker?.link.control.end();
        return;
      }
      default:
        throw new WireError(`unknown message type ${type}`);
    }
  }

  async #hello(hello: Record<string, unknown>): Promise<void> {
    clearTimeout(this.#helloTimer);
    if (hello.magic !== MAGIC) throw new WireError('not a pyworkers host');
    if (hello.protocol !== REMOTE_PROTOCOL) {
      this.refuse('ERR_REMOTE_VERSION', `this agent speaks remote protocol ${REMOTE_PROTOCOL}, the host ${JSON.stringify(hello.protocol)}: run the same pyworkers version on both`);
      return;
    }
    const expected = this.agent.options.token;
    if (expected) {
      const given = typeof hello.token === 'string' ? digest(hello.token) : Buffer.alloc(expected.length);
      // Compared as digests: equal lengths, and the time taken says nothing about the token.
      if (!timingSafeEqual(given, expected) || typeof hello.token !== 'string') {
        this.refuse('ERR_REMOTE_AUTH', 'the token is wrong');
        return;
      }
    }
    if (this.agent.draining) {
      this.refuse('ERR_REMOTE_DRAINING', 'the agent is draining (shutting down)');
      return;
    }
    let previous: Record<number, number | null> = {};
    if (typeof hello.client === 'string' && hello.client.length <= 64) {
      this.client = hello.client;
      // The host is back (after a cut, or a partition it gave up on first): its old session's workers are gone
      // for it. Free their lease now rather than when that session times out, and tell it what they had started.
      previous = await this.agent.resume(this);
      if (this.#closed) return;
      if (this.agent.draining) {
        this.refuse('ERR_REMOTE_DRAINING', 'the agent is draining (shutting down)');
        return;
      }
    }
    if (typeof hello.heartbeatInterval === 'number' && hello.heartbeatInterval > 0) {
      this.silentAfter = Math.max(this.agent.options.sessionTimeout, 3 * hello.heartbeatInterval);
    }
    this.wanted = typeof hello.workers === 'number' && hello.workers >= 1 ? Math.floor(hello.workers) : Infinity;
    this.authed = true;
    this.agent.shareOut();
    if (this.grant <= 0) {
      this.authed = false;
      this.agent.shareOut();
      this.refuse('ERR_REMOTE_FULL', `all ${this.agent.options.pool.workers} workers of this agent are shared out among ${this.agent.stats().hosts} hosts already`);
      return;
    }
    this.welcomed = true;
    if (this.client) this.agent.seen(this.client);
    this.writer.send(Msg.WELCOME, 0, { ...this.agent.welcome(this), previous });
  }

  /** Start a worker for the host (up to its grant, plus one replacement starting while a retired one ends). */
  #open(channel: number): void {
    if (this.workers.has(channel) || channel === 0) throw new WireError(`channel ${channel} is in use`);
    if (this.agent.draining) {
      this.writer.send(Msg.OPENED, channel, { error: 'the agent is draining', draining: true });
      return;
    }
    if (this.workers.size >= this.grant + 1) {
      this.writer.send(Msg.OPENED, channel, { error: `this host leases ${this.grant} workers here` });
      return;
    }
    // At most `workers` processes, plus one replacement starting while a recycled worker ends: hosts whose share
    // shrank give workers back first.
    if (this.agent.running() >= this.agent.options.pool.workers + 1) {
      this.waitingForRoom = true;
      this.writer.send(Msg.OPENED, channel, { error: 'no room yet: other hosts are giving workers back', room: true });
      return;
    }
    const pool = this.agent.options.pool;
    const python = this.agent.python;
    let markExited!: () => void;
    const exited = new Promise<void>((resolve) => (markExited = resolve));
    const worker: LeasedWorker = { link: undefined!, reason: undefined, stoppedSince: undefined, memory: undefined, exited, markExited };
    worker.link = new ProcessLink(nextWorkerId++, { executable: python.executable, cwd: pool.cwd, env: this.agent.workerEnv, memoryLimit: pool.maxMemory }, {
      output: (stream, text) => this.writer.send(stream === 'stdout' ? Msg.STDOUT : Msg.STDERR, channel, text),
      exit: (code, signal, error) => {
        if (this.workers.get(channel) !== worker) return;
        this.workers.delete(channel);
        const lastStarted = worker.link.lastStarted();
        if (this.#closed && this.client) this.agent.verdict(this.client, channel, typeof lastStarted === 'number' ? lastStarted : null);
        worker.markExited();
        this.writer.send(Msg.EXIT, channel, { code, signal, lastStarted: typeof lastStarted === 'number' ? lastStarted : null, reason: worker.reason ?? error?.message ?? null });
        this.agent.exited();
      },
    });
    this.workers.set(channel, worker);
    const { data, control } = worker.link;
    data.on('data', (chunk: Buffer) => this.writer.writeBytes(Msg.DATA, channel, chunk));
    control.on('data', (chunk: Buffer) => this.writer.writeBytes(Msg.CONTROL, channel, chunk));
    for (const [pipe, name] of [[data, 'data'], [control, 'control']] as const) {
      pipe.on('error', () => {});
      pipe.once('end', () => this.writer.send(Msg.EOF, channel, { pipe: name }));
    }
    this.writer.send(Msg.OPENED, channel, { pid: worker.link.pid ?? null });
  }
}
