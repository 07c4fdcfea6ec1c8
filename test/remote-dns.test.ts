/**
 * A remote pool's endpoint as a DNS name standing for every agent (a Kubernetes headless Service): names are
 * resolved again on an interval; an agent that appears is used, one that disappears is given its workers back.
 * The name lives in /etc/hosts for the test (root only), with two agents on 127.0.0.2 and 127.0.0.3.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createPool } from '../src/index.js';
import { until } from './helpers.js';
import { AgentProcess, freePort, hasOpenssl, makeCerts, TOKEN } from './remote-helpers.js';

const HOSTS = '/etc/hosts';

function whyNot(): string | false {
  if (!hasOpenssl()) return 'openssl is not installed';
  if (process.getuid?.() !== 0) return 'needs root (it writes the test name into /etc/hosts)';
  try {
    accessSync(HOSTS, constants.W_OK);
  } catch {
    return '/etc/hosts is not writable';
  }
  return false;
}

/** A server certificate for `name`, signed by the tests' CA. */
function certFor(name: string): { cert: string; key: string } {
  const ca = makeCerts();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pyworkers-dns-cert-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'agent.key', '-out', 'agent.csr', '-subj', `/CN=${name}`);
  writeFileSync(path.join(dir, 'agent.ext'), `subjectAltName=DNS:${name}\nextendedKeyUsage=serverAuth\n`);
  ssl('x509', '-req', '-in', 'agent.csr', '-CA', path.join(ca.dir, 'ca.crt'), '-CAkey', path.join(ca.dir, 'ca.key'), '-CAcreateserial', '-out', 'agent.crt', '-days', '2', '-extfile', 'agent.ext');
  return { cert: path.join(dir, 'agent.crt'), key: path.join(dir, 'agent.key') };
}

const reason = whyNot();
test('a DNS name stands for every agent it resolves to, re-resolved: agents that appear are used, ones that disappear are drained away', { skip: reason && !process.env.CI ? reason : false, timeout: 60_000 }, async () => {
  if (reason) assert.fail(`required in CI: ${reason}`);
  const name = `pyworkers-agents-${process.pid}.test`;
  const { cert, key } = certFor(name);
  const port = await freePort();
  const original = readFileSync(HOSTS, 'utf8');
  const setHosts = (...addresses: string[]) => writeFileSync(HOSTS, original + (original.endsWith('\n') ? '' : '\n') + addresses.map((a) => `${a} ${name}\n`).join(''));
  const agents: AgentProcess[] = [];
  try {
    for (const address of ['127.0.0.2', '127.0.0.3']) {
      agents.push(await AgentProcess.start({ args: ['--workers', '1', '--listen', `${address}:${port}`, '--tls-cert', cert, '--tls-key', key] }));
    }
    setHosts('127.0.0.2');
    const pool = await createPool({ forwardOutput: false, remote: { endpoints: [`${name}:${port}`], token: TOKEN, ca: makeCerts().ca, resolveInterval: 200 } });
    try {
      const pids = async () => new Set(await Promise.all(Array.from({ length: 16 }, () => pool.eval('__import__("time").sleep(0.02) or __import__("os").getpid()'))));
      assert.equal(pool.stats().workers, 1);
      const first = await pids();
      assert.equal(first.size, 1);

      setHosts('127.0.0.2', '127.0.0.3'); // a pod became ready
      assert.ok(await until(() => pool.stats().perWorker.filter((w) => w.state === 'ready').length === 2, 5000), 'the new agent was used');
      assert.equal((await pids()).size, 2);

      setHosts('127.0.0.3'); // a pod went away (rolling update)
      assert.ok(await until(() => pool.stats().workers === 1, 5000), "the old agent's worker was given back");
      const last = await pids();
      assert.equal(last.size, 1);
      assert.ok(![...last].some((pid) => first.has(pid)), 'calls now run on the remaining agent');
    } finally {
      await pool.destroy();
    }
  } finally {
    writeFileSync(HOSTS, original);
    await Promise.all(agents.map((a) => a.stop()));
  }
});
