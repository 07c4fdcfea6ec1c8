/**
 * The script's stdout and stderr, passed through unchanged. The runner ends the script's output on each stream
 * with a marker line of its own; the marker is cut out, and its arrival tells that everything before it was
 * written (so the report never lands in the middle of the script's last lines).
 */

export interface Sink {
  write(text: string): unknown;
}

export class Passthrough {
  readonly #sink: Sink;
  readonly #marker: string;
  readonly #before: () => void;
  readonly #after: (text: string) => void;
  #held = '';
  #done = false;
  #resolve!: () => void;
  /** Resolves once the marker arrived (or {@link end} was called). */
  readonly drained: Promise<void>;

  /**
   * @param before called before text is written (the status line clears itself)
   * @param after called with what was written
   */
  constructor(sink: Sink, marker: string, before: () => void = () => {}, after: (text: string) => void = () => {}) {
    this.#sink = sink;
    this.#marker = marker;
    this.#before = before;
    this.#after = after;
    this.drained = new Promise((resolve) => (this.#resolve = resolve));
  }

  push(text: string): void {
    if (this.#done) {
      this.#emit(text);
      return;
    }
    const pending = this.#held + text;
    this.#held = '';
    const at = pending.indexOf(this.#marker);
    if (at >= 0) {
      this.#emit(pending.slice(0, at) + pending.slice(at + this.#marker.length));
      this.#finish();
      return;
    }
    // Hold back a tail that could be the start of the marker.
    const keep = partialMarker(pending, this.#marker);
    this.#emit(pending.slice(0, pending.length - keep));
    this.#held = pending.slice(pending.length - keep);
  }

  /** No marker will come (the worker died): write what was held back. */
  end(): void {
    if (this.#held) this.#emit(this.#held);
    this.#held = '';
    this.#finish();
  }

  #emit(text: string): void {
    if (!text) return;
    this.#before();
    this.#sink.write(text);
    this.#after(text);
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#resolve();
  }
}

/** The length of the longest suffix of `text` that is a prefix of `marker`. */
function partialMarker(text: string, marker: string): number {
  const first = marker[0]!;
  for (let start = Math.max(0, text.length - marker.length + 1); start < text.length; start++) {
    if (text[start] === first && marker.startsWith(text.slice(start))) return text.length - start;
  }
  return 0;
}
