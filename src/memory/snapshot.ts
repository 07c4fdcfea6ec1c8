/**
 * Snapshots of traced allocations. The tracemalloc snapshots stay in the workers (by id, at most 16 each); the
 * host holds their top rows and compares them by asking the workers, which send back only the top rows.
 */
import { ArgumentError, NotTracingError } from '../errors.js';
import type { PythonWorker } from '../worker/worker.js';
import { checkOptions } from '../validate.js';
import { checkGroupBy, optionalInt } from './args.js';
import { control, workerGone } from './worker-memory.js';
import type { AllocationDiff, AllocationSite, CompareOptions, SnapshotGroupBy, SnapshotOptions } from './types.js';

interface Part {
  worker: PythonWorker;
  id: number;
}

interface Taken {
  id: number;
  sites: AllocationSite[];
  totalSize: number;
  totalCount: number;
}

/** Snapshots nobody holds any more are released in their workers. */
const registry = new FinalizationRegistry<Part[]>((parts) => void releaseParts(parts));

function releaseParts(parts: Part[]): Promise<void> {
  const byWorker = new Map<PythonWorker, number[]>();
  for (const { worker, id } of parts) {
    if (worker.state === 'exited') continue;
    byWorker.set(worker, [...(byWorker.get(worker) ?? []), id]);
  }
  return Promise.all([...byWorker].map(([worker, ids]) => control(worker, 'snapshot_release', [ids]).catch(() => {}))).then(() => {});
}

/** Top allocation sites at one moment, on one worker (a context's) or across the pool. */
export class MemorySnapshot {
  /** How the sites are grouped. */
  readonly groupBy: SnapshotGroupBy;
  /** The biggest sites, biggest first (the worker runtime's own allocations left out). */
  readonly sites: AllocationSite[];
  /** Bytes traced at every site (not only the top ones). */
  readonly totalSize: number;
  /** Allocations at every site. */
  readonly totalCount: number;
  readonly takenAt: Date;
  /** The workers it covers. */
  readonly workerIds: number[];
  readonly #parts: Part[];
  #released = false;

  /** @internal Use `pool.snapshot()` or `ctx.snapshot()`. */
  constructor(groupBy: SnapshotGroupBy, parts: Part[], sites: AllocationSite[], totalSize: number, totalCount: number) {
    this.groupBy = groupBy;
    this.#parts = parts;
    this.sites = sites;
    this.totalSize = totalSize;
    this.totalCount = totalCount;
    this.takenAt = new Date();
    this.workerIds = parts.map((p) => p.worker.id);
    registry.register(this, parts, this);
  }

