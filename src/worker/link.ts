/**
 * What carries a worker's two channels: a process of this machine (ProcessLink), or a process an agent runs on
 * another machine (src/remote/). PythonWorker speaks the protocol; the link moves its bytes and owns the process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { socketDirectRead, type DirectRead } from '../protocol/frames.js';
import { createProgressFile, lastStarted } from './progress.js';

/** The worker runtime's folder (python/ at the package root, beside dist/ and src/). */
export const RUNTIME_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'python');
const BOOT = `import sys;sys.path.insert(0,${JSON.stringify(RUNTIME_DIR)});import _pyworkers.worker as _w;_w.main()`;

/** A worker's memory and state, from /proc. */
export interface ProcessMemory {
  /** Resident memory (VmRSS). */
  rss: number;
  /** Its peak (VmHWM): it never goes down. */
  peakRss: number;
  /** Resident anonymous and shared memory (RssAnon + RssShmem): what the process allocated, libraries left out. */
  own: number;
  /** Stopped (SIGSTOP) or traced. */
  stopped: boolean;
}

export interface LinkEvents {
  output(stream: 'stdout' | 'stderr', text: string): void;
  /** Once: the process exited (`error`: it could not be started, or its link broke). */
  exit(code: number | null, signal: NodeJS.Signals | null, error?: Error): void;
  /** The link is cut off for now (its exit will follow): the worker takes nothing new. */
  suspend?(reason: string): void;
}

/** One of a worker's two channels as its PythonWorker uses it (a pipe's socket, or a remote link's channel). */
export interface Channel {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  once(event: 'end', listener: () => void): unknown;
  write(chunk: Uint8Array): unknown;
  cork(): void;
  uncork(): void;
  readonly destroyed: boolean;
  end(): unknown;
  destroy(): unknown;
}

/** What a worker's process looks like to its PythonWorker. */
export interface WorkerLink {
  readonly pid: number | undefined;
  /** The machine it runs on. */
  readonly host: string;
  /** Requests and their answers. */
  readonly data: Channel;
  /** Control requests (answered while user code runs) and interrupts. */
  readonly control: Channel;
  /** Reads a large frame straight into its buffers, where the channel allows (see frames.ts). */
  readonly directRead: DirectRead | undefined;
  /** SIGKILL the process and what it started. */
  kill(): void;
  /** Keep the Node process alive for this link (or not). */
  setRef(on: boolean): void;
  /**
   * After the exit: the id of the last request the worker started (0: none); `'head'`: only the one the host saw
   * running; `'all'`: unknown, so every request sent may have started (a link lost with its machine).
   */
  lastStarted(): number | 'head' | 'all';
  /** Current and peak resident memory of the process. */
  rss(): ProcessMemory | undefined;
  /** Why the link was lost with its machine's connection (remote links); undefined otherwise. */
  readonly lost?: string | undefined;
}

/** How a worker's process is started. */
export interface ProcessSettings {
  executable: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Cap the process's memory (sets OPENBLAS_NUM_THREADS=1: OpenBLAS starting a thread per core under a cap can fail to import numpy). */
  memoryLimit?: number | null;
}

export type LinkFactory = (workerId: number, settings: ProcessSettings, events: LinkEvents) => WorkerLink;

const HOSTNAME = os.hostname();

/** A worker process of this machine, its channels on pipes 3 (data) and 4 (control). */
export class ProcessLink implements WorkerLink {
  readonly host = HOSTNAME;
  readonly data: Socket;
  readonly control: Socket;
  readonly directRead: DirectRead | undefined;
  readonly #child: ChildProcess;
  /** Where the worker writes the id of each request it starts (see progress.ts). */
  readonly #progress: string | undefined;

  constructor(workerId: number, settings: ProcessSettings, events: LinkEvents) {
    this.#progress = createProgressFile(workerId);
    this.#child = spawn(settings.executable, ['-c', BOOT], {
      cwd: settings.cwd,
      env: {
        ...(settings.memoryLimit ? { OPENBLAS_NUM_THREADS: '1' } : {}),
        ...settings.env,
        PYWORKERS_HOST_PID: String(process.pid),
        ...(this.#progress ? { PYWORKERS_PROGRESS: this.#progress } : {}),
        PYWORKERS_WORKER_ID: String(workerId),
      },
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
      // The worker makes itself a process group of its own (worker.py, setpgid): processes that user code starts
      // end with the worker (see kill), and a Ctrl-C in the host's terminal reaches the host only. Not a new
      // session (`detached`): with scheduler autogroups a session apart made every round trip ~1.6 µs slower.
      windowsHide: true,
    });
    this.data = this.#child.stdio[3] as Socket;
    this.control = this.#child.stdio[4] as Socket;
    this.directRead = socketDirectRead(this.data);
    this.#child.stdout!.setEncoding('utf8');
    this.#child.stderr!.setEncoding('utf8');
    this.#child.stdout!.on('data', (text: string) => events.output('stdout', text));
    this.#child.stderr!.on('data', (text: string) => events.output('stderr', text));
    this.#child.on('error', (error) => events.exit(null, null, error));
    this.#child.on('exit', (code, signal) => {
      // Let the last stderr arrive before reporting.
      let done = false;
      const finish = () => {
        if (!done) {
          done = true;
          events.exit(code, signal);
        }
      };
      const stderr = this.#child.stderr!;
      if (stderr.readableEnded || stderr.destroyed) finish();
      else {
        stderr.once('end', finish);
        setTimeout(finish, 50);
      }
    });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  kill(): void {
    const pid = this.#child.pid;
    try {
      if (pid && process.platform !== 'win32') process.kill(-pid, 'SIGKILL');
      else this.#child.kill('SIGKILL');
    } catch {
      this.#child.kill('SIGKILL'); // no group (any more): the process alone
    }
  }

  setRef(on: boolean): void {
    const handles = [this.#child, this.data, this.control, this.#child.stdout, this.#child.stderr] as Array<{ ref(): void; unref(): void } | null>;
    for (const handle of handles) {
      if (on) handle?.ref();
      else handle?.unref();
    }
  }

  lastStarted(): number | 'head' {
    return this.#progress ? lastStarted(this.#progress) : 'head';
  }

  rss(): ProcessMemory | undefined {
    return readProcessMemory(this.#child.pid);
  }
}

/** A process's current and peak resident memory, read from the OS (Linux). */
export function readProcessMemory(pid: number | undefined): ProcessMemory | undefined {
  if (!pid) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    return {
      rss: field('VmRSS'),
      peakRss: field('VmHWM'),
      own: field('RssAnon') + field('RssShmem'),
      stopped: /^State:\s+[Tt]/m.test(status),
    };
  } catch {
    return undefined;
  }
}

export const processLink: LinkFactory = (workerId, settings, events) => new ProcessLink(workerId, settings, events);
