/**
 * `HOST:PORT` addresses of agents and listeners, and whether one is the loopback.
 */
import net from 'node:net';
import { ArgumentError } from '../errors.js';

export interface Address {
  host: string;
  port: number;
}

/** `'host:port'`, `'[::1]:7700'` or `'10.0.0.5:7700'`; throws an ArgumentError naming `name`. `anyPort`: 0 allowed (listen anywhere). */
export function parseAddress(value: unknown, name: string, anyPort = false): Address {
  if (typeof value !== 'string') throw new ArgumentError(`${name} must be a 'HOST:PORT' string, got ${typeof value}`);
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || port < (anyPort ? 0 : 1) || port > 65535) throw new ArgumentError(`${name} must be 'HOST:PORT' (a port from 1 to 65535), got ${JSON.stringify(value)}`);
  const host = match[1] ?? match[2] ?? '';
  if (host === '') throw new ArgumentError(`${name} must name a host: 'HOST:PORT', got ${JSON.stringify(value)}`);
  return { host, port };
}

/** 'host:port', with brackets around an IPv6 address. */
export function formatAddress(address: Address): string {
  return net.isIPv6(address.host) ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** Whether the host is this machine's loopback (where TLS may be left out). */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  return host === '::1' || host.toLowerCase() === '::ffff:127.0.0.1';
}
