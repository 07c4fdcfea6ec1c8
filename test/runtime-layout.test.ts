/**
 * The Python worker runtime spoken to directly, without a pool: a worker process is started as the host starts
 * one (fds 3 and 4), and frames are written and read by hand. Covers what the host cannot reach through its
 * API: the protocol version check of the handshake, protocol error replies, and the table of control operations.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Duplex } from 'node:stream';

import { decode } from '../src/protocol/decode.js';
import { Encoder } from '../src/protocol/encode.js';
import { PROTOCOL_VERSION } from '../src/protocol/frames.js';

const RUNTIME = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'python');
const BOOT = `import sys;sys.path.insert(0,${JSON.stringify(RUNTIME)});import _pyworkers.worker as _w;_w.main()`;
const PYTHON = process.env.PYWORKERS_TEST_PYTHON ?? 'python3';

// python/_pyworkers/protocol.py
const HEADER_SIZE = 11;
const MAGIC = 0xa7;
const FLAG_TAGGED = 0x01;
const INIT = 1;
const CONTROL = 33;
const OK = 64;
const ERROR = 65;

interface Frame {
  kind: number;
  id: number;
  value: unknown;
}

/** One worker process and its two channels. */
class RawWorker {
  readonly child: ChildProcess;
  stderr = '';
  readonly #channels: Duplex[];
  readonly #inbox: Frame[][] = [[], []];
  readonly #waiting: Array<Array<(frame: Frame) => void>> = [[], []];
  readonly #buffers: Buffer[] = [Buffer.alloc(0), Buffer.alloc(0)];

  constructor() {
    this.child = spawn(PYTHON, ['-c', BOOT], {
      env: { ...process.env, PYWORKERS_HOST_PID: String(process.pid) },
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
    });
    this.child.stderr!.setEncoding('utf8').on('data', (text: string) => (this.stderr += text));
    this.#channels = [this.child.stdio[3] as Duplex, this.child.stdio[4] as Duplex];
    this.#channels.forEach((channel, i) => {
      channel.on('error', () => {});
      channel.on('data', (chunk: Buffer) => this.#push(i, chunk));
    });
  }

  #push(channel: number, chunk: Buffer): void {
    let buf = Buffer.concat([this.#buffers[channel]!, chunk]);
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32LE(0)) {
      const end = 4 + buf.readUInt32LE(0);
      const frame = { kind: buf[4]!, id: buf.readUInt32LE(6), value: decode(buf, HEADER_SIZE, end, (buf[5]! & FLAG_TAGGED) !== 0) };
      buf = buf.subarray(end);
      const waiter = this.#waiting[channel]!.shift();
      if (waiter) waiter(frame);
      else this.#inbox[channel]!.push(frame);
    }
    this.#buffers[channel] = buf;
  }

  /** Send a frame of `kind` whose payload is `value` on the data (0) or control (1) channel. */
  send(channel: 0 | 1, kind: number, id: number, value: unknown): void {
    const enc = new Encoder();
    enc.begin(HEADER_SIZE);
    enc.value(value, 'value');
    const frame = enc.end();
    frame.writeUInt32LE(frame.length - 4, 0);
    frame[4] = kind;
    frame[5] = enc.tagged ? FLAG_TAGGED : 0;
    frame.writeUInt32LE(id, 6);
    frame[10] = MAGIC;
    this.#channels[channel]!.write(frame);
  }

  /** The next frame from the data (0) or control (1) channel. */
  next(channel: 0 | 1, ms = 10_000): Promise<Frame> {
    const ready = this.#inbox[channel]!.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no frame within ${ms} ms; stderr: ${this.stderr}`)), ms);
      this.#waiting[channel]!.push((frame) => {
        clearTimeout(timer);
        resolve(frame);
      });
    });
  }

  /** Send INIT with `config` and answer the reply. */
  async init(config: Record<string, unknown>): Promise<Frame> {
    this.send(0, INIT, 1, config);
    return this.next(0);
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGKILL');
    await exited;
  }
}

const workers = new Set<RawWorker>();
const temp: string[] = [];

