/**
 * The agent's options (`startAgent()`, the flags of `pyworkers serve`): what they are, their defaults, and their
 * checks.
 */
import { createHash } from 'node:crypto';
import { ArgumentError } from '../errors.js';
import { resolvePoolOptions, type PoolOptions, type ResolvedPoolOptions } from '../options.js';
import { checkInteger, checkKnownKeys, checkMilliseconds, checkObject, checkString } from '../validate.js';
import { formatAddress, isLoopback, parseAddress, type Address } from './address.js';

/** The worker settings an agent takes: those of a pool that shape its processes. */
export type AgentPoolOptions = Pick<PoolOptions, 'workers' | 'python' | 'venv' | 'cwd' | 'env' | 'pythonPath' | 'setup' | 'maxMemory' | 'recycle' | 'livenessTimeout'>;

export interface AgentOptions extends AgentPoolOptions {
  /** Where to accept hosts: `'HOST:PORT'` (port 0: any free port, see `agent.address`). */
  listen: string;
  /** The token hosts must present (compared in constant time). Required unless `tls.ca` (mutual TLS) is given; always without TLS. */
  token?: string;
  /** The agent's certificate and key (PEM), and with `ca` the CA that hosts' client certificates must chain to. */
  tls?: { cert: string | Buffer; key: string | Buffer; ca?: string | Buffer };
  /** Plain TCP, no TLS: allowed only on a loopback address. */
  insecure?: boolean;
  /** The most workers one host may lease (default: all of `workers`). */
  perHost?: number;
  /** How long in ms running calls may go on after SIGTERM (`drain()`). @default 25000 */
  drainTimeout?: number;
  /** `'HOST:PORT'` of an HTTP server for probes: `/healthz` (alive) and `/readyz` (takes hosts; 503 while draining). */
  health?: string;
  /** A host silent this long (ms; it pings every second) is dropped and its workers killed. @default 15000 */
  sessionTimeout?: number;
  /** A connection must send its HELLO within this many ms. @default 5000 */
  helloTimeout?: number;
}


const POOL_KEYS = ['workers', 'python', 'venv', 'cwd', 'env', 'pythonPath', 'setup', 'maxMemory', 'recycle', 'livenessTimeout'] as const;
const AGENT_KEYS = ['listen', 'token', 'tls', 'insecure', 'perHost', 'drainTimeout', 'health', 'sessionTimeout', 'helloTimeout', ...POOL_KEYS];

export interface ResolvedAgentOptions {
  listen: Address;
  token: Buffer | undefined;
  tls: { cert: string | Buffer; key: string | Buffer; ca?: string | Buffer } | undefined;
  perHost: number;
  drainTimeout: number;
  health: Address | undefined;
  sessionTimeout: number;
  helloTimeout: number;
  pool: ResolvedPoolOptions;
}

export function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export function resolveAgentOptions(options: unknown): ResolvedAgentOptions {
  checkObject(options, 'agent options');
  checkKnownKeys(options, AGENT_KEYS, 'agent options');
  const o = options as unknown as AgentOptions;
  const listen = parseAddress(o.listen, 'options.listen', true);
  const insecure = o.insecure === true;
  if (insecure && !isLoopback(listen.host)) {
    throw new ArgumentError(`options.insecure (no TLS) is allowed only on a loopback address, not ${formatAddress(listen)}: give tls.cert and tls.key`);
  }
  let tlsOptions: ResolvedAgentOptions['tls'];
  if (o.tls !== undefined) {
    checkObject(o.tls, 'options.tls');
    checkKnownKeys(o.tls, ['cert', 'key', 'ca'], 'options.tls');
    if (!o.tls.cert || !o.tls.key) throw new ArgumentError('options.tls needs both cert and key (PEM)');
    tlsOptions = o.tls;
  }
  if (insecure && tlsOptions) throw new ArgumentError('options.insecure and options.tls exclude each other');
  if (!insecure && !tlsOptions) throw new ArgumentError('An agent speaks TLS: give options.tls ({ cert, key }), or options.insecure on a loopback address');
  const token = o.token === undefined ? undefined : checkString(o.token, 'options.token');
  if (token !== undefined && token.length === 0) throw new ArgumentError('options.token must not be empty');
  if (token !== undefined && token.length < 16) {
    process.emitWarning('The agent\'s token is shorter than 16 characters: easy to guess. Make one with `openssl rand -hex 24`.', { code: 'PYWORKERS_WEAK_TOKEN' });
  }
  if (token === undefined && !tlsOptions?.ca) {
    // Also on loopback without TLS: any local user could otherwise run code as the agent's.
    throw new ArgumentError(
      insecure
        ? 'An agent authenticates its hosts: without TLS (options.insecure) give options.token'
        : 'An agent authenticates its hosts: give options.token, or options.tls.ca (mutual TLS: hosts present certificates it signed)',
    );
  }
  const poolOptions: Record<string, unknown> = {};
  for (const key of POOL_KEYS) if (o[key] !== undefined) poolOptions[key] = o[key];
  const pool = resolvePoolOptions(poolOptions as PoolOptions, 'agent options');
  return {
    listen,
    token: token === undefined ? undefined : digest(token),
    tls: tlsOptions,
    perHost: o.perHost === undefined ? pool.workers : checkInteger(o.perHost, 'options.perHost', 1),
    drainTimeout: o.drainTimeout === undefined ? 25_000 : checkMilliseconds(o.drainTimeout, 'options.drainTimeout'),
    health: o.health === undefined ? undefined : parseAddress(o.health, 'options.health', true),
    sessionTimeout: o.sessionTimeout === undefined ? 15_000 : checkMilliseconds(o.sessionTimeout, 'options.sessionTimeout'),
    helloTimeout: o.helloTimeout === undefined ? 5_000 : checkMilliseconds(o.helloTimeout, 'options.helloTimeout'),
    pool,
  };
}

