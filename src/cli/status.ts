/**
 * The live status line while a script runs: on a terminal, one line redrawn a few times a second; elsewhere a
 * plain line every few seconds; or nothing (`--quiet`).
 */
import { bytes, seconds } from './format.js';
import { paintFor } from './text-report.js';

export type StatusMode = 'tty' | 'plain' | 'off';

export interface StatusFigures {
  elapsedMs: number;
  rss: number | null;
  traced: number | null;
  tracedPeak: number | null;
  /** Collections so far per generation (during the run). */
  collections: number[];
}

export interface StatusStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

const TTY_EVERY_MS = 250;
const PLAIN_EVERY_MS = 5000;
const REDRAW_MS = 40;

/** The status text, e.g. `12.3s  RSS 45.1 MiB  traced 30.2 MiB (peak 31.0 MiB)  gc 120/11/1`. */
export function statusText(f: StatusFigures): string {
  const parts = [seconds(f.elapsedMs), `RSS ${bytes(f.rss)}`];
  if (f.traced !== null) parts.push(`traced ${bytes(f.traced)} (peak ${bytes(f.tracedPeak)})`);
  if (f.collections.length) parts.push(`gc ${f.collections.join('/')}`);
  return parts.join('  ');
}

export class StatusLine {
  readonly #stream: StatusStream;
  readonly #mode: StatusMode;
  readonly #read: () => StatusFigures | undefined;
  #timer: NodeJS.Timeout | undefined;
  #redraw: NodeJS.Timeout | undefined;
  #shown = false;
  #atLineStart = true;

  /** @param read the latest figures, or undefined before the first reading */
  constructor(stream: StatusStream, mode: StatusMode, read: () => StatusFigures | undefined) {
    this.#stream = stream;
    this.#mode = mode;
    this.#read = read;
  }

  get mode(): StatusMode {
    return this.#mode;
  }

  start(): void {
    if (this.#mode === 'off' || this.#timer) return;
    const every = this.#mode === 'tty' ? TTY_EVERY_MS : PLAIN_EVERY_MS;
    this.#timer = setInterval(() => this.#tick(), every);
    this.#timer.unref();
  }

  /** Before the script's output is written: take the line off the screen. */
  clear(): void {
    if (this.#mode === 'tty' && this.#shown) {
      this.#stream.write('\r\x1b[2K');
      this.#shown = false;
    }
  }

  /** After the script's output was written: note whether the cursor is at the start of a line, and redraw soon. */
  wrote(text: string): void {
    if (!text) return;
    this.#atLineStart = text.endsWith('\n');
    if (this.#mode === 'tty' && this.#timer && this.#atLineStart && !this.#redraw) {
      this.#redraw = setTimeout(() => {
        this.#redraw = undefined;
        if (this.#timer && !this.#shown) this.#tick();
      }, REDRAW_MS);
      this.#redraw.unref();
    }
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    if (this.#redraw) clearTimeout(this.#redraw);
    this.#timer = undefined;
    this.#redraw = undefined;
    this.clear();
  }

  #tick(): void {
    const figures = this.#read();
    if (!figures) return;
    const text = statusText(figures);
    if (this.#mode === 'plain') {
      this.#stream.write(`${this.#atLineStart ? '' : '\n'}[pyworkers] ${text}\n`);
      this.#atLineStart = true;
      return;
    }
    if (!this.#atLineStart) return; // never draw over a line the script has not finished
    const width = Math.max(20, (this.#stream.columns || 80) - 1);
    const line = `pyworkers ▸ ${text}`;
    this.#stream.write(`\r\x1b[2K${paintFor(this.#stream).dim(line.length > width ? line.slice(0, width) : line)}`);
    this.#shown = true;
  }
}
