/**
 * Which requests a dead worker had started. Replies are batched, so after a crash the host cannot tell a request
 * that ran (its reply not yet written) from one that never started. Before each request the worker writes its id
 * into a small file it maps shared (python/_pyworkers/worker.py); the kernel keeps the write through a SIGKILL,
 * and the host reads it after the exit: requests are run in order, so every request sent up to that one started.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const DIR = existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
const live = new Set<string>();
let cleanupInstalled = false;

/** A new progress file for a worker (path), or undefined where none can be made. */
export function createProgressFile(workerId: number): string | undefined {
  const file = path.join(DIR, `pyworkers-${process.pid}-${workerId}-${randomBytes(4).toString('hex')}`);
  try {
    writeFileSync(file, Buffer.alloc(8), { mode: 0o600, flag: 'wx' });
  } catch {
    return undefined;
  }
  if (!cleanupInstalled) {
    cleanupInstalled = true;
    process.once('exit', () => {
      for (const f of live) rmSync(f, { force: true });
    });
  }
  live.add(file);
  return file;
}

/** The id of the last request the worker started (0: none), and the file removed. */
export function lastStarted(file: string): number {
  try {
    return readFileSync(file).readUInt32LE(0);
  } catch {
    return 0;
  } finally {
    rmSync(file, { force: true });
    live.delete(file);
  }
}
