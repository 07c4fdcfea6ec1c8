import { ArgumentError, ArgumentRangeError } from '../errors.js';

const UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
};

/**
 * Parse a size: a number of bytes, or a string such as `'512MB'`, `'1.5 GiB'`, `'800mb'`.
 * `KB`/`MB`/`GB` are powers of 1000, `KiB`/`MiB`/`GiB` (and bare `K`/`M`/`G`) powers of 1024.
 */
export function parseSize(value: unknown, name: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value <= 0) throw new ArgumentRangeError(`${name} must be a positive number of bytes, got ${value}`);
    return Math.floor(value);
  }
  if (typeof value !== 'string') throw new ArgumentError(`${name} must be a number of bytes or a size string like '512MB', got ${typeof value}`);
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = match ? UNITS[(match[2] || 'b').toLowerCase()] : undefined;
  if (!match || unit === undefined) throw new ArgumentError(`${name} must be a size like '512MB' or '1GiB', got '${value}'`);
  const bytes = Math.floor(Number(match[1]) * unit);
  if (bytes <= 0) throw new ArgumentRangeError(`${name} must be larger than 0, got '${value}'`);
  return bytes;
}

/** Format bytes for people: `1.5 MiB`. */
export function formatBytes(bytes: number): string {
  const sign = bytes < 0 ? '-' : '';
  let n = Math.abs(bytes);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${sign}${i === 0 ? n : n.toFixed(n >= 100 ? 0 : 1)} ${units[i]}`;
}
