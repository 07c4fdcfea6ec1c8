/**
 * Plain-language hints: where the report's figures match a situation the Python memory tutorials give advice
 * for (cycles and uncollectable objects, one site holding most memory, memory tracemalloc cannot see, growth
 * that never came back, a disabled collector, the cap).
 */
import { bytes, percent, site } from './format.js';
import type { Hint, RunReport } from './report.js';

const MiB = 1024 * 1024;

type Facts = Omit<RunReport, 'hints'>;

export function hintsFor(r: Facts): Hint[] {
  const hints: Hint[] = [];
  const tracingSource = r.settings.mode === 'sample' ? 'sampled tracing' : 'full tracing';
  const SOURCES: Record<string, Hint['source']> = {
    'memory-cap': 'outcome', uncollectable: 'gc', cycles: 'gc', 'gc-off': 'gc', 'one-site': tracingSource, growth: tracingSource,
    'kept-alive': tracingSource, untraced: 'full tracing', fragmentation: 'full tracing', 'no-trace': 'rss', frames: 'full tracing', 'sampled-growth': 'sampled tracing',
  };
  const add = (id: string, title: string, text: string) => hints.push({ id, title, text, source: SOURCES[id] ?? 'rss' });
  const { memory, gc, top, snapshot, outcome } = r;

  if (outcome.ending === 'memory-cap' || outcome.ending === 'out-of-memory') {
    const biggest = top[0];
    add(
      'memory-cap',
      outcome.ending === 'memory-cap' ? 'The script hit the memory cap' : 'The script ran out of memory',
      `${outcome.ending === 'memory-cap' ? `It needed more than the ${bytes(memory.maxMemory)} allowed by --max-memory` : 'An allocation failed with MemoryError'}` +
        `${memory.tracedPeak !== null ? `; Python objects peaked at ${bytes(memory.tracedPeak)}` : ''}. ` +
        (biggest ? `The largest site still holding memory is ${site(biggest.file, biggest.line)}. ` : '') +
        'Build large results piece by piece: iterate with a generator instead of building a list, read files in chunks ' +
        '(e.g. pandas read_csv(chunksize=...)), and keep numbers in array/NumPy arrays rather than lists of int objects.',
    );
  }

  const uncollectable = gc.generations.reduce((n, g) => n + g.uncollectable, 0);
  if (gc.garbage.count > 0 || uncollectable > 0) {
    const named = gc.garbage.types.slice(0, 4).map((t) => `${t.count} × ${t.type}`).join(', ');
    add(
      'uncollectable',
      'Objects the garbage collector could not free',
      `gc.garbage holds ${gc.garbage.count} object${gc.garbage.count === 1 ? '' : 's'}${named ? ` (${named})` : ''}` +
        `${uncollectable ? `; the collector reported ${uncollectable} uncollectable` : ''}. ` +
        'They stay in memory for the life of the process. They are usually reference cycles kept by gc.DEBUG_SAVEALL ' +
        '(set by gc.DEBUG_LEAK) or objects of C extensions with finalizers. Break the cycle with weakref ' +
        '(weakref.ref / WeakValueDictionary) or clear the back-reference when done, and do not leave DEBUG_SAVEALL on.',
    );
  }

  const collected = gc.generations.reduce((n, g) => n + g.collected, 0);
  if (collected >= 10_000) {
    add(
      'cycles',
      'Many objects were freed only by the cycle collector',
      `The garbage collector found ${collected.toLocaleString('en-US')} unreachable objects in reference cycles during the run. ` +
        'Reference counting frees everything else at once; objects in cycles wait for a collection, so memory ' +
        'stays high in between. Use weakref for back-references (parent pointers, caches, callbacks) so that ' +
        'the objects are freed as soon as they are unused.',
    );
  }

  if (gc.enabled === false) {
    add(
      'gc-disabled',
      'The garbage collector was off',
      'gc.isenabled() was False when the script ended: reference cycles are never freed while it is off. ' +
        'Call gc.enable() again (or gc.collect() at quiet moments) after the section that needed it off.',
    );
  }

  const held = snapshot?.totalSize ?? 0;
  const first = top[0];
  if (first && held >= MiB && first.size / held >= 0.5) {
    add(
      'one-site',
      'One line holds most of the memory',
      `${site(first.file, first.line)}${first.function && first.function !== '<module>' ? ` (in ${first.function})` : ''} ` +
        `holds ${bytes(first.size)} in ${first.count.toLocaleString('en-US')} blocks: ${percent(first.size, held)} of the traced memory still allocated at the end. ` +
        'If the data is only needed once, drop the reference when done (del, or let the function return); ' +
        'if it is a growing cache or list, bound it (functools.lru_cache(maxsize=...), collections.deque(maxlen=...)) ' +
        'or produce the items lazily with a generator.',
    );
  }

  // (the windows must have seen a line keep real memory: RSS also rises as the allocator and the interpreter warm up)
  if (r.settings.mode === 'sample' && top.length > 0 && top[0]!.size >= MiB && growsSteadily(r, 'rss')) {
    const first = top[0]!;
    add(
      'sampled-growth',
      'Memory kept growing',
      `RSS kept rising through the run (its trend, temporary peaks left out), and in the tracing windows ` +
        `${site(first.file, first.line)} grew the most (${bytes(first.size)} kept)` +
        `${first.keptAliveBy ? `, kept alive by ${first.keptAliveBy}` : ''}. ` +
        'If the script is a loop over work items, something keeps a reference (a module-level list or dict, a ' +
        "cache, a closure): drop it when done, or bound it. 'pyworkers leaks module:function' measures a function call by call.",
    );
  }

  if (memory.tracedFinal !== null && memory.tracedPeak !== null && memory.tracedFinal >= 5 * MiB && memory.tracedFinal >= 0.8 * memory.tracedPeak && r.timeline.length >= 4 && growsSteadily(r, 'traced')) {
    add(
      'growth',
      'Memory grew and was still held at the end',
      `Traced memory kept rising through the run and ${bytes(memory.tracedFinal)} was still allocated when the script ended. ` +
        'If the script is a loop over work items, that is what a leak looks like: something keeps a reference ' +
        '(a module-level list or dict, a cache, a closure, a global registry). To find it, make the body of ' +
        "the loop a function and run 'pyworkers leaks module:function'.",
    );
  }

  // tracemalloc's own bookkeeping is in RSS too: it is not the script's, and not a C extension's
  const ownRss = memory.peakRss === null ? null : memory.peakRss - (memory.tracemallocOverhead ?? 0);
  if (ownRss !== null && memory.tracedPeak !== null && ownRss - memory.tracedPeak >= 64 * MiB && ownRss >= 3 * memory.tracedPeak) {
    add(
      'untraced',
      'Most of the memory is outside what tracemalloc sees',
      `Peak RSS was ${bytes(memory.peakRss)}${memory.tracemallocOverhead ? ` (${bytes(memory.tracemallocOverhead)} of it tracemalloc's own bookkeeping, left out here)` : ''} but Python allocations peaked at ${bytes(memory.tracedPeak)}. ` +
        'The rest is memory of C extensions (NumPy and PyArrow buffers, often through their own allocators), ' +
        'the interpreter itself, and fragmentation. A native-aware profiler (Memray with --native, or Scalene) ' +
        'shows those allocations.',
    );
  }

  if (
    memory.finalRss !== null && memory.peakRss !== null && memory.tracedFinal !== null && memory.tracedPeak !== null &&
    memory.tracedPeak >= 32 * MiB && memory.tracedFinal <= 0.25 * memory.tracedPeak && memory.finalRss >= 0.6 * memory.peakRss
  ) {
    add(
      'fragmentation',
      'RSS stayed high after Python freed its objects',
      `Python freed most of what it allocated (traced memory ${bytes(memory.tracedPeak)} → ${bytes(memory.tracedFinal)}), yet RSS stayed at ` +
        `${bytes(memory.finalRss)}. Freed small objects go back to pymalloc's arenas, and an arena returns to the ` +
        'operating system only when every object in it is freed: a few survivors pin it. Only a new process gives ' +
        "all of it back; in a service, let pyworkers recycle the worker (createPool's memory options).",
    );
  }

  if (!r.settings.tracing) {
    add('no-trace', 'Allocation sites were not traced', 'The script ran with --no-trace: only RSS was measured. Run without it to see which lines allocate.');
  } else if (r.settings.mode === 'full' && r.settings.frames === 1 && r.stacks.length > 0) {
    add('frames', 'Tracebacks are one frame deep', 'Run with --frames 8 (or more) to see who called the lines that allocate, in the flame graph. More frames cost more time.');
  }
  return hints;
}

/**
 * Whether memory kept rising through the run, judged on its trend: the minima of consecutive windows of readings
 * (temporary allocations make peaks and falls; what stays makes the floor rise), rising in most windows and in
 * the last ones, by a fair share of where it started.
 */
export function growsSteadily(r: Pick<Facts, 'timeline'>, series: 'traced' | 'rss'): boolean {
  const values = r.timeline.map((s) => s[series]).filter((v): v is number => v !== null);
  if (values.length < 6) return false;
  const size = Math.max(1, Math.floor(values.length / 6));
  const minima: number[] = [];
  for (let i = 0; i + size <= values.length; i += size) minima.push(Math.min(...values.slice(i, i + size)));
  if (minima.length < 4) return false;
  let rising = 0;
  for (let i = 1; i < minima.length; i++) if (minima[i]! > minima[i - 1]!) rising++;
  const first = minima[0]!;
  const last = minima[minima.length - 1]!;
  const lastRise = minima[minima.length - 1]! > minima[minima.length - 2]! || minima[minima.length - 2]! > minima[minima.length - 3]!;
  return rising >= 0.6 * (minima.length - 1) && lastRise && last - first >= Math.max(MiB, 0.2 * first);
}
