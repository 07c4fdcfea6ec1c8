/**
 * Python tuples on the JavaScript side: a frozen array carrying a non-enumerable brand. The encoder sends a branded
 * array as a Python `tuple`; any other array becomes a `list`. (Tuples that come back from Python are plain arrays.)
 */

/** The brand: a non-enumerable own property whose value is `true`. */
export const kTuple: unique symbol = Symbol.for('pyworkers.tuple');

/** Make a Python tuple: `tuple(1, 'a')` arrives in Python as `(1, 'a')`. The array is frozen. */
export function tuple<T extends unknown[]>(...items: T): Readonly<T> {
  Object.defineProperty(items, kTuple, { value: true });
  return Object.freeze(items);
}

/** True for arrays made by {@link tuple}. */
export function isTuple(v: unknown): boolean {
  return Array.isArray(v) && (v as unknown as Record<symbol, unknown>)[kTuple] === true;
}
