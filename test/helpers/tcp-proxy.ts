import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** A TCP proxy in front of one server, for real network faults in tests. */
export interface TcpProxy {
  /** The port it listens on (127.0.0.1). */
  readonly port: number;
  /** Connections accepted so far (a reconnecting client shows up here). */
  readonly accepted: number;
  /** Connections open now. */
  readonly open: number;
  /** Destroys every open connection and closes new ones at once until {@link restore}. */
  cut(): void;
  /**
   * Keeps every connection open (and accepts new ones) but forwards nothing, in either
   * direction, until {@link restore}: a network partition without resets (a hung server).
   * What was sent meanwhile is lost.
   */
  blackhole(): void;
  /** Ends a cut or a black hole: connections are accepted and data forwarded again. */
  restore(): void;
  /** Holds forwarded data for `ms` in both directions (0: no delay). */
  delay(ms: number): void;
  /** Destroys every connection and stops listening. */
  close(): Promise<void>;
}

/** Starts a proxy on 127.0.0.1:0 that forwards each connection to `host:port`. */
export async function startTcpProxy(target: { host?: string; port: number }): Promise<TcpProxy> {
  const host = target.host ?? '127.0.0.1';
  const pairs = new Set<{ client: Socket; upstream: Socket }>();
  let refusing = false;
  let dropping = false;
  let delayMs = 0;
  let accepted = 0;

  /** Forwards `from` to `to`, in order, each chunk held `delayMs` when set. */
  const pipe = (from: Socket, to: Socket): void => {
    let chain = Promise.resolve();
    from.on('data', (chunk: Buffer) => {
      if (dropping) return;
      if (delayMs === 0) {
        if (!to.destroyed) to.write(chunk);
        return;
      }
      const ms = delayMs;
      from.pause();
      chain = chain.then(
        () =>
          new Promise<void>((resolve) => {
            setTimeout(() => {
              if (!to.destroyed && !dropping) to.write(chunk);
              if (!from.destroyed) from.resume();
              resolve();
            }, ms);
          }),
      );
    });
    from.on('end', () => {
      void chain.then(() => {
        if (!to.destroyed) to.end();
      });
    });
  };

  const server: Server = createServer((client) => {
    accepted++;
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host, port: target.port });
    const pair = { client, upstream };
    pairs.add(pair);
    const drop = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    pipe(client, upstream);
    pipe(upstream, client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no port');

  const destroyAll = (): void => {
    for (const { client, upstream } of pairs) {
      // A reset, like a broken network path, rather than an orderly FIN.
      client.resetAndDestroy();
      upstream.destroy();
    }
    pairs.clear();
  };

  return {
    port: address.port,
    get accepted() {
      return accepted;
    },
    get open() {
      return pairs.size;
    },
    cut() {
      refusing = true;
      destroyAll();
    },
    blackhole() {
      dropping = true;
    },
    restore() {
      refusing = false;
      dropping = false;
    },
    delay(ms: number) {
      delayMs = Math.max(0, ms);
    },
    close() {
      refusing = true;
      destroyAll();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
