/**
 * Argument checks of the memory API. Type mistakes are `ArgumentError` (a `TypeError`), numbers out of range
 * `ArgumentRangeError` (a `RangeError`).
 */
import { ArgumentError, ArgumentRangeError } from '../errors.js';
import type { GcDebugFlags, GcGeneration, SnapshotGroupBy } from './types.js';

/** tracemalloc's own bound on frames per traceback. */
export const MAX_FRAMES = 65535;
export const GROUP_BY: readonly SnapshotGroupBy[] = ['lineno', 'filename', 'traceback'];
const DEBUG_NAMES = ['STATS', 'COLLECTABLE', 'UNCOLLECTABLE', 'SAVEALL', 'LEAK'];

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'number' || typeof value === 'string') return JSON.stringify(value);
  return typeof value;
}

export function checkInt(value: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number') throw new ArgumentError(`${name} must be an integer, got ${describe(value)}`);
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new ArgumentRangeError(`${name} must be an integer ${range}, got ${value}`);
  }
  return value;
}

export function checkGeneration(generation: unknown): GcGeneration {
  if (generation === undefined) return 2;
  return checkInt(generation, 'generation', 0, 2) as GcGeneration;
}

export function checkFrames(frames: unknown): number {
  if (frames === undefined) return 1;
  return checkInt(frames, 'frames', 1, MAX_FRAMES);
}

export function checkOptions<T extends object>(options: unknown, name: string, keys: readonly string[]): Partial<T> {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) throw new ArgumentError(`${name} must be an object`);
  for (const key of Object.keys(options)) {
    if (!keys.includes(key)) throw new ArgumentError(`Unknown option ${name}.${key} (known: ${keys.join(', ')})`);
  }
  return options as Partial<T>;
}

export function optionalInt(value: unknown, name: string, fallback: number, min = 1): number {
  return value === undefined ? fallback : checkInt(value, name, min);
}

export function checkGroupBy(value: unknown): SnapshotGroupBy {
  if (value === undefined) return 'lineno';
  if (!GROUP_BY.includes(value as SnapshotGroupBy)) {
    throw new ArgumentError(`options.groupBy must be one of ${GROUP_BY.map((g) => `'${g}'`).join(', ')}, got ${describe(value)}`);
  }
  return value as SnapshotGroupBy;
}

export function checkThresholds(thresholds: unknown[]): number[] {
  if (thresholds.length < 1 || thresholds.length > 3) {
    throw new ArgumentError(`gcSetThreshold() takes 1 to 3 thresholds (generations 0, 1, 2), got ${thresholds.length}`);
  }
  return thresholds.map((t, i) => checkInt(t, `threshold${i}`, 0, 2 ** 31 - 1));
}

/** Debug flags as the worker takes them: a mask, or names normalised to `DEBUG_*`. */
export function checkDebugFlags(flags: GcDebugFlags): number | string[] {
  if (typeof flags === 'number') return checkInt(flags, 'flags', 0, 2 ** 31 - 1);
  const list: unknown[] = typeof flags === 'string' ? [flags] : Array.isArray(flags) ? flags : [flags];
  return list.map((flag) => {
    if (typeof flag !== 'string') throw new ArgumentError(`gc debug flags must be names or a number, got ${describe(flag)}`);
    const bare = flag.toUpperCase().replace(/^DEBUG_/, '');
    if (!DEBUG_NAMES.includes(bare)) {
      throw new ArgumentError(`Unknown gc debug flag ${JSON.stringify(flag)} (known: ${DEBUG_NAMES.map((n) => `DEBUG_${n}`).join(', ')})`);
    }
    return `DEBUG_${bare}`;
  });
}

export function checkExpression(expression: unknown): string {
  if (typeof expression !== 'string' || expression.trim() === '') {
    throw new ArgumentError(`expression must be a non-empty string, got ${describe(expression)}`);
  }
  return expression;
}
