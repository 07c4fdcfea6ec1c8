/**
 * The `remote` option of createPool: which agents, how to trust them, how to notice and survive their loss.
 */
import { ArgumentError } from '../errors.js';
import { checkBoolean, checkInteger, checkKnownKeys, checkMilliseconds, checkObject, checkString } from '../validate.js';
import { isLoopback, parseAddress, type Address } from './address.js';

export interface RemoteOptions {
  /**
   * The agents, `'HOST:PORT'` each. A DNS name stands for every address it resolves to (a Kubernetes headless
   * Service gives one per ready pod), re-resolved every `resolveInterval` ms.
   */
  endpoints: string[];
  /** The agents' token (they compare it in constant time). */
  token?: string;
  /** The CA that signed the agents' certificates (PEM); default: Node's root CAs. */
  ca?: string | Buffer;
  /** This host's certificate and key (PEM), for agents that ask for one (mutual TLS). */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Plain TCP, no TLS: allowed only when every endpoint is a loopback address. */
  insecure?: boolean;
  /** How many workers to lease from each agent (default: as many as it grants). */
  workersPerAgent?: number;
  /** A ping this often (ms). @default 1000 */
  heartbeatInterval?: number;
  /** An agent silent this long (ms) is taken for lost: its calls settle, its workers are replaced elsewhere. @default 5000 */
  heartbeatTimeout?: number;
  /** DNS names are resolved again this often (ms). @default 5000 */
  resolveInterval?: number;
  /** A connection attempt gives up after this many ms. @default 5000 */
  connectTimeout?: number;
  /** Reconnection: the first delay's ceiling and the largest (ms); each delay is random up to a ceiling that doubles. */
  reconnect?: { initialDelay?: number; maxDelay?: number };
}

export interface ResolvedRemoteOptions {
  endpoints: Address[];
  token: string | undefined;
  ca: string | Buffer | undefined;
  cert: string | Buffer | undefined;
  key: string | Buffer | undefined;
  insecure: boolean;
  workersPerAgent: number | undefined;
  heartbeatInterval: number;
  heartbeatTimeout: number;
  resolveInterval: number;
  connectTimeout: number;
  reconnect: { initialDelay: number; maxDelay: number };
}

const KEYS = ['endpoints', 'token', 'ca', 'cert', 'key', 'insecure', 'workersPerAgent', 'heartbeatInterval', 'heartbeatTimeout', 'resolveInterval', 'connectTimeout', 'reconnect'];

/** Pool options that shape the worker processes: with `remote` they are the agent's (its command line). */
export const AGENT_OWNED = ['workers', 'python', 'venv', 'cwd', 'env', 'pythonPath', 'maxMemory', 'recycle', 'livenessTimeout'];

function checkPem(value: unknown, name: string): string | Buffer | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' || Buffer.isBuffer(value)) return value;
  throw new ArgumentError(`${name} must be PEM text (a string or a Buffer), got ${typeof value}`);
}

export function resolveRemoteOptions(value: unknown): ResolvedRemoteOptions {
  checkObject(value, 'options.remote');
  checkKnownKeys(value, KEYS, 'options.remote');
  const o = value as unknown as RemoteOptions;
  if (!Array.isArray(o.endpoints) || o.endpoints.length === 0) throw new ArgumentError("options.remote.endpoints must be a non-empty array of 'HOST:PORT' strings");
  const endpoints = o.endpoints.map((e, i) => parseAddress(e, `options.remote.endpoints[${i}]`));
  const insecure = o.insecure === undefined ? false : checkBoolean(o.insecure, 'options.remote.insecure');
  if (insecure) {
    const far = endpoints.find((e) => !isLoopback(e.host));
    if (far) throw new ArgumentError(`options.remote.insecure (no TLS) is allowed only for loopback endpoints, not ${far.host}`);
  }
  const cert = checkPem(o.cert, 'options.remote.cert');
  const key = checkPem(o.key, 'options.remote.key');
  if ((cert === undefined) !== (key === undefined)) throw new ArgumentError('options.remote.cert and options.remote.key go together (mutual TLS)');
  const heartbeatInterval = o.heartbeatInterval === undefined ? 1000 : checkMilliseconds(o.heartbeatInterval, 'options.remote.heartbeatInterval');
  const heartbeatTimeout = o.heartbeatTimeout === undefined ? 5000 : checkMilliseconds(o.heartbeatTimeout, 'options.remote.heartbeatTimeout');
  if (heartbeatInterval < 10) throw new ArgumentError('options.remote.heartbeatInterval must be at least 10 ms');
  if (heartbeatTimeout <= heartbeatInterval) throw new ArgumentError('options.remote.heartbeatTimeout must be longer than heartbeatInterval');
  let reconnect = { initialDelay: 100, maxDelay: 5000 };
  if (o.reconnect !== undefined) {
    checkObject(o.reconnect, 'options.remote.reconnect');
    checkKnownKeys(o.reconnect, ['initialDelay', 'maxDelay'], 'options.remote.reconnect');
    reconnect = {
      initialDelay: o.reconnect.initialDelay === undefined ? 100 : checkMilliseconds(o.reconnect.initialDelay, 'options.remote.reconnect.initialDelay'),
      maxDelay: o.reconnect.maxDelay === undefined ? 5000 : checkMilliseconds(o.reconnect.maxDelay, 'options.remote.reconnect.maxDelay'),
    };
  }
  return {
    endpoints,
    token: o.token === undefined ? undefined : checkString(o.token, 'options.remote.token'),
    ca: checkPem(o.ca, 'options.remote.ca'),
    cert,
    key,
    insecure,
    workersPerAgent: o.workersPerAgent === undefined ? undefined : checkInteger(o.workersPerAgent, 'options.remote.workersPerAgent', 1),
    heartbeatInterval,
    heartbeatTimeout,
    resolveInterval: o.resolveInterval === undefined ? 5000 : checkMilliseconds(o.resolveInterval, 'options.remote.resolveInterval'),
    connectTimeout: o.connectTimeout === undefined ? 5000 : checkMilliseconds(o.connectTimeout, 'options.remote.connectTimeout'),
    reconnect,
  };
}
