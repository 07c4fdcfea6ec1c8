/**
 * `pyworkers serve --listen HOST:PORT`: the agent. Runs worker processes on this machine for pyworkers hosts on
 * others (createPool({ remote })), over TLS with a token or mutual TLS; drains on SIGTERM.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startAgent, type AgentOptions } from '../remote/agent.js';
import { formatAddress } from '../remote/address.js';
import { UsageError, parseArgs, type OptionSpec } from './args.js';
import { EXIT } from './outcome.js';
import { renderHelp, type Io } from './io.js';

export const SERVE_OPTIONS: OptionSpec[] = [
  { name: 'listen', kind: 'string', value: 'HOST:PORT', help: 'where hosts connect, e.g. 0.0.0.0:7700 (required)' },
  { name: 'token-file', kind: 'string', value: 'FILE', help: 'the token hosts must present (else $PYWORKERS_TOKEN)' },
  { name: 'token', kind: 'string', value: 'TOKEN', help: 'the token itself (other users see it in ps: prefer the two above)' },
  { name: 'tls-cert', kind: 'string', value: 'FILE', help: "this agent's certificate (PEM); also --cert" },
  { name: 'tls-key', kind: 'string', value: 'FILE', help: 'its private key (PEM); also --key' },
  { name: 'tls-ca', kind: 'string', value: 'FILE', help: 'mutual TLS: hosts must present a certificate this CA signed; also --ca' },
  { name: 'cert', kind: 'string', value: 'FILE', help: 'the same as --tls-cert' },
  { name: 'key', kind: 'string', value: 'FILE', help: 'the same as --tls-key' },
  { name: 'ca', kind: 'string', value: 'FILE', help: 'the same as --tls-ca' },
  { name: 'insecure', kind: 'flag', help: 'no TLS (allowed only on a loopback address)' },
  { name: 'workers', kind: 'int', value: 'N', min: 1, help: 'worker processes this agent runs, for all hosts (default: as a pool picks)' },
  { name: 'per-host', kind: 'int', value: 'N', min: 1, help: 'the most workers one host may lease (default: all)' },
  { name: 'max-memory', kind: 'size', value: 'SIZE', help: "each worker's hard memory cap, e.g. 1GiB" },
  { name: 'max-rss', kind: 'size', value: 'SIZE', help: 'recycle a worker whose RSS passes SIZE' },
  { name: 'max-calls', kind: 'int', value: 'N', min: 1, help: 'recycle a worker after N calls' },
  { name: 'idle-timeout', kind: 'duration', value: 'TIME', help: 'recycle a worker idle for TIME' },
  { name: 'python', kind: 'string', value: 'PATH', help: 'the Python interpreter (default: $PYWORKERS_PYTHON, else python3)' },
  { name: 'venv', kind: 'string', value: 'DIR', help: 'a virtual environment whose Python to run' },
  { name: 'cwd', kind: 'string', value: 'DIR', help: "the workers' working directory" },
  { name: 'python-path', kind: 'string', value: 'DIRS', help: "directories put first on the workers' sys.path (':'-separated)" },
  { name: 'setup', kind: 'string', value: 'CODE', help: 'Python run in each worker when it starts (e.g. imports)' },
  { name: 'health', kind: 'string', value: 'HOST:PORT', help: 'HTTP probes: /healthz (alive), /readyz (takes hosts)' },
  { name: 'drain-timeout', kind: 'duration', value: 'TIME', help: 'on SIGTERM, how long running calls may go on (default 25s)' },
  { name: 'help', short: 'h', kind: 'flag', help: 'show this help' },
];

export const SERVE_HELP = `Usage: pyworkers serve --listen HOST:PORT [options]

Run Python workers on this machine for pyworkers hosts on others. A host
connects with createPool({ remote: { endpoints: ['HOST:PORT'], token, ca } })
and leases workers: each runs for that host alone. The connection is TLS
(--tls-cert, --tls-key), and a host is let in with the token (--token-file,
$PYWORKERS_TOKEN or --token) or, with --tls-ca, a client
certificate; both when both are given. --insecure (no TLS) is for loopback only,
and still needs the token.

On SIGTERM the agent stops taking hosts and workers (/readyz answers 503), lets
running calls finish within --drain-timeout, then exits 0.

Options:
{options}

Examples:
  pyworkers serve --listen 0.0.0.0:7700 --tls-cert tls.crt --tls-key tls.key \\
    --token-file /etc/pyworkers/token --workers 4 --max-memory 1GiB --health 0.0.0.0:7701
  PYWORKERS_TOKEN=dev-token-0123456789 pyworkers serve --listen 127.0.0.1:7700 --insecure`;

/** The agent's option names in a message, as this command's flags. */
function flagNames(message: string): string {
  const flags: Record<string, string> = { token: '--token-file (or $PYWORKERS_TOKEN)', 'tls.ca': '--tls-ca', tls: '--tls-cert and --tls-key' };
  return message.replace(/options\.([\w.]+)/g, (_, name: string) => flags[name] ?? `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
}

function readFile(file: string, option: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`--${option}: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, 'serve');
  }
}

