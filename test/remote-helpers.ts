/**
 * For the remote tests: certificates made with openssl at test time, agents (`pyworkers serve`) run as
 * processes of their own that a test can SIGKILL, SIGSTOP and restart, and the network between host and agent
 * made worse: a proxy that cuts or partitions, a relay that delays (test/delay-relay.ts).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BUILT = path.join(ROOT, 'dist/cli/main.js');
const RELAY = path.join(ROOT, 'test/delay-relay.ts');
export const TOKEN = 'test-token-0123456789abcdef';

export interface Certs {
  dir: string;
  ca: string;
  cert: string;
  key: string;
  clientCert: string;
  clientKey: string;
  /** A CA that signed nothing here. */
  otherCa: string;
  files: { ca: string; cert: string; key: string; tokenFile: string };
}

export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

let certs: Certs | undefined;

const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
const openssl = (dir: string, ...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });

/** A key and a certificate `name`.crt in `dir`, signed by the CA there (ca.crt, ca.key), with the extensions `ext`. */
function signWithCa(dir: string, name: string, ext: string): void {
  openssl(dir, 'req', ...NEW_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  writeFileSync(path.join(dir, `${name}.ext`), ext);
  openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
}

/** A CA, a server certificate for 127.0.0.1/localhost and a client certificate, made once per test file. */
export function makeCerts(): Certs {
  if (certs) return certs;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pyworkers-certs-'));
  for (const ca of ['ca', 'other-ca']) openssl(dir, 'req', '-x509', ...NEW_KEY, '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-subj', `/CN=pyworkers ${ca}`, '-days', '2');
  const sign = (name: string, ext: string) => signWithCa(dir, name, ext);
  sign('server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  sign('client', 'extendedKeyUsage=clientAuth\n');
  writeFileSync(path.join(dir, 'token'), `${TOKEN}\n`);
  const read = (f: string) => readFileSync(path.join(dir, f), 'utf8');
  certs = {
    dir,
    ca: read('ca.crt'),
    cert: read('server.crt'),
    key: read('server.key'),
    clientCert: read('client.crt'),
    clientKey: read('client.key'),
    otherCa: read('other-ca.crt'),
    files: { ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key'), tokenFile: path.join(dir, 'token') },
  };
  return certs;
}

let serverCerts = 0;

/**
 * A server certificate signed by makeCerts()' CA for other addresses than 127.0.0.1 and localhost (an agent
 * listening in a network namespace): `sans` as openssl writes them, e.g. `['IP:10.213.0.2']`.
 */
export function makeServerCert(sans: string[]): { cert: string; key: string; files: { cert: string; key: string } } {
  const { dir } = makeCerts();
  const name = `server-${process.pid}-${++serverCerts}`;
  signWithCa(dir, name, `subjectAltName=${sans.join(',')}\nextendedKeyUsage=serverAuth\n`);
  const files = { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
  return { cert: readFileSync(files.cert, 'utf8'), key: readFileSync(files.key, 'utf8'), files };
}

/** A port free now (for an agent that must come back on the same one). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Agents and relays not exited yet: none outlives this process. */
const running = new Set<{ readonly child: ChildProcess }>();
process.once('exit', () => {
  for (const { child } of running) child.kill('SIGKILL');
});

/** `pyworkers serve` in a process of its own. */
export class AgentProcess {
  readonly child: ChildProcess;
  /** The address it listens on. */
  readonly host: string;
  port = 0;
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(args: string[], env: NodeJS.ProcessEnv, host: string, prefix: string[]) {
    this.host = host;
    const command = [process.execPath, ...(existsSync(BUILT) ? [BUILT] : ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts')]), 'serve', ...args];
    // A prefix that execs its command (`ip netns exec NS`) keeps the pid: signals reach the agent itself.
    const [file, ...rest] = [...prefix, ...command];
    this.child = spawn(file!, rest, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (text: string) => (this.stderr += text));
    running.add(this);
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => {
      running.delete(this);
      resolve({ code, signal });
    }));
  }

  /**
   * Start one and wait until it listens. `port` 0: any. `host`: where it listens (default 127.0.0.1; another
   * address needs a `cert` for it, see makeServerCert()). `prefix`: a command that runs it, e.g.
   * `['ip', 'netns', 'exec', NS]` (it must exec the agent, keeping the pid).
   */
  static async start(options: { port?: number; args?: string[]; tls?: boolean; env?: NodeJS.ProcessEnv; host?: string; cert?: { files: { cert: string; key: string } }; prefix?: string[] } = {}): Promise<AgentProcess> {
    const c = options.tls === false ? undefined : (options.cert ?? makeCerts());
    const security = c ? ['--tls-cert', c.files.cert, '--tls-key', c.files.key] : ['--insecure'];
    const host = options.host ?? '127.0.0.1';
    const args = ['--listen', `${host}:${options.port ?? 0}`, ...security, ...(options.args ?? ['--workers', '1'])];
    const agent = new AgentProcess(args, { PYWORKERS_TOKEN: TOKEN, ...options.env }, host, options.prefix ?? []);
    const deadline = Date.now() + 20_000;
    while (!/listening on [^ ]+:(\d+)/.test(agent.stderr)) {
      if (agent.child.exitCode !== null || Date.now() > deadline) throw new Error(`the agent did not start: ${agent.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    agent.port = Number(/listening on [^ ]+:(\d+)/.exec(agent.stderr)![1]);
    return agent;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get endpoint(): string {
    return `${this.host}:${this.port}`;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  async stop(): Promise<void> {
    this.signal('SIGCONT');
    this.signal('SIGKILL');
    await this.exited;
  }
}

/** The remote options of a pool on these agents (or what stands for them: a proxy, a relay), over TLS with the token. */
export function remoteOptions(agents: ReadonlyArray<{ readonly endpoint: string }>, extra: Record<string, unknown> = {}) {
  return { endpoints: agents.map((a) => a.endpoint), token: TOKEN, ca: makeCerts().ca, ...extra };
}

/** A TCP proxy in front of an agent whose connections a test can cut (both directions, at once). */
export class CutProxy {
  readonly #server: net.Server;
  readonly #pairs = new Set<[net.Socket, net.Socket]>();
  /** Connections alive during a partition: their bytes are dropped, and their ends are not told of closes. */
  #partitioned = false;
  port = 0;
  cuts = 0;

  constructor(private readonly target: () => number) {
    this.#server = net.createServer((client) => {
      const upstream = net.connect({ host: '127.0.0.1', port: this.target() });
      const pair: [net.Socket, net.Socket] = [client, upstream];
      this.#pairs.add(pair);
      const end = () => {
        this.#pairs.delete(pair);
        client.destroy();
        if (!this.#partitioned) upstream.destroy(); // in a partition the agent hears nothing, not even a close
      };
      for (const socket of pair) {
        socket.on('error', end);
        socket.on('close', end);
      }
      client.on('data', (chunk: Buffer) => {
        if (!this.#partitioned) upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => {
        if (!this.#partitioned) client.write(chunk);
      });
    });
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as net.AddressInfo).port;
    return this.port;
  }

  /** Drop every connection through it. */
  cut(): void {
    this.cuts++;
    for (const [a, b] of [...this.#pairs]) {
      a.destroy();
      b.destroy();
    }
  }

  /** A network partition: from now until `heal()`, nothing passes either way and no side learns of the other's closes. */
  partition(): void {
    this.#partitioned = true;
  }

  heal(): void {
    this.#partitioned = false;
  }

  async close(): Promise<void> {
    this.#partitioned = false;
    this.cut();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

/**
 * test/delay-relay.ts in a process of its own, in front of an agent: what the agent sends reaches the host `delay`
 * ms later, and `drop()` stops everything either way (without closing anything) until `pass()`. `prefix` runs it
 * elsewhere, e.g. `['ip', 'netns', 'exec', NS]` (it must exec the relay, keeping the pid).
 */
export class DelayRelay {
  readonly child: ChildProcess;
  /** The address it listens on. */
  readonly host: string;
  port = 0;
  stderr = '';
  readonly exited: Promise<void>;
  #waiters: Array<{ line: RegExp; resolve: (match: RegExpExecArray) => void; reject: (error: Error) => void }> = [];

  private constructor(host: string, target: string, delay: number, prefix: string[]) {
    this.host = host;
    const [file, ...rest] = [...prefix, process.execPath, '--import', 'tsx', RELAY, host, target, String(delay)];
    this.child = spawn(file!, rest, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (text: string) => (this.stderr += text));
    readline.createInterface({ input: this.child.stdout! }).on('line', (line) => {
      for (const [i, waiter] of this.#waiters.entries()) {
        const match = waiter.line.exec(line);
        if (!match) continue;
        this.#waiters.splice(i, 1);
        waiter.resolve(match);
        return;
      }
    });
    running.add(this);
    this.exited = new Promise((resolve) => this.child.once('exit', () => {
      running.delete(this);
      for (const waiter of this.#waiters.splice(0)) waiter.reject(new Error(`the relay exited: ${this.stderr}`));
      resolve();
    }));
  }

  /** Start one relaying `host`:(a free port) to `target` (HOST:PORT), and wait until it listens. */
  static async start(options: { host: string; target: string; delay: number; prefix?: string[] }): Promise<DelayRelay> {
    const relay = new DelayRelay(options.host, options.target, options.delay, options.prefix ?? []);
    try {
      relay.port = Number((await relay.#expect(/^listening (\d+)$/, 20_000))[1]);
    } catch (error) {
      await relay.stop();
      throw error;
    }
    return relay;
  }

  get endpoint(): string {
    return `${this.host}:${this.port}`;
  }

  /** From when this resolves, nothing passes either way (like `tc netem loss 100%`), and no close is passed on. */
  async drop(): Promise<void> {
    this.child.stdin!.write('drop\n');
    await this.#expect(/^dropping$/);
  }

  /** From when this resolves, bytes flow again (with the delay). */
  async pass(): Promise<void> {
    this.child.stdin!.write('pass\n');
    await this.#expect(/^passing$/);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** The next line of its stdout that matches `line`. */
  #expect(line: RegExp, ms = 5000): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const waiter = {
        line,
        resolve: (match: RegExpExecArray) => {
          clearTimeout(timer);
          resolve(match);
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`the relay did not say ${line} within ${ms} ms: ${this.stderr}`));
      }, ms);
      this.#waiters.push(waiter);
    });
  }
}
