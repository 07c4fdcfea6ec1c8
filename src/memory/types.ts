import type { ContainerInfo } from '../container.js';

/**
 * The shapes the memory API returns. Every one is a fresh plain object (safe to keep, serialise or mutate).
 */

/** One generation of the collector, as `gc.get_stats()` reports it. */
export interface GcGenerationStats {
  /** Objects collected in this generation since the worker started. */
  collected: number;
  /** Collections of this generation since the worker started. */
  collections: number;
  /** Objects found uncollectable (they went to `gc.garbage`) in this generation. */
  uncollectable: number;
}

/**
 * One worker's memory: the guide's `memory_stats` (`gcStats`, `gcCount`, `gcThreshold`, and the traced memory
 * while tracemalloc traces) plus what the host and the worker know about the process.
 *
 * When the worker's Python side does not answer within the stats timeout (1 s by default: it is stuck in a C call
 * that holds the GIL), `rss`/`peakRss`/`pid`/`uptime`/`memoryLimit` are still real, `calls` is the host's count of
 * answered requests, and the rest are placeholders: `gcStats` is `[]` (a live CPython always reports its
 * generations, so an empty `gcStats` is the sign), `gcCount` is `[0, 0, 0]`, `gcThreshold` is `[]`, `gcEnabled`
 * is `false`, and the traced-memory keys are absent.
 */
export interface WorkerMemoryStats {
  workerId: number;
  pid: number;
  /** The machine the worker runs on: `os.hostname()` here, its agent's for a remote worker. */
  host: string;
  /** Resident memory in bytes (`VmRSS` from `/proc`, read by the host): includes C extensions and fragmentation. `null` where unreadable. */
  rss: number | null;
  /** Highest resident memory in bytes so far (`VmHWM`): never goes down. `null` where unreadable. */
  peakRss: number | null;
  /** Per generation (0, 1, 2): objects collected, collections, uncollectable objects. */
  gcStats: GcGenerationStats[];
  /** Objects tracked per generation now (`gc.get_count()`). */
  gcCount: [number, number, number];
  /** The collection thresholds (`gc.get_threshold()`); they differ between Python versions. */
  gcThreshold: number[];
  /** Whether automatic collection is on (`gc.isenabled()`). */
  gcEnabled: boolean;
  /** Requests the worker has served. */
  calls: number;
  /** Seconds since the worker started. */
  uptime: number;
  /** The worker's memory cap in bytes, `null` when it has none. */
  memoryLimit: number | null;
  /** Bytes traced now (`tracemalloc.get_traced_memory()[0]`): present only while tracemalloc traces. */
  tracedMemoryCurrent?: number;
  /** Most bytes traced at once since tracing started: present only while tracemalloc traces. */
  tracedMemoryPeak?: number;
  /**
   * Objects this worker keeps for handles (`PyRef`s) not yet disposed: how many, and how many of each Python type
   * (most first). Handles the program forgets to dispose show up here. (Unanswered: the host's count, no types.)
   */
  handles: HandleCounts;
}

export interface HandleCounts {
  count: number;
  /** Python type name → live handles to objects of that type. */
  types: Record<string, number>;
}

/** Every answering worker's stats and what adds up across them. */
export interface PoolMemoryStats {
  workers: WorkerMemoryStats[];
  /** The container's limits and use, as its cgroup says (all null outside a limited cgroup). */
  container: ContainerInfo;
  totals: {
    /** Sum of `rss` (workers whose RSS is unreadable count 0). */
    rss: number;
    /** Sum of `peakRss`: an upper bound of the pool's peak, the workers peaked at different times. */
    peakRss: number;
    calls: number;
    /** Present when at least one worker traces. */
    tracedMemoryCurrent?: number;
    /** Present when at least one worker traces. */
    tracedMemoryPeak?: number;
    /** Objects collected, all generations and workers. */
    gcCollected: number;
    /** Uncollectable objects, all generations and workers. */
    gcUncollectable: number;
    /** Live handles, all workers. */
    handles: number;
  };
}

export interface MemoryStatsOptions {
  /**
   * How long in ms to wait for a worker's Python side; past it the stats hold what the host knows (see
   * {@link WorkerMemoryStats}). @default 1000
   */
  timeout?: number;
}

/** A generation for `gc(generation)`: 0 (youngest), 1 (0 and 1), 2 (full collection). */
export type GcGeneration = 0 | 1 | 2;

type BareDebugFlag = 'STATS' | 'COLLECTABLE' | 'UNCOLLECTABLE' | 'SAVEALL' | 'LEAK';
/** A flag of `gc.set_debug()`. `DEBUG_LEAK` is `COLLECTABLE | UNCOLLECTABLE | SAVEALL`. */
export type GcDebugFlag = `DEBUG_${BareDebugFlag}`;
/** A flag by name, with or without `DEBUG_`, in either case: `'DEBUG_SAVEALL'`, `'SAVEALL'`, `'saveall'`. */
export type GcDebugFlagName = GcDebugFlag | BareDebugFlag | Lowercase<GcDebugFlag | BareDebugFlag>;
/** Flags for `gcSetDebug`: a name, a list of names, or the numeric mask (`0` clears them). */
export type GcDebugFlags = number | GcDebugFlagName | readonly GcDebugFlagName[];

/** An object in `gc.garbage`. */
export interface GarbageObject {
  /** The type, qualified by its module unless built in or defined in `__main__`. */
  type: string;
  /** A short repr (reprlib-limited, cut to `reprLength` characters). */
  repr: string;
}

