/**
 * The `pyworkers` command: `run`, `eval`, `leaks`, `serve`, `--help`, `--version`; bad arguments exit 2.
 */
import { PyWorkersError } from '../errors.js';
import { UsageError } from './args.js';
import { evalCommand } from './eval.js';
import { leaksCommand } from './leaks.js';
import { EXIT } from './outcome.js';
import { runCommand } from './run.js';
import { serveCommand } from './serve.js';
import { toolVersion, type Io } from './io.js';

const HELP = `Usage: pyworkers <command> [options]

Run Python from Node in worker processes, and see what it does with memory.

Commands:
  run script.py [args...]   run a script under watch: live memory status, then a
                            report (top allocation sites, gc, hints); --report
                            writes a self-contained HTML page with a flame graph
  eval 'expression'         evaluate Python and print the result
  leaks module:function      call a function again and again and report the lines
                            whose memory grows with every call
  serve --listen HOST:PORT  run workers on this machine for pyworkers hosts on
                            others (createPool({ remote })), over TLS

Options:
  -h, --help                show help (also: pyworkers <command> --help)
  -v, --version             show the version

Examples:
  pyworkers run app.py --top 5 --report report.html
  pyworkers eval 'sum(range(10**6))'
  pyworkers leaks app.py:handle_request --iterations 50
  pyworkers serve --listen 0.0.0.0:7700 --tls-cert tls.crt --tls-key tls.key --token-file token

Documentation: the README of the pyworkers package (https://www.npmjs.com/package/pyworkers)`;

const COMMANDS: Record<string, (argv: string[], io: Io) => Promise<number>> = {
  run: runCommand,
  eval: evalCommand,
  leaks: leaksCommand,
  serve: serveCommand,
};

export async function main(argv: string[], io: Io): Promise<number> {
  const [first, ...rest] = argv;
  try {
    if (first === undefined) throw new UsageError('missing command: run, eval, leaks or serve');
    if (first === '-h' || first === '--help' || first === 'help') {
      if (first === 'help' && rest[0] && COMMANDS[rest[0]]) return await COMMANDS[rest[0]]!(['--help'], io);
      io.stdout.write(`${HELP}\n`);
      return EXIT.ok;
    }
    if (first === '-v' || first === '--version' || first === 'version') {
      io.stdout.write(`pyworkers ${toolVersion()}\n`);
      return EXIT.ok;
    }
    const command = COMMANDS[first];
    if (!command) {
      throw new UsageError(first.startsWith('-') ? `unknown option '${first}'` : `unknown command '${first}': use run, eval, leaks or serve`);
    }
    return await command(rest, io);
  } catch (error) {
    if (error instanceof UsageError) {
      const where = error.command ? `pyworkers ${error.command} --help` : 'pyworkers --help';
      io.stderr.write(`pyworkers: ${error.message} (see '${where}')\n`);
      return EXIT.usage;
    }
    if (error instanceof PyWorkersError && error.code === 'ERR_PYTHON_NOT_FOUND') {
      io.stderr.write(`pyworkers: ${error.message}\n`);
      return EXIT.noPython;
    }
    const message = error instanceof Error ? error.message : String(error);
    io.stderr.write(`pyworkers: ${message}\n`);
    if (process.env.PYWORKERS_DEBUG && error instanceof Error) io.stderr.write(`${error.stack}\n`);
    return EXIT.internal;
  }
}
