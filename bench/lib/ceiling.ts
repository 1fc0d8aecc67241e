import { deferCleanup } from './cleanup.ts';
import { freePort, spawnNode, stopChild, waitUntilUp } from './server-process.ts';

/**
 * The bare `node:http` server, run with `node -e` in its own process (as Engram is): it reads
 * the whole request body, then answers 201 with a fixed JSON buffer whose size depends on the
 * path. `GET /livez` answers 200.
 */
const CEILING_SOURCE = `
const http = require('node:http');
const sizes = JSON.parse(process.env.CEILING_PAYLOADS);
const payloads = new Map();
for (const [path, size] of Object.entries(sizes)) {
  const head = '{"id":"01CEILING0000000000000000","content":"';
  const tail = '"}';
  const pad = Math.max(0, size - head.length - tail.length);
  payloads.set(path, Buffer.from(head + 'x'.repeat(pad) + tail));
}
const live = Buffer.from('{"status":"ok"}');
const server = http.createServer({ keepAliveTimeout: 72000 }, (req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    const body = req.url === '/livez' ? live : payloads.get(req.url);
    if (!body) { res.writeHead(404); res.end(); return; }
    res.writeHead(req.url === '/livez' ? 200 : 201, {
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
 * The bare Fastify route: Fastify's own JSON body parser, then the same fixed buffers. The
 * gap between the two ceilings is the framework's cost; Engram's gap to this one is ours.
 */
const FASTIFY_CEILING_SOURCE = `
const fastify = require('fastify')({ logger: false, bodyLimit: 64 * 1024 * 1024 });
const sizes = JSON.parse(process.env.CEILING_PAYLOADS);
for (const [path, size] of Object.entries(sizes)) {
  const head = '{"id":"01CEILING0000000000000000","content":"';
  const tail = '"}';
  const body = Buffer.from(head + 'x'.repeat(Math.max(0, size - head.length - tail.length)) + tail);
  fastify.post(path, (req, reply) => {
    reply.code(201).type('application/json; charset=utf-8').send(body);
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
  stop: () => Promise<number | null>;
}

/**
 * Starts the ceiling: the fastest a `node:http` server on this machine answers the same
 * requests with responses of the same size, measured by the same generator in the same run
 * (ARCHITECTURE.md section 9). `payloads` maps a path to its response size in bytes.
 */
export async function startCeiling(
  payloads: Record<string, number>,
  kind: CeilingKind = 'node:http',
): Promise<CeilingServer> {
  const port = await freePort();
  const source = kind === 'fastify' ? FASTIFY_CEILING_SOURCE : CEILING_SOURCE;
  const child = spawnNode(['-e', source], {
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
    stop: async () => {
      const code = await stopChild(child, 5_000);
      forget();
      return code;
    },
  };
}
