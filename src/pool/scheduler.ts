/**
 * Which worker runs what: the queue of calls waiting for a worker, the choice of worker, calls sent ahead to busy
 * workers (up to `pipelineDepth`), `maxQueue`, and work stealing. It knows workers only as slots (./slot.ts).
 */
import { QueueFullError } from '../errors.js';
import { CallJob, type Job } from '../worker/job.js';
import type { Slot, WorkerHandle } from './slot.js';

/** A call waiting behind one that has run this long (ms) may be taken over by an idle worker. */
export const STEAL_AFTER = 2;

export interface SchedulerHost<W extends WorkerHandle> {
  /** The workers in rotation. */
  readonly slots: readonly Slot<W>[];
  /** The pool is closing: no stealing. */
  readonly closing: boolean;
  /** Nothing is queued or running any more (close() waits for it). */
  idle(): void;
}

export class Scheduler<W extends WorkerHandle = WorkerHandle> {
  readonly #queue: Job[] = [];

  constructor(
    private readonly host: SchedulerHost<W>,
    private readonly limits: { readonly maxQueue: number; readonly pipelineDepth: number },
  ) {}

  /** Calls waiting in the pool's queue (not yet sent to any worker). */
  get queued(): number {
    return this.#queue.length;
  }

  /** Calls waiting to run: in the pool's queue, or sent ahead to a worker behind the call it runs. */
  waiting(): number {
    let waiting = this.#queue.length;
    for (const { worker } of this.host.slots) if (worker.load > 1) waiting += worker.load - 1;
    return waiting;
  }

  /** Whether no call waits or runs anywhere. */
  get drained(): boolean {
    return this.#queue.length === 0 && this.host.slots.every((s) => s.worker.load === 0);
  }

  /** Take every queued job out (to fail them). */
  takeAll(): Job[] {
    return this.#queue.splice(0);
  }

  /**
   * Run `job` as soon as possible: at once on an idle worker, sent ahead to the least busy one, or queued.
   * `front`: it was sent before (moved off a worker that died or gave it back): it goes first, and does not count
   * against `maxQueue` again.
   */
  enqueue(job: Job, front = false): void {
    const slot = this.#queue.length === 0 ? this.#pick() : undefined;
    if (slot && slot.worker.load === 0) {
      slot.worker.send(job); // starts at once
      return;
    }
    // It will wait (sent ahead behind another call, or in the queue): that counts against maxQueue.
    if (!front && this.waiting() >= this.limits.maxQueue) {
      failJob(job, new QueueFullError(this.limits.maxQueue));
      return;
    }
    if (slot) {
      slot.worker.send(job);
      return;
    }
    if (front) this.#queue.unshift(job);
    else this.#queue.push(job);
    job.dequeue = () => {
      job.dequeue = undefined;
      const at = this.#queue.indexOf(job);
      if (at >= 0) this.#queue.splice(at, 1);
    };
    this.dispatch();
  }

  /** Send queued jobs to workers with room. */
  dispatch(): void {
    while (this.#queue.length > 0) {
      const slot = this.#pick();
      if (!slot) break;
      const job = this.#queue.shift()!;
      job.dequeue = undefined;
      if (job instanceof CallJob && job.settled) continue;
      slot.worker.send(job);
    }
    if (this.#queue.length === 0) this.host.idle();
  }

  /** The ready worker with the fewest requests in flight, if one has room. */
  #pick(): Slot<W> | undefined {
    let best: Slot<W> | undefined;
    let retiring: Slot<W> | undefined; // due for retirement: used only when no other worker has room
    for (const slot of this.host.slots) {
      const { worker } = slot;
      if (worker.state !== 'ready' || worker.load >= this.limits.pipelineDepth) continue;
      if (slot.replacing) {
        if (!retiring || worker.load < retiring.worker.load) retiring = slot;
        continue;
      }
      if (!best || worker.load < best.worker.load) best = slot;
      if (worker.load === 0) break;
    }
    return best ?? retiring;
  }

