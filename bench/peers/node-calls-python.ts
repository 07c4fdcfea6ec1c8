/**
 * node-calls-python: CPython embedded in the Node process (a native addon). Its async `call` runs on libuv's
 * thread pool under the GIL. The addon is built from source against the machine's Python; npm may skip its
 * install script, so it is built here with the node-gyp that ships with npm when it is missing (no network:
 * node-gyp uses the headers of npm's `nodedir`, or Node's own).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Bridge } from '../lib/subject.js';

const MODULE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'py', 'benchfns.py');
const require = createRequire(import.meta.url);

/** The package folder, or undefined when the optional dependency is not installed. */
export function packageDir(): string | undefined {
  try {
    return path.dirname(require.resolve('node-calls-python'));
  } catch {
    return undefined;
  }
}

/** Build the addon if it is not built. Returns an error message, or undefined when the addon is there. */
export function ensureBuilt(log: (line: string) => void): string | undefined {
  const dir = packageDir();
  if (!dir) return 'not installed (optional dependency)';
  if (existsSync(path.join(dir, 'build', 'Release', 'nodecallspython.node'))) return undefined;
  const npmBin = path.dirname(execFileSync('which', ['npm'], { encoding: 'utf8' }).trim());
  const candidates = [
    path.join(npmBin, '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  const gyp = candidates.find((c) => existsSync(c));
  if (!gyp) return 'build failed: node-gyp not found next to npm';
  log(`building node-calls-python with ${gyp} ...`);
  try {
    const nodedir = execFileSync('npm', ['config', 'get', 'nodedir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const args = [gyp, 'rebuild'];
    if (nodedir && nodedir !== 'undefined' && existsSync(path.join(nodedir, 'include', 'node', 'node.h'))) args.push(`--nodedir=${nodedir}`);
    else if (existsSync(path.join(path.dirname(process.execPath), '..', 'include', 'node', 'node.h'))) args.push(`--nodedir=${path.join(path.dirname(process.execPath), '..')}`);
    execFileSync(process.execPath, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 240_000 });
  } catch (error) {
    const stderr = String((error as { stderr?: Buffer }).stderr ?? (error as Error).message);
    return `build failed: ${stderr.trim().split('\n').slice(-3).join(' ').slice(0, 200)}`;
  }
  return existsSync(path.join(dir, 'build', 'Release', 'nodecallspython.node')) ? undefined : 'build failed: no addon after node-gyp';
}

export async function start(_python: string, opts: { numpy: boolean }): Promise<Bridge> {
  const ncp = require('node-calls-python') as { interpreter: any };
  const py = ncp.interpreter;
  const m = py.importSync(MODULE, false);
  const bridge: Bridge = {
    ping: () => py.call(m, 'echo', 1),
    blobOut: () => py.call(m, 'blob'),
    bytesIn: (data) => py.call(m, 'take', data),
    // Its only binary type is bytes (numpy arrays become JS lists of numbers, typed arrays become bytes), so the
    // array travels as its bytes each way: ArrayBuffer viewed as a Float64Array here, np.frombuffer in Python.
    ...(opts.numpy && {
      arrayOut: async () => new Float64Array((await py.call(m, 'array_out_bytes')) as ArrayBuffer),
      arrayIn: (data: Float64Array) => py.call(m, 'array_in_bytes', data),
    }),
    intsOut: (n) => py.call(m, 'make_ints', n),
    intsIn: (values) => py.call(m, 'take', values),
    dictOut: (n) => py.call(m, 'make_dict', n),
    dictIn: (dict) => py.call(m, 'take', dict),
    close: async () => {},
  };
  await bridge.ping();
  return bridge;
}

/** The synchronous call (blocks Node's event loop), for reference. */
export function syncPing(): () => unknown {
  const py = (require('node-calls-python') as { interpreter: any }).interpreter;
  const m = py.importSync(MODULE, false);
  return () => py.callSync(m, 'echo', 1);
}