/** `gc.garbage` of one worker. */
export interface GcGarbage {
  workerId: number;
  /** Objects in `gc.garbage`. */
  count: number;
  /** The first `limit` of them. */
  objects: GarbageObject[];
}

export interface GcGarbageOptions {
  /** At most this many objects are described. @default 100 */
  limit?: number;
  /** Reprs are cut to this many characters. @default 200 */
  reprLength?: number;
}

/** How allocations are grouped: `tracemalloc`'s `key_type`. */
export type SnapshotGroupBy = 'lineno' | 'filename' | 'traceback';

export interface SnapshotOptions {
  /** @default 'lineno' */
  groupBy?: SnapshotGroupBy;
  /** How many sites to return (the biggest first). @default 10 */
  limit?: number;
}

export interface AllocationFrame {
  file: string;
  line: number;
}

/** Memory allocated at one site (a line, a file, or a traceback) and still alive. */
export interface AllocationSite {
  file: string;
  /** `null` when grouped by file. */
  line: number | null;
  /** Bytes. */
  size: number;
  /** Allocations (memory blocks). */
  count: number;
  /** For `'traceback'`: the user frames, most recent call LAST (the worker runtime's own frames left out). */
  frames?: AllocationFrame[];
}

/** How a site changed between two snapshots. */
export interface AllocationDiff extends AllocationSite {
  /** Bytes more (or, negative, fewer) than in the older snapshot. */
  sizeDiff: number;
  /** Allocations more (or fewer) than in the older snapshot. */
  countDiff: number;
}

export interface CompareOptions {
  /** How many rows to return (the largest `|sizeDiff|` first). @default 10 */
  limit?: number;
}

/** A referrer of an object, as `gc.get_referrers()` finds it. */
export interface ReferrerInfo {
  type: string;
  /** What it is and where, e.g. `namespace of context 3, name 'a'` or `closure variable 'data' of function f (...)`. */
  description: string;
}

/** What holds an object alive. */
export interface ReferenceInfo {
  workerId: number;
  expression: string;
  /** The object's type. */
  type: string;
  /** A short repr of the object. */
  repr: string;
  /**
   * References to the object, net of the probe's own: `sys.getrefcount(x)` in user code is this plus one (its
   * argument). An object the expression just created has 0.
   */
  refcount: number;
  /** Referrers the collector knows (containers it tracks; C code and untracked containers are not among them). */
  referrerCount: number;
  /** The first `limit` referrers, described. */
  referrers: ReferrerInfo[];
}

export interface ReferencesOptions {
  /** Describe at most this many referrers. @default 10 */
  limit?: number;
  /** The object's repr is cut to this many characters. @default 200 */
  reprLength?: number;
}

/** pymalloc's arena/pool summary from `sys._debugmallocstats()` (bytes unless said). */
export interface PymallocStats {
  /** Requests up to this size (bytes) are served by pymalloc; larger ones go to `malloc`. */
  smallBlockThreshold: number;
  /** One row per size class in use. */
  sizeClasses: Array<{ size: number; pools: number; blocksInUse: number; availableBlocks: number }>;
  arenasAllocatedTotal: number;
  arenasReclaimed: number;
  arenasHighwaterMark: number;
  arenasAllocatedCurrent: number;
  /** Bytes per arena (1 MiB on 3.10+, 256 KiB before). */
  arenaSize: number;
  /** `arenasAllocatedCurrent * arenaSize`. */
  arenaBytes: number;
  bytesInAllocatedBlocks: number;
  bytesInAvailableBlocks: number;
  unusedPools: number;
  /** Bytes per pool. */
  poolSize: number;
  unusedPoolBytes: number;
  bytesLostToPoolHeaders: number;
  bytesLostToQuantization: number;
  bytesLostToArenaAlignment: number;
  /** Total of the arena part. */
  total: number;
  /** Other lines of the report, by name, when the interpreter prints them (e.g. `arenaMapTotal`). */
  [other: string]: unknown;
}

/** Which allocator a worker uses, and pymalloc's state when it is the one. */
export interface AllocatorInfo {
  workerId: number;
  /** The `PYTHONMALLOC` environment variable of the worker, `null` when unset. */
  pythonMalloc: string | null;
  /** The allocator in use: `'pymalloc'`, `'malloc'`, `'mimalloc'`, with `'_debug'` when debug hooks are on. */
  allocator: string;
  /** Whether the debug hooks are installed (`PYTHONMALLOC=*_debug`, `-X dev`, or a debug build). */
  debugHooks: boolean;
  /** Whether the interpreter was built with pymalloc. */
  withPymalloc: boolean;
  /** `sys.getallocatedblocks()`: memory blocks allocated by the interpreter now. */
  allocatedBlocks: number;
  /** Whether tracemalloc is tracing (then pymalloc's summary is unavailable). */
  tracing: boolean;
  /** pymalloc's arena/pool summary, `null` where the interpreter does not print it. */
  pymalloc: PymallocStats | null;
  /** Why `pymalloc` is `null`, else `null`. */
  note: string | null;
  /** The whole `sys._debugmallocstats()` report, when asked with `{ text: true }`. */
  text?: string;
}

export interface AllocatorInfoOptions {
  /** Include the whole `sys._debugmallocstats()` report as `text`. @default false */
  text?: boolean;
}
