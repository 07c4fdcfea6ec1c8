/**
 * Scheduling and recycling without Python: the scheduler (pick, queue, maxQueue, pipelineDepth, stealing) and
 * the fleet's retirement rules, against fake workers.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { QueueFullError, type WorkerExitInfo } from '../src/errors.js';
import { resolvePoolOptions } from '../src/options.js';
import { Fleet, type FleetHooks, type RecycleEvent, type WorkerSlot } from '../src/pool/fleet.js';
import { Scheduler, STEAL_AFTER } from '../src/pool/scheduler.js';
import { Slot, type WorkerHandle } from '../src/pool/slot.js';
import { Kind } from '../src/protocol/frames.js';
import { CallJob, type Job } from '../src/worker/job.js';
import type { PythonWorker, ReadyInfo, WorkerConfig, WorkerEvents, WorkerState } from '../src/worker/worker.js';

let nextRequestId = 1;

/** A worker that runs nothing: jobs are sent to it and end when the test says. */
class FakeWorker implements WorkerHandle {
  state: WorkerState = 'ready';
  readonly sent: Job[] = [];
  readonly contexts = new Set<number>();
  streams = 0;
  readonly handles = new Set<number>();
  get pinned(): boolean {
    return this.contexts.size > 0 || this.streams > 0 || this.handles.size > 0;
  }
  served = 0;
  completed = 0;
  killReason: string | undefined;
  info: ReadyInfo | undefined = { pid: 1, version: '3.11.7', implementation: 'CPython', executable: 'python3', protocol: 1 };
  revoke = true;
  rssValue = 0;
  readonly exited: Promise<WorkerExitInfo>;
  #exit!: (info: WorkerExitInfo) => void;
  terminated = false;

