/**
 * For the remote tests: certificates made with openssl at test time, and agents (`pyworkers serve`) run as
 * processes of their own that a test can SIGKILL, SIGSTOP and restart.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BUILT = path.join(ROOT, 'dist/cli/main.js');
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

/** A CA, a server certificate for 127.0.0.1/localhost and a client certificate, made once per test file. */
export function makeCerts(): Certs {
  if (certs) return certs;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pyworkers-certs-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const ca of ['ca', 'other-ca']) ssl('req', '-x509', ...key, '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-subj', `/CN=pyworkers ${ca}`, '-days', '2');
  const sign = (name: string, ext: string) => {
    ssl('req', ...key, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    writeFileSync(path.join(dir, `${name}.ext`), ext);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
  };
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

const running = new Set<AgentProcess>();
process.once('exit', () => {
  for (const agent of running) agent.child.kill('SIGKILL');
});

/** `pyworkers serve` in a process of its own. */
export class AgentProcess {
  readonly child: ChildProcess;
  port = 0;
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(args: string[], env: NodeJS.ProcessEnv) {
    const command = existsSync(BUILT) ? [BUILT] : ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts')];
    this.child = spawn(process.execPath, [...command, 'serve', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (text: string) => (this.stderr += text));
    running.add(this);
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => {
      running.delete(this);
      resolve({ code, signal });
    }));
  }

  /** Start one and wait until it listens. `port` 0: any. */
  static async start(options: { port?: number; args?: string[]; tls?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<AgentProcess> {
    const c = options.tls === false ? undefined : makeCerts();
    const security = c ? ['--tls-cert', c.files.cert, '--tls-key', c.files.key] : ['--insecure'];
    const args = ['--listen', `127.0.0.1:${options.port ?? 0}`, ...security, ...(options.args ?? ['--workers', '1'])];
    const agent = new AgentProcess(args, { PYWORKERS_TOKEN: TOKEN, ...options.env });
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
    return `127.0.0.1:${this.port}`;
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

/** The remote options of a pool on these agents, over TLS with the token. */
export function remoteOptions(agents: AgentProcess[], extra: Record<string, unknown> = {}) {
  return { endpoints: agents.map((a) => a.endpoint), token: TOKEN, ca: makeCerts().ca, ...extra };
}
