/**
 * Python fetching data from the Node service it runs in: an HTTP service whose handler calls Python, and Python
 * calls back into the service for the data it needs (async functions, errors both ways).
 *
 *   node --import tsx examples/fetch-from-node.ts
 */
import http from 'node:http';
import { createPool } from '../src/index.js';

// The service's own data (a database in a real service).
const users = new Map([
  [1, { id: 1, name: 'Ada', orders: [120, 80, 45] }],
  [2, { id: 2, name: 'Linus', orders: [15] }],
]);

class NotFoundError extends Error {
  override name = 'NotFoundError';
}

await using pool = await createPool({
  workers: 2,
  functions: {
    fetchUser: async (id: number) => {
      await new Promise((resolve) => setTimeout(resolve, 5)); // as a database would
      const user = users.get(id);
      if (!user) throw new NotFoundError(`no user ${id}`);
      return user;
    },
  },
});

await pool.exec(`
from pyworkers import host, HostError

def report(user_id):
    try:
        user = host.fetchUser(user_id)        # the TypeScript function, awaited in Node
    except HostError as e:
        return {'error': e.name, 'message': e.message}
    orders = user['orders']
    return {'name': user['name'], 'orders': len(orders), 'average': sum(orders) / len(orders)}
`);

const server = http.createServer(async (req, res) => {
  const id = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('user'));
  const body = await pool.call('__main__', 'report', [id]);
  res.writeHead('error' in body ? 404 : 200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as { port: number };

for (const user of [1, 2, 3]) {
  const res = await fetch(`http://127.0.0.1:${port}/?user=${user}`);
  console.log(`GET /?user=${user} -> ${res.status} ${await res.text()}`);
}
server.close();
