/**
 * The container the process runs in, as its cgroup says (Linux; cgroup v2, and v1 where it is what is mounted):
 * the CPU quota (which `os.availableParallelism()` ignores on Node 20) and the memory limit. Elsewhere, or outside a
 * limited cgroup, the figures are null.
 *
 * The cgroup filesystem's root is `/sys/fs/cgroup`, or the environment variable `PYWORKERS_CGROUP_ROOT` (tests
 * point it at a fake tree).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface ContainerInfo {
  /** Which cgroup version was read; `null`: none (not Linux, or nothing mounted). */
  cgroup: 'v2' | 'v1' | null;
  /** CPUs the quota allows (quota / period, e.g. `1.5`); `null` without a quota. */
  cpuQuota: number | null;
  /** The memory limit in bytes; `null` without one. */
  memoryLimit: number | null;
  /** What the cgroup uses now, in bytes (all its processes: this one and the workers). */
  memoryUsage: number | null;
}

const NONE: ContainerInfo = { cgroup: null, cpuQuota: null, memoryLimit: null, memoryUsage: null };
/** cgroup v1 writes "no limit" as a huge number (PAGE_COUNTER_MAX pages). */
const V1_UNLIMITED = 2 ** 60;

export function cgroupRoot(): string {
  return process.env.PYWORKERS_CGROUP_ROOT || '/sys/fs/cgroup';
}

/**
 * Read the limits that apply to this process: those of its cgroup and of every cgroup above it (the tightest
 * wins). `procSelfCgroup` is the contents of /proc/self/cgroup (read when not given).
 */
export function readContainer(root = cgroupRoot(), procSelfCgroup?: string): ContainerInfo {
  if (process.platform !== 'linux' && !process.env.PYWORKERS_CGROUP_ROOT) return { ...NONE };
  const membership = procSelfCgroup ?? read('/proc/self/cgroup') ?? '';
  try {
    if (existsSync(path.join(root, 'cgroup.controllers'))) return readV2(root, membership);
    if (existsSync(path.join(root, 'memory')) || existsSync(path.join(root, 'cpu')) || existsSync(path.join(root, 'cpu,cpuacct'))) {
      return readV1(root, membership);
    }
  } catch {
    // unreadable: no figures
  }
  return { ...NONE };
}

function readV2(root: string, membership: string): ContainerInfo {
  const own = /^0::(.*)$/m.exec(membership)?.[1]?.trim() ?? '/';
  let cpuQuota: number | null = null;
  let memoryLimit: number | null = null;
  let memoryUsage: number | null = null;
  for (const dir of upwards(root, own)) {
    const cpu = read(path.join(dir, 'cpu.max'))?.trim().split(/\s+/);
    if (cpu && cpu[0] !== 'max') {
      const quota = Number(cpu[0]) / Number(cpu[1] ?? 100_000);
      if (quota > 0 && Number.isFinite(quota)) cpuQuota = cpuQuota === null ? quota : Math.min(cpuQuota, quota);
    }
    const memory = read(path.join(dir, 'memory.max'))?.trim();
    if (memory && memory !== 'max') {
      const limit = Number(memory);
      if (limit > 0) memoryLimit = memoryLimit === null ? limit : Math.min(memoryLimit, limit);
    }
    if (memoryUsage === null) {
      const current = Number(read(path.join(dir, 'memory.current'))?.trim() ?? NaN);
      if (Number.isFinite(current)) memoryUsage = current;
    }
  }
  return { cgroup: 'v2', cpuQuota, memoryLimit, memoryUsage };
}

function readV1(root: string, membership: string): ContainerInfo {
  const lines = membership.split('\n').map((line) => line.split(':'));
  const pathOf = (controller: string) => lines.find((l) => l[1]?.split(',').includes(controller))?.[2]?.trim() ?? '/';
  let cpuQuota: number | null = null;
  const cpuDir = ['cpu', 'cpu,cpuacct', 'cpuacct,cpu'].map((d) => path.join(root, d)).find((d) => existsSync(d));
  if (cpuDir) {
    for (const dir of upwards(cpuDir, pathOf('cpu'))) {
      const quota = Number(read(path.join(dir, 'cpu.cfs_quota_us'))?.trim() ?? NaN);
      const period = Number(read(path.join(dir, 'cpu.cfs_period_us'))?.trim() ?? NaN);
      if (quota > 0 && period > 0) cpuQuota = cpuQuota === null ? quota / period : Math.min(cpuQuota, quota / period);
    }
  }
  let memoryLimit: number | null = null;
  let memoryUsage: number | null = null;
  const memoryDir = path.join(root, 'memory');
  if (existsSync(memoryDir)) {
    for (const dir of upwards(memoryDir, pathOf('memory'))) {
      const limit = Number(read(path.join(dir, 'memory.limit_in_bytes'))?.trim() ?? NaN);
      if (limit > 0 && limit < V1_UNLIMITED) memoryLimit = memoryLimit === null ? limit : Math.min(memoryLimit, limit);
      if (memoryUsage === null) {
        const usage = Number(read(path.join(dir, 'memory.usage_in_bytes'))?.trim() ?? NaN);
        if (Number.isFinite(usage)) memoryUsage = usage;
      }
    }
  }
  return { cgroup: 'v1', cpuQuota, memoryLimit, memoryUsage };
}

/** The existing directories from `base` + `own` up to `base` itself, deepest first. */
function upwards(base: string, own: string): string[] {
  const dirs: string[] = [];
  let rel = path.posix.normalize(`/${own}`);
  for (;;) {
    const dir = path.join(base, rel);
    if (existsSync(dir)) dirs.push(dir);
    if (rel === '/') break;
    rel = path.posix.dirname(rel);
  }
  return dirs;
}

function read(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** The default number of workers: at most 4, at most the CPUs, at most the CPU quota (at least 1). */
export function defaultWorkers(os: { availableParallelism?: () => number; cpus: () => unknown[] }, container: ContainerInfo = readContainer()): number {
  const cpus = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  const quota = container.cpuQuota === null ? Infinity : Math.floor(container.cpuQuota);
  return Math.max(1, Math.min(4, cpus, quota));
}
