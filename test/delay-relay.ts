/**
 * The stand-in for `tc netem` where the kernel has none (test/remote-netem.test.ts): a TCP relay that runs in
 * the agent's network namespace, takes the host's connections on the namespace's veth address and passes them to
 * the agent, holding what the agent sends DELAY_MS before passing it on (as `netem delay` on the namespace's end
 * does: each round trip takes DELAY_MS more). Started by DelayRelay (test/remote-helpers.ts):
 *
 *   ip netns exec NS node --import tsx test/delay-relay.ts LISTEN_HOST TARGET_HOST:TARGET_PORT DELAY_MS
 *
 * It writes `listening PORT` on stdout once it listens, then takes commands on stdin, one a line, each answered
 * once in effect:
 * - `drop` → `dropping`: like `loss 100%`, nothing passes any more, either way, and no connection is closed: a
 *   close is not passed on either (neither side learns of the other's), and a connection taken meanwhile never
 *   reaches the agent (as with netem its SYN would go unanswered).
 * - `pass` → `passing`: bytes flow again, with the delay.
 * It exits when its stdin closes (the test is over, or died).
 */
import net from 'node:net';
import readline from 'node:readline';

const [listenHost, target, delayArg] = process.argv.slice(2);
const colon = target?.lastIndexOf(':') ?? -1;
const delay = Number(delayArg);
if (!listenHost || colon < 0 || !Number.isFinite(delay) || delay < 0) {
  process.stderr.write('usage: delay-relay.ts LISTEN_HOST TARGET_HOST:TARGET_PORT DELAY_MS\n');
  process.exit(2);
}
const targetHost = target!.slice(0, colon);
const targetPort = Number(target!.slice(colon + 1));

let dropping = false;

const server = net.createServer((client) => {
  client.setNoDelay(true);
  client.on('error', () => {});
  if (dropping) {
    client.resume(); // read and forget, for as long as the host keeps it
    return;
  }
  const agent = net.connect({ host: targetHost, port: targetPort });
  agent.setNoDelay(true);
  agent.on('error', () => {});

  // Host to agent: at once (the delay is on the namespace's way out only).
  client.on('data', (chunk: Buffer) => {
    if (!dropping) agent.write(chunk);
  });
  client.on('close', () => {
    if (!dropping) agent.destroy();
  });

  // Agent to host: each chunk DELAY_MS after it came, in order, and its close as well (`undefined` in the queue).
  const queue: Array<{ due: number; chunk: Buffer | undefined }> = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    while (queue.length > 0 && queue[0]!.due <= performance.now()) {
      const { chunk } = queue.shift()!;
      if (client.destroyed) continue;
      if (chunk) client.write(chunk);
      else client.end();
    }
    if (queue.length > 0) timer = setTimeout(flush, queue[0]!.due - performance.now());
  };
  const later = (chunk: Buffer | undefined) => {
    if (dropping) return; // what was queued before the drop went out before it: it still arrives
    queue.push({ due: performance.now() + delay, chunk });
    timer ??= setTimeout(flush, delay);
  };
  agent.on('data', (chunk: Buffer) => later(chunk));
  agent.on('close', () => later(undefined));
});

server.listen(0, listenHost, () => {
  process.stdout.write(`listening ${(server.address() as net.AddressInfo).port}\n`);
});

const commands = readline.createInterface({ input: process.stdin });
commands.on('line', (line) => {
  const command = line.trim();
  if (command === 'drop') dropping = true;
  else if (command === 'pass') dropping = false;
  else {
    process.stderr.write(`unknown command ${JSON.stringify(command)}\n`);
    return;
  }
  process.stdout.write(dropping ? 'dropping\n' : 'passing\n');
});
commands.on('close', () => process.exit(0));
