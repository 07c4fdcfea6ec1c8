/**
 * Command-line arguments: a small parser for `--name value`, `--name=value`, `-x value` and flags, with the
 * values checked and converted up front. Every problem is a {@link UsageError} (one line, exit status 2).
 */
import { parseSize } from '../util/size.js';

/** A bad command line: printed as one line on stderr, exit status 2. */
export class UsageError extends Error {
  /** The command whose `--help` to point at. */
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }
}

export type OptionKind = 'flag' | 'string' | 'int' | 'size' | 'duration';

export interface OptionSpec {
  /** Long name without dashes, e.g. `'max-memory'`. */
  name: string;
  /** One-letter alias without the dash. */
  short?: string;
  kind: OptionKind;
  /** What the value looks like in the help, e.g. `'FILE'`. */
  value?: string;
  help: string;
  /** For `int`: the smallest value allowed. */
  min?: number;
}

export type OptionValue = boolean | string | number;

export interface ParsedArgs {
  options: Map<string, OptionValue>;
  positionals: string[];
  /** For `script` mode: the script's own arguments. */
  rest: string[];
}

export interface ParseMode {
  /**
   * `'script'`: the first positional is a script; after it, options this command does not know (and everything
   * after `--`) belong to the script. `'fixed'`: at most `max` positionals.
   */
  kind: 'script' | 'fixed';
  max?: number;
}

function optionFor(specs: OptionSpec[], token: string): OptionSpec | undefined {
  if (token.startsWith('--')) return specs.find((s) => s.name === token.slice(2));
  if (/^-[A-Za-z]$/.test(token)) return specs.find((s) => s.short === token.slice(1));
  return undefined;
}

/** Parse `argv` (the arguments after the command name) against `specs`. */
export function parseArgs(argv: string[], specs: OptionSpec[], mode: ParseMode, command: string): ParsedArgs {
  const options = new Map<string, OptionValue>();
  const positionals: string[] = [];
  const rest: string[] = [];
  const inScript = () => mode.kind === 'script' && positionals.length > 0;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      const tail = argv.slice(i + 1);
      if (mode.kind === 'script' && positionals.length === 0 && tail.length > 0) positionals.push(tail.shift()!);
      (mode.kind === 'script' ? rest : positionals).push(...tail);
      break;
    }
    if (arg.startsWith('-') && arg !== '-') {
      const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
      // `-n5`: a short option with its value attached
      const attached = !arg.startsWith('--') && arg.length > 2 ? arg.slice(2) : undefined;
      const name = eq > 0 ? arg.slice(0, eq) : attached !== undefined ? arg.slice(0, 2) : arg;
      const spec = optionFor(specs, name);
      // After the script, its own options pass through, and so does `--help` (it is the script's question).
      if (inScript() && (!spec || spec.name === 'help')) {
        rest.push(arg);
        continue;
      }
      if (!spec) throw new UsageError(`unknown option '${name}'`, command);
      if (spec.kind === 'flag') {
        if (eq > 0 || attached !== undefined) throw new UsageError(`option '${name}' takes no value`, command);
        options.set(spec.name, true);
        continue;
      }
      let raw: string | undefined;
      if (eq > 0) raw = arg.slice(eq + 1);
      else if (attached !== undefined) raw = attached;
      else {
        raw = argv[++i];
        if (raw === undefined) throw new UsageError(`option '${name}' needs a value (${spec.value ?? spec.kind})`, command);
      }
      options.set(spec.name, convert(spec, raw, command));
      continue;
    }
    if (inScript()) rest.push(arg);
    else {
      if (mode.kind === 'fixed' && positionals.length >= (mode.max ?? 0)) {
        throw new UsageError(`unexpected argument '${arg}'`, command);
      }
      positionals.push(arg);
    }
  }
  return { options, positionals, rest };
}

function convert(spec: OptionSpec, raw: string, command: string): OptionValue {
  const name = `--${spec.name}`;
  switch (spec.kind) {
    case 'string':
      if (raw === '') throw new UsageError(`option '${name}' needs a non-empty value`, command);
      return raw;
    case 'int': {
      if (!/^\d+$/.test(raw.trim())) throw new UsageError(`option '${name}' must be a whole number, got '${raw}'`, command);
      const n = Number(raw);
      if (spec.min !== undefined && n < spec.min) throw new UsageError(`option '${name}' must be at least ${spec.min}, got ${n}`, command);
      return n;
    }
    case 'size':
      try {
        return parseSize(raw, name);
      } catch {
        throw new UsageError(`option '${name}' must be a size like 512MB or 1GiB, got '${raw}'`, command);
      }
    case 'duration':
      return parseDuration(raw, name, command);
    default:
      return true;
  }
}

/** `30` (seconds), `1.5s`, `500ms`, `2m`, `1h` → milliseconds. */
export function parseDuration(raw: string, name: string, command: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*$/.exec(raw);
  if (!match) throw new UsageError(`option '${name}' must be a duration like 30, 30s, 500ms or 2m, got '${raw}'`, command);
  const scale = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000 }[match[2] ?? 's']!;
  const ms = Number(match[1]) * scale;
  if (ms <= 0) throw new UsageError(`option '${name}' must be longer than 0, got '${raw}'`, command);
  return ms;
}

/** The help lines of a list of options, aligned. */
export function optionHelp(specs: OptionSpec[]): string {
  const heads = specs.map((s) => {
    const long = `--${s.name}${s.kind === 'flag' ? '' : ` ${s.value ?? s.kind.toUpperCase()}`}`;
    return s.short ? `-${s.short}, ${long}` : `    ${long}`;
  });
  const width = Math.max(...heads.map((h) => h.length));
  return specs.map((s, i) => `  ${heads[i]!.padEnd(width)}  ${s.help}`).join('\n');
}