afterEach(async () => {
  await Promise.all([...workers].map((w) => w.close()));
  workers.clear();
  for (const dir of temp.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function worker(): RawWorker {
  const w = new RawWorker();
  workers.add(w);
  return w;
}

/** A path in a fresh temporary folder, and setup code that creates the file there. */
function marker(): { file: string; setup: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pyworkers-layout-'));
  temp.push(dir);
  const file = path.join(dir, 'setup-ran');
  return { file, setup: `open(${JSON.stringify(file)}, 'w').close()` };
}

describe('the handshake', () => {
  it('without a protocol key in INIT, starts and answers its protocol version', async () => {
    const w = worker();
    const { file, setup } = marker();
    const reply = await w.init({ workerId: 1, setup: [setup] });
    assert.equal(reply.kind, OK, JSON.stringify(reply.value));
    const info = reply.value as { pid: number; protocol: number };
    assert.equal(info.pid, w.child.pid);
    assert.equal(info.protocol, PROTOCOL_VERSION);
    assert.ok(fs.existsSync(file), 'the setup code ran');
  });

  it('with its own protocol version in INIT, starts', async () => {
    const w = worker();
    const { file, setup } = marker();
    const reply = await w.init({ workerId: 1, setup: [setup], protocol: PROTOCOL_VERSION });
    assert.equal(reply.kind, OK, JSON.stringify(reply.value));
    assert.equal((reply.value as { protocol: number }).protocol, PROTOCOL_VERSION);
    assert.ok(fs.existsSync(file), 'the setup code ran');
  });

  for (const version of [PROTOCOL_VERSION + 1, 0, String(PROTOCOL_VERSION)]) {
    it(`with protocol ${JSON.stringify(version)} in INIT, answers a protocol error naming both versions and does not start`, async () => {
      const w = worker();
      const { file, setup } = marker();
      const reply = await w.init({ workerId: 1, setup: [setup], protocol: version });
      assert.equal(reply.kind, ERROR);
      assert.equal(reply.id, 1);
      const [kind, type, module, message, detail] = reply.value as string[];
      assert.deepEqual([kind, type, module, detail], ['protocol', 'ProtocolError', 'pyworkers', '']);
      const named = typeof version === 'string' ? `'${version}'` : String(version); // Python's repr
      assert.ok(message!.startsWith(`the host speaks protocol version ${named}, but `), message);
      assert.match(message!, new RegExp(`worker runtime .* speaks version ${PROTOCOL_VERSION}$`));
      assert.ok(!fs.existsSync(file), 'the setup code did not run');
    });
  }
});

describe('protocol errors and control operations', () => {
  it('answers a request of an unknown kind with a protocol error, and goes on', async () => {
    const w = worker();
    assert.equal((await w.init({ workerId: 1 })).kind, OK);
    w.send(0, 99, 7, null);
    const reply = await w.next(0);
    assert.deepEqual(reply, { kind: ERROR, id: 7, value: ['protocol', 'ProtocolError', 'pyworkers', 'unknown request kind 99', ''] });
    w.send(1, CONTROL, 1, ['sample', []]);
    assert.equal((await w.next(1)).kind, OK);
  });

  it('answers the control operations the host calls, and no longer ping', async () => {
    const w = worker();
    assert.equal((await w.init({ workerId: 1 })).kind, OK);
    w.send(1, CONTROL, 1, ['sample', []]);
    const sample = await w.next(1);
    assert.equal(sample.kind, OK);
    assert.equal((sample.value as unknown[]).length, 3);
    w.send(1, CONTROL, 2, ['gc', [2]]);
    const gc = await w.next(1);
    assert.deepEqual([gc.kind, gc.id, typeof gc.value], [OK, 2, 'number']);
    w.send(1, CONTROL, 3, ['revoke', [12345]]);
    assert.deepEqual(await w.next(1), { kind: OK, id: 3, value: false });
    w.send(1, CONTROL, 4, ['ping', []]);
    const ping = await w.next(1);
    assert.equal(ping.kind, ERROR);
    const [kind, type, module, message, detail] = ping.value as string[];
    assert.deepEqual([kind, type, module, message], ['python', 'ValueError', 'builtins', "unknown control operation 'ping'"]);
    assert.match(detail!, /ValueError: unknown control operation 'ping'/);
  });
});