  /** The worker a new context goes to: the one with the fewest contexts, then the least busy. */
  pickForContext(): Slot<W> | undefined {
    let best: Slot<W> | undefined;
    for (const slot of this.host.slots) {
      const { worker } = slot;
      if ((worker.state !== 'ready' && worker.state !== 'starting') || slot.replacing) continue;
      if (!best || worker.contexts.size < best.worker.contexts.size || (worker.contexts.size === best.worker.contexts.size && worker.load < best.worker.load)) best = slot;
    }
    return best;
  }

  /**
   * Take back the calls waiting behind the running one on a retired worker (it takes nothing new): the ones it has
   * not started ('revoke', as for stealing) go back to the queue, ahead of new calls.
   */
  reclaim(slot: Slot<W>): void {
    const { worker } = slot;
    for (const job of worker.sent.slice(1)) {
      if (!(job instanceof CallJob) || !job.retryable || job.settled || job.stealing) continue;
      job.stealing = true;
      worker.control('revoke', [job.id]).then(
        (revoked) => {
          job.stealing = false;
          if (revoked !== true) return;
          worker.take(job); // (it may already be off that worker's list: see PythonWorker#onDataFrame)
          job.worker = undefined;
          job.id = 0;
          if (!job.settled) this.enqueue(job, true);
        },
        () => {
          job.stealing = false;
        },
      );
    }
  }

  /**
   * An idle worker takes over a call that waits behind a running one on another worker (calls are sent ahead to
   * busy workers for throughput; a long call must not hold up the calls behind it while a worker is free). The
   * other worker gives the call back only if it has not started it ('revoke' on its control channel), so a call
   * never runs twice.
   */
  steal(idle: Slot<W>): void {
    if (this.#queue.length > 0 || idle.worker.load > 0 || idle.worker.state !== 'ready' || idle.stealing || this.host.closing) return;
    let victim: Slot<W> | undefined;
    for (const slot of this.host.slots) {
      if (slot !== idle && slot.worker.load > 1 && (!victim || slot.worker.load > victim.worker.load)) victim = slot;
    }
    if (!victim) return;
    // Only from behind a call that has run a while: with short calls the waiting ones start soon anyway, and
    // taking them back would cost more than it saves. Look again when the running call gets old enough.
    const age = performance.now() - victim.worker.sent[0]!.startedAt;
    if (age < STEAL_AFTER) {
      if (!idle.stealTimer) {
        idle.stealTimer = setTimeout(() => {
          idle.stealTimer = undefined;
          this.steal(idle);
        }, STEAL_AFTER - age + 0.1);
        idle.stealTimer.unref();
      }
      return;
    }
    const sent = victim.worker.sent;
    let job: CallJob | undefined;
    for (let i = sent.length - 1; i >= 1; i--) {
      const candidate = sent[i];
      if (candidate instanceof CallJob && candidate.retryable && !candidate.settled && !candidate.stealing) {
        job = candidate;
        break;
      }
    }
    if (!job) return;
    const from = victim.worker;
    const stolen = job;
    stolen.stealing = idle.stealing = true;
    from.control('revoke', [stolen.id]).then(
      (revoked) => {
        idle.stealing = stolen.stealing = false;
        // Refused: that worker has started it, so the calls before it are done there; nothing to take now.
        if (revoked !== true) return;
        // It will not run there (it may already be off that worker's list: see PythonWorker#onDataFrame).
        from.take(stolen);
        stolen.worker = undefined;
        stolen.id = 0;
        if (!stolen.settled) this.enqueue(stolen, true);
        this.steal(idle);
      },
      () => {
        idle.stealing = stolen.stealing = false;
      },
    );
  }
}

/** Settle a job that will not run with `error`. */
export function failJob(job: Job, error: Error): void {
  if (job instanceof CallJob) job.fail(error);
  else job.onLost(error as never, true);
}
