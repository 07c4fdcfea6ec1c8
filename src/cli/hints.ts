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
  const add = (id: string, title: string, text: string) => hints.push({ id, title, text });
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

  if (memory.tracedFinal !== null && memory.tracedPeak !== null && memory.tracedFinal >= 5 * MiB && memory.tracedFinal >= 0.8 * memory.tracedPeak && r.timeline.length >= 4 && growsSteadily(r)) {
    add(
      'growth',
      'Memory grew and was still held at the end',
      `Traced memory kept rising through the run and ${bytes(memory.tracedFinal)} was still allocated when the script ended. ` +
        'If the script is a loop over work items, that is what a leak looks like: something keeps a reference ' +
        '(a module-level list or dict, a cache, a closure, a global registry). To find it, make the body of ' +
        "the loop a function and run 'pyworkers leaks module:function'.",
    );
  }

  if (memory.peakRss !== null && memory.tracedPeak !== null && memory.peakRss - memory.tracedPeak >= 64 * MiB && memory.peakRss >= 3 * memory.tracedPeak) {
    add(
      'untraced',
      'Most of the memory is outside what tracemalloc sees',
      `Peak RSS was ${bytes(memory.peakRss)} but Python allocations peaked at ${bytes(memory.tracedPeak)}. ` +
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
  } else if (r.settings.frames === 1 && r.stacks.length > 0) {
    add('frames', 'Tracebacks are one frame deep', 'Run with --frames 8 (or more) to see who called the lines that allocate, in the flame graph. More frames cost more time.');
  }
  return hints;
}

/** Whether traced memory rose through most of the run (more rises than falls between readings). */
function growsSteadily(r: Facts): boolean {
  const values = r.timeline.map((s) => s.traced).filter((v): v is number => v !== null);
  if (values.length < 4) return false;
  let up = 0;
  let down = 0;
  for (let i = 1; i < values.length; i++) {
    const d = values[i]! - values[i - 1]!;
    if (d > 0) up++;
    else if (d < 0) down++;
  }
  return up >= 2 * down && values[values.length - 1]! > values[0]! * 2;
}
