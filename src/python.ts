import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { PythonNotFoundError } from './errors.js';

/** The oldest Python the worker runtime supports. */
export const MIN_PYTHON: readonly [number, number] = [3, 9];

export interface PythonInfo {
  /** The interpreter that is spawned: the real `sys.executable`, not a shim. */
  executable: string;
  /** `'3.11.7'`. */
  version: string;
}

export interface PythonChoice {
  python?: string | undefined;
  venv?: string | undefined;
  cwd?: string | undefined;
  env: NodeJS.ProcessEnv;
}

const PROBE = 'import sys; print(sys.executable); print("%d.%d.%d" % sys.version_info[:3])';
const cache = new Map<string, Promise<PythonInfo>>();

/** The interpreter named by the options: `python` or `venv`'s (an explicit option), else `PYWORKERS_PYTHON`, else `python3`. */
export function pythonCommand(choice: PythonChoice): string {
  if (choice.python) return choice.python;
  if (choice.venv) return venvPython(choice.venv, choice.cwd);
  const fromEnv = choice.env.PYWORKERS_PYTHON ?? process.env.PYWORKERS_PYTHON;
  if (fromEnv) return fromEnv;
  return 'python3';
}

function venvPython(venv: string, cwd: string | undefined): string {
  return path.join(path.resolve(cwd ?? '.', venv), process.platform === 'win32' ? 'Scripts/python.exe' : 'bin/python');
}

/**
 * Find the interpreter and ask it for its real executable once (pyenv's shims cost ~250 ms a spawn),
 * refusing a missing or too old one with `ERR_PYTHON_NOT_FOUND`.
 */
export function resolvePython(choice: PythonChoice): Promise<PythonInfo> {
  const command = pythonCommand(choice);
  if (!choice.python && choice.venv && !existsSync(command)) {
    return Promise.reject(new PythonNotFoundError(`options.venv: there is no virtual environment at '${path.resolve(choice.cwd ?? '.', choice.venv)}' (no ${path.relative(path.resolve(choice.cwd ?? '.', choice.venv), command)} in it)`));
  }
  const key = JSON.stringify([command, choice.cwd ?? '', choice.env.PATH ?? '', choice.env.PYENV_VERSION ?? '']);
  let found = cache.get(key);
  if (!found) {
    found = probe(command, choice);
    cache.set(key, found);
    found.catch(() => cache.delete(key));
  }
  return found;
}

function probe(command: string, choice: PythonChoice): Promise<PythonInfo> {
  return new Promise((resolve, reject) => {
    execFile(command, ['-c', PROBE], { cwd: choice.cwd, env: choice.env, timeout: 30_000, windowsHide: true }, (error, stdout, stderr) => {
      if (error) {
        const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'was not found' : `failed (${String(stderr || error.message).trim()})`;
        reject(new PythonNotFoundError(`Python interpreter '${command}' ${why}. Set the 'python' option or PYWORKERS_PYTHON to a Python ${MIN_PYTHON.join('.')}+ interpreter.`, { cause: error }));
        return;
      }
      const [executable, version] = stdout.trim().split(/\r?\n/);
      const [major, minor] = (version ?? '').split('.').map(Number);
      if (!(major! > MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor! >= MIN_PYTHON[1]))) {
        reject(new PythonNotFoundError(`Python interpreter '${command}' is version ${version ?? 'unknown'}; pyworkers needs Python ${MIN_PYTHON.join('.')} or newer.`));
        return;
      }
      resolve({ executable: executable || command, version: version! });
    });
  });
}
