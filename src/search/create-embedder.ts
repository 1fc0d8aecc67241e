import type { EmbeddingsConfig } from '../config.ts';
import { CachedEmbedder } from './cached-embedder.ts';
import type { Embedder } from './embedder.ts';
import { HttpEmbedder } from './http-embedder.ts';

/**
 * The embedder of the configuration: the HTTP endpoint behind an in-process cache of
 * `cacheEntries` vectors, or null when no endpoint is configured (search without vectors).
 */
export function createEmbedder(config: EmbeddingsConfig | null): Embedder | null {
  if (!config) return null;
  const http = new HttpEmbedder({
    url: config.url,
    model: config.model,
    apiKey: config.apiKey,
    timeoutMs: config.timeoutMs,
  });
  return new CachedEmbedder(http, config.cacheEntries);
}
