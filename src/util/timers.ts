/**
 * Timers for delays the user gives. Node's timers take at most 2**31 - 1 ms (24.8 days); a longer delay fires
 * after 1 ms. A delay beyond that bound is taken as "practically never": no timer at all.
 */

/** The longest delay a Node timer takes, in ms. */
const MAX_DELAY = 2 ** 31 - 1;

/** `setTimeout(fn, ms)`, unref'd (it never keeps the process alive); undefined when `ms` is beyond MAX_DELAY. */
export function after(ms: number, fn: () => void): NodeJS.Timeout | undefined {
  if (!(ms <= MAX_DELAY)) return undefined;
  const timer = setTimeout(fn, ms);
  timer.unref();
  return timer;
}

/** `setInterval(fn, ms)`, unref'd; undefined when `ms` is beyond MAX_DELAY. */
export function every(ms: number, fn: () => void): NodeJS.Timeout | undefined {
  if (!(ms <= MAX_DELAY)) return undefined;
  const timer = setInterval(fn, ms);
  timer.unref();
  return timer;
}
