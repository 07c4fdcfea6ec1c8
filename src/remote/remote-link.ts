/**
 * A worker process on an agent as its PythonWorker sees it (a WorkerLink): its two pipes as channels of the
 * host's connection to that agent, its exit and memory as the agent reports them.
 */
import { EventEmitter } from 'node:events';
import type { Channel, LinkEvents, ProcessMemory, WorkerLink } from '../worker/link.js';
import type { AgentConnection } from './connection.js';
import { Msg } from './wire.js';

/** A worker process on an agent, through its host's connection. */
export class RemoteLink implements WorkerLink {
  pid: number | undefined;
  readonly data: RemoteChannel;
  readonly control: RemoteChannel;
  readonly directRead = undefined;
  readonly events: LinkEvents;
  referenced = true;
  #memory: ProcessMemory | undefined;
  #lastStarted: number | 'head' | 'all' = 'all';
  #exited = false;
  #lostWith: string | undefined;
  /** Why it waits for a verdict (its connection was lost). */
  suspended: string | undefined;

  constructor(
    private readonly connection: AgentConnection,
    private readonly channel: number,
    events: LinkEvents,
  ) {
    this.events = events;
    this.data = new RemoteChannel((chunks) => connection.write(Msg.DATA, channel, chunks), () => connection.write(Msg.END, channel));
    this.control = new RemoteChannel((chunks) => connection.write(Msg.CONTROL, channel, chunks));
  }

  get host(): string {
    return this.connection.hostname;
  }

  /** The agent's address. */
  get endpoint(): string {
    return this.connection.endpoint;
  }

  /** Why the link was lost with its connection (undefined: the agent reported the exit, or it runs). */
  get lost(): string | undefined {
    return this.#lostWith;
  }

  kill(): void {
    if (!this.#exited) this.connection.write(Msg.KILL, this.channel);
  }

  setRef(on: boolean): void {
    this.referenced = on;
    this.connection.updateRef();
  }

  lastStarted(): number | 'head' | 'all' {
    return this.#lastStarted;
  }

  rss(): ProcessMemory | undefined {
    return this.#exited ? undefined : this.#memory;
  }

  /** @internal */
  measured([rss, peakRss, own, stopped]: [number, number, number, number]): void {
    this.#memory = { rss, peakRss, own, stopped: stopped === 1 };
  }

  /** @internal */
  opened(answer: Record<string, unknown>): void {
    if (typeof answer.pid === 'number') this.pid = answer.pid;
    else if (typeof answer.error === 'string') this.drop(`agent ${this.connection.endpoint} did not start a worker: ${answer.error}`, 'head');
  }

  /** @internal The agent reported the exit. */
  exited(info: Record<string, unknown>): void {
    const reason = typeof info.reason === 'string' ? info.reason : undefined;
    this.#finish(typeof info.lastStarted === 'number' ? info.lastStarted : 'head', (info.code as number | null) ?? null, (info.signal as NodeJS.Signals | null) ?? null, reason ? new Error(reason) : undefined);
  }

  /** @internal Its connection was lost: take nothing new until the verdict. */
  suspend(why: string): void {
    if (this.#exited || this.suspended) return;
    this.suspended = why;
    this.events.suspend?.(why);
  }

  /**
   * @internal The link ended with its connection: `started` is the last request its worker started when the
   * agent said so, else `'all'` (unknown: every request sent may have run).
   */
  drop(why: string, started: number | 'head' | 'all' = 'all'): void {
    if (this.#exited) return;
    this.#lostWith = why;
    this.#finish(started, null, null, new Error(why));
  }

  #finish(started: number | 'head' | 'all', code: number | null, signal: NodeJS.Signals | null, error: Error | undefined): void {
    if (this.#exited) return;
    this.#exited = true;
    this.#lastStarted = started;
    this.data.push(null);
    this.control.push(null);
    this.events.exit(code, signal, error);
  }
}

/**
 * A worker's pipe at the host's end of the connection: what is written goes to the agent (what is written while
 * corked, as one message); what the agent relays is emitted as 'data'. Lighter than a Duplex, which a call's round
 * trip would pass through twice.
 */
class RemoteChannel extends EventEmitter implements Channel {
  destroyed = false;
  #corked = 0;
  #held: Uint8Array[] = [];
  /** This side was ended (end()): the agent closes the worker's pipe. */
  #ended = false;
  /** The agent's side ended (the worker closed its pipe, or exited). */
  #readEnded = false;

  constructor(
    private readonly send: (chunks: readonly Uint8Array[]) => void,
    private readonly onEnd?: () => void,
  ) {
    super();
  }

  write(chunk: Uint8Array): boolean {
    if (this.destroyed || this.#ended) return false;
    if (this.#corked > 0) this.#held.push(chunk);
    else this.send([chunk]);
    return true;
  }

  cork(): void {
    this.#corked++;
  }

  uncork(): void {
    if (this.#corked === 0 || --this.#corked > 0 || this.#held.length === 0) return;
    const held = this.#held;
    this.#held = [];
    if (!this.destroyed) this.send(held);
  }

  end(): void {
    if (this.#ended || this.destroyed) return;
    this.#ended = true;
    this.onEnd?.();
  }

  destroy(): void {
    this.destroyed = true;
    this.#held = [];
  }

  /** @internal Bytes from the agent; null: the pipe ended. */
  push(chunk: Buffer | null): void {
    if (this.destroyed) return;
    if (chunk === null) {
      if (this.#readEnded) return;
      this.#readEnded = true;
      this.emit('end');
      return;
    }
    this.emit('data', chunk);
  }
}