  constructor(
    readonly id: number,
    private readonly events?: WorkerEvents,
  ) {
    this.exited = new Promise((resolve) => (this.#exit = resolve));
  }

  get load(): number {
    return this.sent.length;
  }
  get pid(): number {
    return 1000 + this.id;
  }
  send(job: Job): void {
    job.worker = this as unknown as PythonWorker;
    if (job.id === 0) job.id = nextRequestId++;
    this.sent.push(job);
    if (this.sent.length === 1) job.start();
  }
  take(job: Job): boolean {
    const at = this.sent.indexOf(job);
    if (at < 0) return false;
    this.sent.splice(at, 1);
    return true;
  }
  control(op: string): Promise<unknown> {
    return Promise.resolve(op === 'revoke' ? this.revoke : null);
  }
  /** The running job answers. */
  answer(): void {
    const job = this.sent.shift()!;
    (job as CallJob).succeed?.(null);
    job.finish();
    this.served++;
    this.sent[0]?.start();
    this.events?.jobEnded(this as unknown as PythonWorker);
  }
  // what the fleet uses
  start(): Promise<ReadyInfo> {
    return Promise.resolve(this.info!);
  }
  retire(reason: string): void {
    this.state = 'retiring';
    this.killReason = reason;
  }
  terminate(): Promise<WorkerExitInfo> {
    this.terminated = true;
    this.exit();
    return this.exited;
  }
  kill(reason: string): void {
    this.killReason ??= reason;
    setImmediate(() => this.exit()); // a process exits later, never inside kill()
  }
  rss(): { rss: number; peakRss: number } {
    return { rss: this.rssValue, peakRss: this.rssValue };
  }
  exit(): void {
    if (this.state === 'exited') return;
    this.state = 'exited';
    const info = { workerId: this.id, pid: this.pid, exitCode: 0, signal: null, stderr: '' };
    this.#exit(info);
    this.events?.exited(this as unknown as PythonWorker, info, []);
  }
}

const call = () => new CallJob(Kind.CALL, Buffer.alloc(11), 0, { timeout: undefined, signal: undefined }, false);

function scheduler(workers: FakeWorker[], limits = { maxQueue: Infinity, pipelineDepth: 32 }) {
  const slots = workers.map((w) => new Slot(w));
  let idle = 0;
  const s = new Scheduler({ slots, closing: false, idle: () => idle++ }, limits);
  return { s, slots, idleCount: () => idle };
}

describe('Scheduler', () => {
  test('a call goes to an idle worker at once, else to the least busy one, up to pipelineDepth; then it queues', () => {
    const [a, b] = [new FakeWorker(1), new FakeWorker(2)];
    const { s } = scheduler([a, b], { maxQueue: Infinity, pipelineDepth: 2 });
    const jobs = Array.from({ length: 5 }, call);
    for (const job of jobs) s.enqueue(job);
    assert.deepStrictEqual([a.load, b.load, s.queued], [2, 2, 1]);
    assert.equal(jobs[0]!.running, true);
    a.answer();
    s.dispatch();
    assert.deepStrictEqual([a.load, b.load, s.queued], [2, 2, 0]);
    assert.equal(a.sent.at(-1), jobs[4]);
  });

  test('starting, retiring and exited workers take nothing; one being replaced only when no other has room', () => {
    const ws = [new FakeWorker(1), new FakeWorker(2), new FakeWorker(3), new FakeWorker(4)];
    ws[0]!.state = 'starting';
    ws[1]!.state = 'retiring';
    ws[2]!.state = 'exited';
    const { s, slots } = scheduler(ws, { maxQueue: Infinity, pipelineDepth: 1 });
    slots[3]!.replacing = true;
    s.enqueue(call());
    assert.deepStrictEqual(ws.map((w) => w.load), [0, 0, 0, 1]);
    s.enqueue(call());
    assert.equal(s.queued, 1);
  });

  test('maxQueue counts calls waiting in the queue and sent ahead; requeued calls do not count again', () => {
    const w = new FakeWorker(1);
    const { s } = scheduler([w], { maxQueue: 2, pipelineDepth: 2 });
    const jobs = Array.from({ length: 4 }, call);
    for (const job of jobs) s.enqueue(job);
    assert.deepStrictEqual([w.load, s.queued, s.waiting()], [2, 1, 2]);
    return assert.rejects(jobs[3]!.promise, QueueFullError).then(() => {
      const again = call();
      s.enqueue(again, true);
      assert.equal(s.queued, 2);
    });
  });

  test('a queued call that is cancelled leaves the queue; settled calls are skipped', () => {
    const w = new FakeWorker(1);
    const { s } = scheduler([w], { maxQueue: Infinity, pipelineDepth: 1 });
    const [first, second, third] = [call(), call(), call()];
    [first, second, third].forEach((j) => s.enqueue(j));
    second.promise.catch(() => {});
    second.cancel(new Error('aborted'));
    assert.equal(s.queued, 1);
    third.fail(new Error('settled elsewhere'));
    third.promise.catch(() => {});
    w.answer();
    s.dispatch();
    assert.deepStrictEqual([w.load, s.queued], [0, 0]);
  });

  test('a context goes to the worker with the fewest contexts, then the least busy; not to one being replaced', () => {
    const ws = [new FakeWorker(1), new FakeWorker(2), new FakeWorker(3)];
    ws[0]!.contexts.add(1);
    ws[1]!.send(call());
    const { s, slots } = scheduler(ws);
    assert.equal(s.pickForContext()?.worker, ws[2]);
    slots[2]!.replacing = true;
    assert.equal(s.pickForContext()?.worker, ws[1]);
  });

  test('an idle worker takes back a call waiting behind one that has run STEAL_AFTER ms, if it has not started', async () => {
    const [busy, idle] = [new FakeWorker(1), new FakeWorker(2)];
    const { s, slots } = scheduler([busy, idle]);
    const head = call();
    busy.send(head);
    const waiting = [call(), call()];
    waiting.forEach((j) => busy.send(j));
    head.startedAt = performance.now() - STEAL_AFTER - 1;
    s.steal(slots[1]!);
    assert.equal(slots[1]!.stealing, true);
    await Promise.resolve();
    await Promise.resolve();
    assert.deepStrictEqual([busy.load, idle.load], [2, 1]);
    assert.equal(idle.sent[0], waiting[1]); // the last one waiting
    assert.equal(slots[1]!.stealing, false);
  });

  test('nothing is taken back when the worker has started the call, from behind a young call, or a pinned one', async () => {
    const [busy, idle] = [new FakeWorker(1), new FakeWorker(2)];
    const { s, slots } = scheduler([busy, idle]);
    const head = call();
    busy.send(head);
    busy.send(call());
    busy.revoke = false;
    head.startedAt = performance.now() - 10;
    s.steal(slots[1]!);
    await new Promise((r) => setImmediate(r));
    assert.deepStrictEqual([busy.load, idle.load], [2, 0]);
    // young head: looked at again later, not now
    head.startedAt = performance.now();
    busy.revoke = true;
    s.steal(slots[1]!);
    assert.ok(slots[1]!.stealTimer);
    assert.deepStrictEqual([busy.load, idle.load], [2, 0]);
    clearTimeout(slots[1]!.stealTimer);
    // pinned (context) calls never move
    const pinned = new CallJob(Kind.CALL, Buffer.alloc(11), 0, { timeout: undefined, signal: undefined }, true);
    busy.take(busy.sent[1]!);
    busy.send(pinned);
    head.startedAt = performance.now() - 10;
    slots[1]!.stealTimer = undefined;
    s.steal(slots[1]!);
    await new Promise((r) => setImmediate(r));
    assert.equal(busy.sent[1], pinned);
  });
});

describe('Fleet: recycling', () => {
  function fleet(recycle: Record<string, unknown>) {
    const workers: FakeWorker[] = [];
    const recycled: RecycleEvent[] = [];
    const hooks: FleetHooks = {
      workerStart: () => {},
      workerExit: () => {},
      recycle: (e) => recycled.push(e),
      output: () => {},
      jobEnded: (slot) => f.afterJob(slot),
      joined: () => {},
      left: () => {},
      requeue: () => {},
      reclaim: () => {},
      broken: () => {},
      closing: () => false,
      handles: () => () => undefined,
      log: () => {},
    };
    const factory = (id: number, _config: WorkerConfig, events: WorkerEvents) => {
      const w = new FakeWorker(id, events);
      workers.push(w);
      return w as unknown as PythonWorker;
    };
    const f: Fleet = new Fleet(resolvePoolOptions({ workers: 1, recycle }), { executable: 'python3', version: '3.11.7' }, hooks, () => {}, factory);
    return { f, workers, recycled };
  }
  const slotOf = (f: Fleet): WorkerSlot => f.slots[0]!;

  test('a worker past maxCalls is replaced at once by the spare; it finishes its calls, then ends', async () => {
    const { f, workers, recycled } = fleet({ maxCalls: 2 });
    await f.start();
    const [first, spare] = workers as [FakeWorker, FakeWorker];
    assert.equal(workers.length, 2);
    first.send(call());
    first.send(call());
    first.send(call());
    first.answer();
    assert.equal(first.state, 'ready');
    first.answer(); // the second call: due
    assert.deepStrictEqual(recycled.map((e) => [e.workerId, e.reason]), [[1, 'maxCalls']]);
    assert.equal(first.state, 'retiring');
    assert.equal(slotOf(f).worker as unknown, first); // still listed until it exits
    assert.ok(f.slots.some((s) => (s.worker as unknown) === spare));
    assert.equal(first.terminated, false); // a call still runs there
    first.answer();
    assert.equal(first.terminated, true);
    assert.equal(workers.length, 3); // a new spare started ahead
  });

  test('a worker over maxRss with an open context is retired when the context closes', async () => {
    const { f, workers, recycled } = fleet({ maxRss: 1000 });
    await f.start();
    const first = workers[0]!;
    first.rssValue = 5000;
    first.contexts.add(7);
    first.send(call());
    first.answer();
    assert.equal(recycled.length, 0);
    assert.equal(slotOf(f).retireWhenFree, 'maxRss');
    first.contexts.delete(7);
    f.unpinned(first as unknown as PythonWorker);
    assert.deepStrictEqual(recycled.map((e) => [e.reason, e.rss]), [['maxRss', 5000]]);
    assert.equal(first.terminated, true);
  });

  test('idle workers that served calls are retired after idleTimeout; fresh ones are not', async () => {
    const { f, workers, recycled } = fleet({ idleTimeout: 50 });
    await f.start();
    f.retireIdle(50);
    assert.equal(recycled.length, 0); // served nothing yet
    workers[0]!.send(call());
    workers[0]!.answer();
    slotOf(f).lastActive = Date.now() - 100;
    f.retireIdle(50);
    assert.deepStrictEqual(recycled.map((e) => e.reason), ['idleTimeout']);
  });
});
