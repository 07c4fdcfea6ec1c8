/**
 * Argument checks, one vocabulary for the whole package. A value of the wrong type is an `ArgumentError` (a
 * `TypeError`), a number out of range an `ArgumentRangeError` (a `RangeError`); every message names the argument
 * or option (`options.workers must be an integer >= 1, got 0`).
 */
import { ArgumentError, ArgumentRangeError } from './errors.js';

/** A short description of a value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number' || typeof value === 'string') return JSON.stringify(value);
  return typeof value;
}

export function checkObject(value: unknown, name: string): asserts value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ArgumentError(`${name} must be an object, got ${describe(value)}`);
  }
}

/** Unknown names are mistakes: refuse them, naming the known ones. */
export function checkKnownKeys(value: object, known: ReadonlySet<string> | readonly string[], where: string): void {
  const has = (key: string) => (Array.isArray(known) ? (known as readonly string[]).includes(key) : (known as ReadonlySet<string>).has(key));
  for (const key of Object.keys(value)) {
    if (!has(key)) throw new ArgumentError(`Unknown option '${key}' in ${where} (known: ${[...known].join(', ')})`);
  }
}

/** An options object that may be absent: its own keys checked against `known`. */
export function checkOptions<T extends object>(options: unknown, name: string, known: readonly string[]): Partial<T> {
  if (options === undefined || options === null) return {};
  checkObject(options, name);
  checkKnownKeys(options, known, name);
  return options as Partial<T>;
}

/** An integer from `min` to `max` (default: no upper bound); with `allowInfinity`, `Infinity` too. */
export function checkInteger(value: unknown, name: string, min: number, { max = Number.MAX_SAFE_INTEGER, allowInfinity = false } = {}): number {
  if (allowInfinity && value === Infinity) return Infinity;
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new (typeof value === 'number' ? ArgumentRangeError : ArgumentError)(`${name} must be an integer, got ${describe(value)}`);
  }
  if (value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new ArgumentRangeError(`${name} must be an integer ${range}, got ${value}`);
  }
  return value;
}

export function checkMilliseconds(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new (typeof value === 'number' ? ArgumentRangeError : ArgumentError)(`${name} must be a number of milliseconds >= 0, got ${describe(value)}`);
  }
  return value;
}

export function checkString(value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '') throw new ArgumentError(`${name} must be a non-empty string, got ${typeof value === 'string' ? "''" : describe(value)}`);
  return value;
}

export function checkStringArray(value: unknown, name: string): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw new ArgumentError(`${name} must be an array of strings`);
  return [...(value as string[])];
}

export function checkBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw new ArgumentError(`${name} must be a boolean, got ${describe(value)}`);
  return value;
}

export function checkOneOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    throw new ArgumentError(`${name} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${typeof value === 'string' ? `'${value}'` : describe(value)}`);
  }
  return value as T;
}

/** The arguments of a call: an array. */
export function checkArgs(args: unknown): unknown[] {
  if (!Array.isArray(args)) throw new ArgumentError(`args must be an array, got ${describe(args)}`);
  return args;
}

/** Python source: a string. */
export function checkCode(code: unknown): string {
  if (typeof code !== 'string') throw new ArgumentError(`code must be a string, got ${describe(code)}`);
  return code;
}

/** Local variables of an eval: a plain object, or nothing. */
export function checkLocals(locals: unknown): Record<string, unknown> | undefined {
  if (locals === undefined || locals === null) return undefined;
  if (typeof locals !== 'object' || Array.isArray(locals)) throw new ArgumentError(`locals must be a plain object, got ${describe(locals)}`);
  return locals as Record<string, unknown>;
}

export function checkFunction<F extends (...args: any[]) => unknown>(value: unknown, name: string): F {
  if (typeof value !== 'function') throw new ArgumentError(`${name} must be a function, got ${describe(value)}`);
  return value as F;
}

/** A host function's name: what Python writes after `host.` (an identifier), or passes to `host.call()`. */
export function checkFunctionName(value: unknown, name: string): string {
  if (typeof value !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(value)) {
    throw new ArgumentError(`${name}: a host function's name must be a Python identifier (letters, digits, _), got ${describe(value)}`);
  }
  return value;
}
