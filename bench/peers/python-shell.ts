/** python-shell: JSON lines over the child's stdin/stdout (its mode 'json'), bytes as base64. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PythonShell } from 'python-shell';
import type { Bridge } from '../lib/subject.js';

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'shell_server.py');

class ShellBridge implements Bridge {
  readonly shell: PythonShell;
  readonly #waiting = new Map<number, (value: unknown) => void>();
  #nextId = 1;

  constructor(python: string) {
    this.shell = new PythonShell(SCRIPT, { mode: 'json', pythonPath: python, pythonOptions: ['-u'] });
    this.shell.on('message', ([id, result]: [number, unknown]) => {
      const resolve = this.#waiting.get(id)!;
      this.#waiting.delete(id);
      resolve(result);
    });
  }

  call<T>(fn: string, args: unknown[]): Promise<T> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve as (value: unknown) => void);
      this.shell.send([id, fn, args]);
    });
  }

  ping() {
    return this.call('echo', [1]);
  }
  async blobOut() {
    return Buffer.from((await this.call<{ b64: string }>('blob', [])).b64, 'base64');
  }
  bytesIn(data: Uint8Array) {
    return this.call<number>('take', [{ b64: Buffer.from(data.buffer, data.byteOffset, data.length).toString('base64') }]);
  }
  intsOut(n: number) {
    return this.call<number[]>('make_ints', [n]);
  }
  intsIn(values: number[]) {
    return this.call<number>('take', [values]);
  }
  dictOut(n: number) {
    return this.call<Record<string, string>>('make_dict', [n]);
  }
  dictIn(dict: Record<string, string>) {
    return this.call<number>('take', [dict]);
  }
  pythonPid() {
    return this.shell.childProcess.pid;
  }
  close(): Promise<void> {
    return new Promise((resolve) => this.shell.end(() => resolve()));
  }
}

export async function start(python: string): Promise<Bridge> {
  const bridge = new ShellBridge(python);
  await bridge.ping();
  return bridge;
}