export async function serveCommand(argv: string[], io: Io): Promise<number> {
  const { options } = parseArgs(argv, SERVE_OPTIONS, { kind: 'fixed', max: 0 }, 'serve');
  if (options.get('help')) {
    io.stdout.write(`${renderHelp(SERVE_HELP, SERVE_OPTIONS)}\n`);
    return EXIT.ok;
  }
  const listen = options.get('listen') as string | undefined;
  if (!listen) throw new UsageError('missing --listen HOST:PORT', 'serve');
  const agentOptions: AgentOptions = { listen };
  const tokenFile = options.get('token-file') as string | undefined;
  const token = tokenFile ? readFile(tokenFile, 'token-file').trim() : ((options.get('token') as string | undefined) ?? process.env.PYWORKERS_TOKEN);
  if (token) agentOptions.token = token;
  const cert = (options.get('tls-cert') ?? options.get('cert')) as string | undefined;
  const key = (options.get('tls-key') ?? options.get('key')) as string | undefined;
  const ca = (options.get('tls-ca') ?? options.get('ca')) as string | undefined;
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('--tls-cert and --tls-key go together', 'serve');
  if (ca && !cert) throw new UsageError('--tls-ca (mutual TLS) needs --tls-cert and --tls-key', 'serve');
  if (cert && key) agentOptions.tls = { cert: readFile(cert, 'tls-cert'), key: readFile(key, 'tls-key'), ...(ca ? { ca: readFile(ca, 'tls-ca') } : {}) };
  if (options.get('insecure')) agentOptions.insecure = true;
  const set = <K extends keyof AgentOptions>(name: string, key: K) => {
    if (options.has(name)) agentOptions[key] = options.get(name) as AgentOptions[K];
  };
  set('workers', 'workers');
  set('per-host', 'perHost');
  set('max-memory', 'maxMemory');
  set('python', 'python');
  set('venv', 'venv');
  set('cwd', 'cwd');
  set('setup', 'setup');
  set('health', 'health');
  set('drain-timeout', 'drainTimeout');
  if (options.has('python-path')) agentOptions.pythonPath = (options.get('python-path') as string).split(path.delimiter).filter(Boolean);
  const recycle: NonNullable<AgentOptions['recycle']> = {};
  if (options.has('max-rss')) recycle.maxRss = options.get('max-rss') as number;
  if (options.has('max-calls')) recycle.maxCalls = options.get('max-calls') as number;
  if (options.has('idle-timeout')) recycle.idleTimeout = options.get('idle-timeout') as number;
  if (Object.keys(recycle).length > 0) agentOptions.recycle = recycle;

  let agent;
  try {
    agent = await startAgent(agentOptions);
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_INVALID_ARGUMENT') throw new UsageError(flagNames((error as Error).message), 'serve');
    throw error;
  }
  const security = agentOptions.insecure ? 'no TLS' : agentOptions.tls?.ca ? (token ? 'TLS, client certificates and token' : 'TLS and client certificates') : 'TLS and token';
  const health = agent.healthAddress ? `, probes on http://${formatAddress(agent.healthAddress)}` : '';
  io.stderr.write(`pyworkers agent: listening on ${formatAddress(agent.address)} (${security}), ${agent.options.pool.workers} workers, Python ${agent.python.version}${health}\n`);
  const running = agent;
  return new Promise<number>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      io.stderr.write(`pyworkers agent: ${signal}: draining (up to ${running.options.drainTimeout} ms)\n`);
      void running.drain().then((outcome) => {
        io.stderr.write(`pyworkers agent: ${outcome.drained ? 'drained' : 'grace over, killed what was left'} in ${Math.round(outcome.durationMs)} ms\n`);
        resolve(EXIT.ok);
      });
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
