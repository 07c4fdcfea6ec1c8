/**
 * pythonia (JSPyBridge): JSON over Node's IPC channel; results other than strings and numbers come back as
 * proxies, read with `valueOf()` (a second round trip). Bytes go as base64 text (a Buffer would be sent as a
 * proxy to a JS object).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Bridge } from '../lib/subject.js';

const MODULE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'py', 'benchfns.py');

type Pythonia = typeof import('pythonia');
let lib: Pythonia | undefined;

export async function start(python: string): Promise<Bridge> {
  if (!lib) {
    // pythonia spawns its Python process when it is first imported, with PYTHON_BIN or 'python3'.
    process.env.PYTHON_BIN = python;
    lib = ((await import('pythonia')) as { default?: Pythonia }).default ?? ((await import('pythonia')) as Pythonia);
  }
  const { python: py } = lib;
  const m: any = await py(MODULE);
  const bridge: Bridge = {
    ping: () => m.echo(1),
    blobOut: async () => Buffer.from((await m.blob_b64()) as string, 'base64'),
    bytesIn: (data) => m.take_b64(Buffer.from(data.buffer, data.byteOffset, data.length).toString('base64')),
    intsOut: async (n) => (await m.make_ints(n)).valueOf(),
    intsIn: (values) => m.take(values),
    dictOut: async (n) => (await m.make_dict(n)).valueOf(),
    dictIn: (dict) => m.take(dict),
    pythonPid: () => (globalThis as any).__pythonBridge?.com?.proc?.pid,
    close: async () => py.exit(),
  };
  await bridge.ping();
  return bridge;
}
