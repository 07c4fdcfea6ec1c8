/**
 * What every measured thing (pyworkers, the floor, each peer) offers, and the measures they share.
 */
import { clean, median, percentile, repeat, sequential, throughput, type Watch } from './measure.js';
import type { Placement } from './pin.js';

/** One started bridge to Python. Optional methods are rows that do not apply. */
export interface Bridge {
  /** A trivial call: `echo(1)`. */
  ping(): Promise<unknown>;
  blobOut?(): Promise<Uint8Array | ArrayBuffer>;
  bytesIn?(data: Uint8Array): Promise<number>;
  intsOut?(n: number): Promise<ArrayLike<number>>;
  intsIn?(values: number[]): Promise<number>;
  dictOut?(n: number): Promise<Record<string, string>>;
  dictIn?(dict: Record<string, string>): Promise<number>;
  /** The 2**20-element float64 array made once in Python, as a view of its 8 MiB (any view: checked bytewise). */
  arrayOut?(): Promise<ArrayBufferView>;
  /** `payloads.array` passed to Python; the element count Python saw. */
  arrayIn?(data: Float64Array): Promise<number>;
  /** Pid of the Python process, when there is one. */
  pythonPid?(): number | undefined;
  close(): Promise<void>;
}

export const INTS = 100_000;
export const DICT = 10_000;
export const ONE_MIB = 1 << 20;
/** Elements of the float64 array rows (8 MiB). */
export const FLOATS = 1 << 20;

export const payloads = {
  bytes: (() => {
    const b = new Uint8Array(ONE_MIB);
    for (let i = 0; i < b.length; i++) b[i] = i & 0xff;
    return b;
  })(),
  ints: Array.from({ length: INTS }, (_, i) => i),
  dict: Object.fromEntries(Array.from({ length: DICT }, (_, i) => [`k${i}`, `v${i}`])) as Record<string, string>,
  array: Float64Array.from({ length: FLOATS }, (_, i) => i),
};

export type Sized = 'blobOut' | 'bytesIn' | 'arrayOut' | 'arrayIn' | 'intsOut' | 'intsIn' | 'dictOut' | 'dictIn';
export const SIZED: Sized[] = ['blobOut', 'bytesIn', 'arrayOut', 'arrayIn', 'intsOut', 'intsIn', 'dictOut', 'dictIn'];

/** The call that row `kind` times, checking the answer so a broken bridge cannot look fast. */
export function sizedCall(bridge: Bridge, kind: Sized): (() => Promise<unknown>) | undefined {
  switch (kind) {
    case 'blobOut':
      return bridge.blobOut && (async () => expect((await bridge.blobOut!()).byteLength, ONE_MIB, kind));
    case 'bytesIn':
      return bridge.bytesIn && (async () => expect(await bridge.bytesIn!(payloads.bytes), ONE_MIB, kind));
    case 'arrayOut':
      return bridge.arrayOut && (async () => expect(lastFloat64(await bridge.arrayOut!()), FLOATS - 1, kind));
    case 'arrayIn':
      return bridge.arrayIn && (async () => expect(await bridge.arrayIn!(payloads.array), FLOATS, kind));
    case 'intsOut':
      return bridge.intsOut && (async () => expect((await bridge.intsOut!(INTS))[INTS - 1], INTS - 1, kind));
    case 'intsIn':
      return bridge.intsIn && (async () => expect(await bridge.intsIn!(payloads.ints), INTS, kind));
    case 'dictOut':
      return bridge.dictOut && (async () => expect((await bridge.dictOut!(DICT))[`k${DICT - 1}`], `v${DICT - 1}`, kind));
    case 'dictIn':
      return bridge.dictIn && (async () => expect(await bridge.dictIn!(payloads.dict), DICT, kind));
  }
}

/** The last float64 of an 8 MiB view, read bytewise: a Buffer cut from a stream need not be 8-byte aligned. */
function lastFloat64(view: ArrayBufferView): number | undefined {
  if (view.byteLength !== FLOATS * 8) return undefined;
  return new DataView(view.buffer, view.byteOffset, view.byteLength).getFloat64(view.byteLength - 8, true);
}

function expect(got: unknown, want: unknown, what: string): void {
  if (got !== want) throw new Error(`${what}: expected ${String(want)}, got ${String(got)}`);
}

export interface CommonResults {
  /** µs, one call at a time, host and Python on one CPU */
  latencySameMedian?: number;
  latencySameP99?: number;
  /** µs, one call at a time, host and Python on separate CPUs */
  latencySepMedian?: number;
  latencySepP99?: number;
  callsPerSec64?: number;
  /** ms, medians */
  blobOut?: number;
  bytesIn?: number;
  arrayOut?: number;
  arrayIn?: number;
  intsOut?: number;
  intsIn?: number;
  dictOut?: number;
  dictIn?: number;
  idleRssMiB?: number;
  /** Per measure: the largest share of the machine other processes took during a kept measurement. */
  disturbance?: Record<string, number>;
}

/**
 * The shared measures for a bridge measured alone (the peers); pyworkers and the floor run the same steps,
 * interleaved, in run.ts. `place` pins the host and the bridge's Python (see lib/pin.ts).
 */
export async function measureAlone(
  bridge: Bridge,
  opts: { latencyCount: number; throughputMs: number; rounds: number; sizedBudgetMs: number },
  place: (placement: Placement) => void,
  watch: Watch,
): Promise<CommonResults> {
  const out: CommonResults = {};
  const disturbance: Record<string, number> = (out.disturbance = {});
  const unit = async <T>(id: string, fn: () => Promise<T>): Promise<T> => {
    const r = await clean(watch, fn);
    disturbance[id] = Math.max(disturbance[id] ?? 0, r.other);
    return r.value;
  };
  for (const placement of ['same', 'separate'] as const) {
    place(placement);
    const samples: number[] = [];
    await sequential(() => bridge.ping(), 500);
    const key = placement === 'same' ? 'Same' : 'Sep';
    for (let r = 0; r < opts.rounds; r++) samples.push(...(await unit(`latency${key}Median`, () => sequential(() => bridge.ping(), opts.latencyCount))));
    out[`latency${key}Median`] = median(samples) * 1000;
    out[`latency${key}P99`] = percentile(samples, 99) * 1000;
    disturbance[`latency${key}P99`] = disturbance[`latency${key}Median`]!;
  }
  place('separate');
  const rates: number[] = [];
  await throughput(() => bridge.ping(), 64, 200);
  for (let r = 0; r < opts.rounds; r++) rates.push(await unit('tput1', () => throughput(() => bridge.ping(), 64, opts.throughputMs)));
  out.callsPerSec64 = median(rates);
  place('same');
  for (const kind of SIZED) {
    const call = sizedCall(bridge, kind);
    if (!call) continue;
    out[kind] = median(await unit(kind, () => repeat(call, { reps: 30, warmup: 2, budgetMs: opts.sizedBudgetMs, min: 5 })));
  }
  place('free');
  return out;
}
