/**
 * No orphans: when this Node process exits, every live worker is killed at once. (Workers also exit on their
 * own when their channels close, and ask Linux for a parent-death signal, for when Node is SIGKILLed.)
 */
import type { PythonWorker } from './worker/worker.js';

const live = new Set<PythonWorker>();
let installed = false;

function killAll(): void {
  for (const worker of [...live]) worker.kill('host exiting');
}

export function trackWorker(worker: PythonWorker): void {
  if (!installed) {
    installed = true;
    process.once('exit', killAll);
  }
  live.add(worker);
  void worker.exited.then(() => live.delete(worker));
}
