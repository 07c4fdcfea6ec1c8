/**
 * Argument checks of the memory API, in the package's one vocabulary (../validate.ts).
 */
import { ArgumentError } from '../errors.js';
import { checkInteger, describe } from '../validate.js';
import type { GcDebugFlags, GcGeneration, SnapshotGroupBy } from './types.js';

/** tracemalloc's own bound on frames per traceback. */
export const MAX_FRAMES = 65535;
export const GROUP_BY: readonly SnapshotGroupBy[] = ['lineno', 'filename', 'traceback'];
const DEBUG_NAMES = ['STATS', 'COLLECTABLE', 'UNCOLLECTABLE', 'SAVEALL', 'LEAK'];

export function checkGeneration(generation: unknown): GcGeneration {
  if (generation === undefined) return 2;
  return checkInteger(generation, 'generation', 0, { max: 2 }) as GcGeneration;
}

export function checkFrames(frames: unknown): number {
  if (frames === undefined) return 1;
  return checkInteger(frames, 'frames', 1, { max: MAX_FRAMES });
}

export function optionalInt(value: unknown, name: string, fallback: number, min = 1): number {
  return value === undefined ? fallback : checkInteger(value, name, min);
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
  return thresholds.map((t, i) => checkInteger(t, `threshold${i}`, 0, { max: 2 ** 31 - 1 }));
}

/** Debug flags as the worker takes them: a mask, or names normalised to `DEBUG_*`. */
export function checkDebugFlags(flags: GcDebugFlags): number | string[] {
  if (typeof flags === 'number') return checkInteger(flags, 'flags', 0, { max: 2 ** 31 - 1 });
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
