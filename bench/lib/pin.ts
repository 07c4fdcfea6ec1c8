/**
 * CPU placement. On this kind of machine (2 vCPUs, a VM) a round trip between two processes costs ~9 µs when
 * both run on one CPU and ~60-80 µs when each runs on its own (the wake-up crosses CPUs), and the scheduler
 * picks one or the other at random for a quiet ping-pong. So the latency rows pin both sides explicitly, and
 * the throughput rows pin host and Python on separate CPUs (where the scheduler puts two busy processes anyway).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import os from 'node:os';

export type Placement = 'same' | 'separate' | 'free';

const CPUS = os.cpus().length;
const ALL = `0-${CPUS - 1}`;

export const pinningAvailable: boolean = (() => {
  if (CPUS < 2 || process.platform !== 'linux') return false;
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

function taskset(cpus: string, pid: number, allThreads: boolean): void {
  try {
    execFileSync('taskset', [...(allThreads ? ['-a'] : []), '-pc', cpus, String(pid)], { stdio: 'ignore' });
  } catch {
    // the process may have exited meanwhile
  }
}

/**
 * Place this process and the given Python processes: 'same' puts them all on CPU 0, 'separate' puts the host on
 * CPU 0 and Python on CPU 1, 'free' lets the scheduler choose. `inProcess` (an embedded interpreter): the host's
 * main thread on CPU 0 and its other threads (where the interpreter runs) on CPU 1 when 'separate'.
 */
export function place(placement: Placement, pythonPids: Array<number | undefined>, inProcess = false): void {
  if (!pinningAvailable) return;
  const host = placement === 'free' ? ALL : '0';
  const python = placement === 'free' ? ALL : placement === 'same' ? '0' : '1';
  taskset(host, process.pid, true);
  if (inProcess && placement === 'separate') {
    for (const tid of readdirSync(`/proc/${process.pid}/task`)) {
      if (Number(tid) !== process.pid) taskset(python, Number(tid), false);
    }
  }
  for (const pid of pythonPids) if (pid) taskset(python, pid, true);
}
