/**
 * One 'abort' listener per signal, whatever the number of calls that share it: a listener each would pass
 * Node's limit of 10 and print a MaxListenersExceededWarning for a program that does nothing wrong.
 */
const waiting = new WeakMap<AbortSignal, Set<() => void>>();

/** Call `fn` when `signal` aborts; returns what forgets it. */
export function onAbort(signal: AbortSignal, fn: () => void): () => void {
  let fns = waiting.get(signal);
  if (!fns) {
    const set = (fns = new Set());
    waiting.set(signal, set);
    signal.addEventListener(
      'abort',
      () => {
        waiting.delete(signal);
        for (const f of set) f();
      },
      { once: true },
    );
  }
  fns.add(fn);
  const set = fns;
  return () => set.delete(fn);
}
