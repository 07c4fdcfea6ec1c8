/**
 * What the pool keeps about each of its workers. The worker (src/worker/) owns its process: state, requests in
 * flight, exit. Scheduling and recycling state is the pool's, here, in one place.
 */
import type { Job } from '../worker/job.js';
import type { WorkerState } from '../worker/worker.js';

/** What the scheduler needs of a worker (a PythonWorker; a fake one in unit tests). */
export interface WorkerHandle {
  readonly id: number;
  readonly state: WorkerState;
  /** Jobs sent and not yet ended, in the order the worker runs them. */
  readonly sent: readonly Job[];
  /** Jobs sent and not ended (`sent.length`). */
  readonly load: number;
  /** Open contexts pinned to it. */
  readonly contexts: ReadonlySet<number>;
  /** Send a job; it runs after the jobs already sent. */
  send(job: Job): void;
  /** Take back a job the worker gave back without running it; whether it was still listed. */
  take(job: Job): boolean;
  /** A request on the control channel. */
  control(op: string, args?: unknown[]): Promise<unknown>;
}

export class Slot<W extends WorkerHandle = WorkerHandle> {
  /** A replacement is starting for it: it takes new calls only when no other worker can. */
  replacing = false;
  /** Retire it once its contexts and streams end (the reason it was due). */
  retireWhenFree: 'maxRss' | 'maxCalls' | 'idleTimeout' | 'manual' | undefined;
  /** When it last answered a request (ms since the epoch). */
  lastActive = Date.now();
  /** When its RSS was last read for recycling. */
  rssCheckedAt = 0;
  /** It is asking another worker for a call that waits there. */
  stealing = false;
  /** A later look for a call to take over. */
  stealTimer: NodeJS.Timeout | undefined;
  /** Since when /proc has shown it stopped (SIGSTOP), if it does. */
  stoppedSince: number | undefined;
  /** Why it failed to start, when it did. */
  startError: Error | undefined;
  /** Settles when it has started (or failed to). */
  ready: Promise<unknown> = Promise.resolve();

  constructor(readonly worker: W) {}
}
