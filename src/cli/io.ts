/**
 * What the commands share: the streams they write to, the tool's version, help rendering.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { optionHelp, type OptionSpec } from './args.js';

export interface OutStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface Io {
  stdout: OutStream;
  stderr: OutStream;
}

let version: string | undefined;

/** The version in pyworkers' package.json. */
export function toolVersion(): string {
  if (version === undefined) {
    try {
      const file = fileURLToPath(new URL('../../package.json', import.meta.url));
      version = String((JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown }).version ?? 'unknown');
    } catch {
      version = 'unknown';
    }
  }
  return version;
}

/** A help text with its `{options}` placeholder filled in. */
export function renderHelp(text: string, options: OptionSpec[]): string {
  return text.replace('{options}', optionHelp(options));
}
