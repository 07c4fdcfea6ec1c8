/**
 * Ctrl-C while `pyworkers run` watches a script. The first asks the script to stop (KeyboardInterrupt in Python);
 * the second ends the script's process at once, for scripts that ignore or swallow interrupts. Either way the
 * report is still written, from what was measured until the script ended. A third Ctrl-C leaves without a report.
 */
export class CtrlC {
  /** Aborted by the first Ctrl-C: pass as the call's `signal`. */
  readonly signal: AbortSignal;
  #presses = 0;
  readonly #abort = new AbortController();
  #endScript: () => void = () => {};
  #leave: () => void = () => process.exit(130);
  readonly #onSigint = () => this.#press();

  constructor() {
    this.signal = this.#abort.signal;
    process.on('SIGINT', this.#onSigint);
  }

  /** Once the script runs: what the second and third Ctrl-C do. */
  arm(endScript: () => void, leave: () => void): void {
    this.#endScript = endScript;
    this.#leave = leave;
  }

  #press(): void {
    this.#presses++;
    if (this.#presses === 1) this.#abort.abort();
    else if (this.#presses === 2) this.#endScript();
    else this.#leave();
  }

  dispose(): void {
    process.off('SIGINT', this.#onSigint);
  }
}

/** SIGKILL a worker's process group (the worker leads its own), or the process alone if that fails. */
export function killProcessGroup(pid: number | undefined): void {
  if (!pid) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
