import { deferCleanup } from './cleanup.ts';
import { freePort, profileFlags, spawnNode, stopChild, waitUntilUp } from './server-process.ts';

/**
 * The bare `node:http` server, run with `node -e` in its own process (as Engram is): it reads
 * the whole request body, then answers with a fixed JSON buffer whose size depends on the path
 * (the query string is ignored; the path `*` stands for any other): 200 to a GET, 201 to
 * anything else. `GET /livez` answers 200.
 */
const CEILING_SOURCE = `
const http = require('node:http');
const sizes = JSON.parse(process.env.CEILING_PAYLOADS);
const payloads = new Map();
for (const [url, size] of Object.entries(sizes)) {
  const head = '{"id":"01CEILING0000000000000000","content":"';
  const tail = '"}';
  const pad = Math.max(0, size - head.length - tail.length);
  payloads.set(url.split('?')[0], Buffer.from(head + 'x'.repeat(pad) + tail));
}
const live = Buffer.from('{"status":"ok"}');
const server = http.createServer({ keepAliveTimeout: 72000 }, (req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    const q = req.url.indexOf('?');
    const path = q === -1 ? req.url : req.url.slice(0, q);
    const body = path === '/livez' ? live : (payloads.get(path) ?? payloads.get('*'));
    if (!body) { res.writeHead(404); res.end(); return; }
    res.writeHead(req.method === 'GET' ? 200 : 201, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': body.length,
    });
    res.end(body);
  });
});
server.listen(Number(process.env.CEILING_PORT), '127.0.0.1');
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
`;

/**
 * The bare Fastify route: Fastify's own JSON body parser, then the same fixed buffers (a GET
 * and a POST route per path, query string ignored). The gap between the two ceilings is the
 * framework's cost; Engram's gap to this one is ours.
 */
const FASTIFY_CEILING_SOURCE = `
const fastify = require('fastify')({ logger: false, bodyLimit: 64 * 1024 * 1024 });
const sizes = JSON.parse(process.env.CEILING_PAYLOADS);
for (const [url, size] of Object.entries(sizes)) {
  const path = url === '*' ? '/*' : url.split('?')[0];
  const head = '{"id":"01CEILING0000000000000000","content":"';
  const tail = '"}';
  const body = Buffer.from(head + 'x'.repeat(Math.max(0, size - head.length - tail.length)) + tail);
  fastify.post(path, (req, reply) => {
    reply.code(201).type('application/json; charset=utf-8').send(body);
  });
  fastify.get(path, (req, reply) => {
    reply.type('application/json; charset=utf-8').send(body);
  });
}
fastify.get('/livez', (req, reply) => {
  reply.type('application/json; charset=utf-8').send(Buffer.from('{"status":"ok"}'));
});
fastify.listen({ port: Number(process.env.CEILING_PORT), host: '127.0.0.1' });
process.on('SIGTERM', () => { fastify.close().then(() => process.exit(0)); });
`;

/** Which bare server a ceiling runs. */
export type CeilingKind = 'node:http' | 'fastify';

/** A running ceiling server. */
export interface CeilingServer {
  /** `http://127.0.0.1:<port>` */
  base: string;
  /** Response size in bytes per path. */
  payloads: Record<string, number>;
  /** Process id of the server (to read its CPU time). */
  pid: number;
  stop: () => Promise<number | null>;
}

/**
 * Starts the ceiling: the fastest a `node:http` server on this machine answers the same
 * requests with responses of the same size, measured by the same generator in the same run
 * (ARCHITECTURE.md section 9). `payloads` maps a path (a query string is allowed and ignored)
 * to its response size in bytes; `*` answers every path not listed (the realistic mix).
 */
export async function startCeiling(
  payloads: Record<string, number>,
  kind: CeilingKind = 'node:http',
): Promise<CeilingServer> {
  const port = await freePort();
  const source = kind === 'fastify' ? FASTIFY_CEILING_SOURCE : CEILING_SOURCE;
  const child = spawnNode([...profileFlags(), '-e', source], {
    CEILING_PORT: String(port),
    CEILING_PAYLOADS: JSON.stringify(payloads),
  });
  const forget = deferCleanup(async () => {
    await stopChild(child, 2_000);
  });
  const base = `http://127.0.0.1:${port}`;
  await waitUntilUp(`${base}/livez`, child);
  return {
    base,
    payloads,
    pid: child.process.pid ?? -1,
    stop: async () => {
      const code = await stopChild(child, 5_000);
      forget();
      return code;
    },
  };
}