  /**
   * What changed since `older`: the sites whose size changed most (by `|sizeDiff|`, biggest first), grouped as
   * this snapshot is. Computed in the workers, on the workers both snapshots cover.
   */
  async compare(older: MemorySnapshot, options?: CompareOptions): Promise<AllocationDiff[]> {
    if (!(older instanceof MemorySnapshot)) throw new ArgumentError('compare() takes a MemorySnapshot');
    const o = checkOptions<CompareOptions>(options, 'options', ['limit']);
    const limit = optionalInt(o.limit, 'options.limit', 10);
    if (this.#released || older.#released) throw new ArgumentError('A released snapshot cannot be compared');
    const pairs = this.#parts
      .map((part) => ({ part, old: older.#parts.find((p) => p.worker === part.worker) }))
      .filter((pair): pair is { part: Part; old: Part } => pair.old !== undefined && pair.part.worker.state !== 'exited');
    if (pairs.length === 0) {
      throw new ArgumentError('The two snapshots have no live worker in common (take both on the same pool or context)');
    }
    const perWorker = pairs.length > 1 ? limit * 3 : limit;
    const results = await Promise.allSettled(
      pairs.map(({ part, old }) => control<AllocationDiff[]>(part.worker, 'snapshot_compare', [part.id, old.id, this.groupBy, perWorker])),
    );
    const rows: AllocationDiff[][] = [];
    results.forEach((result, i) => {
      if (result.status === 'fulfilled') rows.push(result.value);
      else if (!workerGone(pairs[i]!.part.worker, result.reason)) throw result.reason;
    });
    if (rows.length === 0) throw new ArgumentError('The workers of these snapshots exited meanwhile');
    return merge(rows, this.groupBy, true).slice(0, limit) as AllocationDiff[];
  }

  /** Same as {@link compare}. */
  diff(older: MemorySnapshot, options?: CompareOptions): Promise<AllocationDiff[]> {
    return this.compare(older, options);
  }

  /** Free the snapshot in its workers (they also drop their oldest when they hold 16). */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    registry.unregister(this);
    await releaseParts(this.#parts);
  }
}

function siteKey(site: AllocationSite, groupBy: SnapshotGroupBy): string {
  if (groupBy === 'traceback') return JSON.stringify(site.frames ?? []);
  return `${site.file}\0${site.line}`;
}

/** Add up the rows of several workers by site and sort them. */
function merge(lists: AllocationSite[][], groupBy: SnapshotGroupBy, diff: boolean): AllocationSite[] {
  if (lists.length === 1) return lists[0]!;
  const sites = new Map<string, AllocationSite & Partial<AllocationDiff>>();
  for (const list of lists) {
    for (const site of list as Array<AllocationSite & Partial<AllocationDiff>>) {
      const key = siteKey(site, groupBy);
      const seen = sites.get(key);
      if (!seen) {
        sites.set(key, { ...site });
        continue;
      }
      seen.size += site.size;
      seen.count += site.count;
      if (diff) {
        seen.sizeDiff = (seen.sizeDiff ?? 0) + (site.sizeDiff ?? 0);
        seen.countDiff = (seen.countDiff ?? 0) + (site.countDiff ?? 0);
      }
    }
  }
  const out = [...sites.values()];
  if (diff) out.sort((a, b) => Math.abs(b.sizeDiff!) - Math.abs(a.sizeDiff!) || b.size - a.size || Math.abs(b.countDiff!) - Math.abs(a.countDiff!));
  else out.sort((a, b) => b.size - a.size || b.count - a.count);
  return out;
}

/**
 * Take a snapshot on each worker that traces. Workers that exit meanwhile, or do not trace while others do, are
 * left out; when none traces, it rejects with NotTracingError.
 */
export async function takeSnapshot(workers: PythonWorker[], options: SnapshotOptions | undefined): Promise<MemorySnapshot> {
  const o = checkOptions<SnapshotOptions>(options, 'options', ['groupBy', 'limit']);
  const groupBy = checkGroupBy(o.groupBy);
  const limit = optionalInt(o.limit, 'options.limit', 10);
  if (workers.length === 0) throw new NotTracingError('No worker is ready to take a snapshot');
  const perWorker = workers.length > 1 ? limit * 3 : limit;
  const results = await Promise.allSettled(workers.map((w) => control<Taken>(w, 'snapshot_take', [groupBy, perWorker])));
  const parts: Part[] = [];
  const taken: Taken[] = [];
  let notTracing: unknown;
  results.forEach((result, i) => {
    const worker = workers[i]!;
    if (result.status === 'fulfilled') {
      parts.push({ worker, id: result.value.id });
      taken.push(result.value);
    } else if (result.reason instanceof NotTracingError) notTracing ??= result.reason;
    else if (!workerGone(worker, result.reason)) {
      void releaseParts(parts);
      throw result.reason;
    }
  });
  if (parts.length === 0) {
    if (notTracing && workers.length === 1) throw notTracing;
    throw notTracing
      ? new NotTracingError('tracemalloc is not tracing on any worker: call tracemallocStart() first')
      : new NotTracingError('Every worker exited before the snapshot was taken');
  }
  const sites = merge(taken.map((t) => t.sites), groupBy, false).slice(0, limit);
  const totalSize = taken.reduce((sum, t) => sum + t.totalSize, 0);
  const totalCount = taken.reduce((sum, t) => sum + t.totalCount, 0);
  return new MemorySnapshot(groupBy, parts, sites, totalSize, totalCount);
}
