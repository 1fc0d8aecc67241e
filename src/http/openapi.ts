import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

/** OpenAPI generated from the route schemas, at /openapi.json, with a browsable UI at /docs. */
export async function registerOpenApi(app: FastifyInstance, version: string): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Engram',
        description:
          'Memory service for AI assistants and agents. Errors: see docs/errors.md for every code.',
        version,
      },
      components: {
        securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } },
      },
      security: [{ apiKey: [] }],
      tags: [
        { name: 'memories', description: 'Single memories and batches' },
        { name: 'users', description: "All of a user's memories" },
        { name: 'search', description: 'Ranked retrieval of memories' },
        { name: 'sessions', description: 'Conversations: working memory, preloading, expiry' },
        { name: 'health', description: 'Probes' },
        { name: 'stats', description: 'Counters of this instance' },
      ],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
