import closeWithGrace from 'close-with-grace';
import { pino } from 'pino';
import { buildApp } from './app.ts';
import { ensureBootstrapKey } from './auth/bootstrap-key.ts';
import type { Config } from './config.ts';
import { createContext } from './context.ts';
import { boundHeapGrowth } from './util/heap-growth.ts';

/**
 * Runs Engram until SIGINT/SIGTERM: then it stops accepting connections, lets in-flight
 * requests finish, stops background work and closes the store, all within the shutdown
 * deadline (after which the process exits anyway).
 */
export async function serve(config: Config): Promise<void> {
  boundHeapGrowth(config.heapGrowingPercent);
  const logger = pino({ level: config.logLevel, base: { service: 'engram' } });
  const ctx = await createContext(config, logger);
  if (config.store.kind === 'sqlite' && config.bootstrapKey) {
    const created = await ensureBootstrapKey(ctx.keys, config.keyFile);
    if (created) {
      process.stdout.write(
        `\nEngram created an API key for tenant "${created.tenant}" (shown once, also saved to ${config.keyFile}):\n\n  ${created.key}\n\n`,
      );
    }
  }
  const app = await buildApp(ctx);
  closeWithGrace({ delay: config.shutdownTimeoutMs, logger }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'shutting down after an uncaught error');
    else logger.info({ signal }, 'shutting down');
    await app.close();
    await ctx.close();
    logger.info('stopped');
  });
  await app.listen({ host: config.host, port: config.port });
  ctx.start();
  logger.info(
    { store: ctx.store.dialect, address: `http://${config.host}:${config.port}` },
    'engram ready',
  );
}
