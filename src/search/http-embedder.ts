import {
  BrokenCircuitError,
  type CircuitBreakerPolicy,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
} from 'cockatiel';
import { type Embedder, EmbedderUnavailable } from './embedder.ts';

/** Settings of an {@link HttpEmbedder}. */
export interface HttpEmbedderOptions {
  /** The embeddings endpoint itself (…/v1/embeddings), posted to as is. */
  url: string;
  /** Model name sent with every request. */
  model: string;
  /** Bearer key; empty or missing: no Authorization header. */
  apiKey?: string | undefined;
  /** Deadline of one request, answer body included. */
  timeoutMs: number;
  /** Most texts sent in one request. @default 128 */
  batchSize?: number;
  /** Consecutive failed requests that open the circuit. @default 5 */
  failures?: number;
  /** How long the circuit stays open before one trial request. @default 5000 */
  halfOpenAfterMs?: number;
}

/** Most texts per request (OpenAI accepts more, but smaller requests fail and time out alone). */
const MAX_BATCH = 128;

/** Longest excerpt of an error answer kept in the message. */
const EXCERPT_CHARS = 200;

/**
 * Refused for this request only (bad input: 400, 413, 422): the endpoint is alive, so it does
 * not count towards opening the circuit.
 */
class RequestRejected extends EmbedderUnavailable {}

/**
 * An {@link Embedder} over any OpenAI-compatible embeddings endpoint: `POST url` with
 * `{ model, input }`, answered by `{ data: [{ index, embedding }] }`. Texts go in sequential
 * requests of at most `batchSize`, each bounded by `timeoutMs`. Answers are checked strictly
 * (one finite vector per text, all of one dimension). Nothing is retried: every failure
 * rejects with {@link EmbedderUnavailable}, and after `failures` consecutive failed requests
 * the circuit opens, so that for `halfOpenAfterMs` calls fail at once without a request.
 */
export class HttpEmbedder implements Embedder {
  readonly model: string;
  readonly #url: string;
  readonly #apiKey: string;
  readonly #timeoutMs: number;
  readonly #batchSize: number;
  readonly #breaker: CircuitBreakerPolicy;

  constructor(options: HttpEmbedderOptions) {
    this.model = options.model;
    this.#url = options.url;
    this.#apiKey = options.apiKey ?? '';
    this.#timeoutMs = options.timeoutMs;
    this.#batchSize = Math.max(1, Math.min(options.batchSize ?? MAX_BATCH, MAX_BATCH));
    this.#breaker = circuitBreaker(
      handleWhen((err) => !(err instanceof RequestRejected)),
      {
        halfOpenAfter: options.halfOpenAfterMs ?? 5_000,
        breaker: new ConsecutiveBreaker(options.failures ?? 5),
      },
    );
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    const vectors: Float32Array[] = [];
    for (let start = 0; start < texts.length; start += this.#batchSize) {
      const chunk = texts.slice(start, start + this.#batchSize);
      const got = await this.#guarded(chunk);
      const first = vectors[0];
      if (first && got[0] && got[0].length !== first.length) {
        throw new EmbedderUnavailable(
          `embeddings answer has vectors of ${got[0].length} dimensions after ${first.length}`,
        );
      }
      vectors.push(...got);
    }
    return vectors;
  }

  async #guarded(chunk: string[]): Promise<Float32Array[]> {
    try {
      return await this.#breaker.execute(() => this.#request(chunk));
    } catch (err) {
      if (err instanceof BrokenCircuitError) {
        throw new EmbedderUnavailable('embeddings circuit open after repeated failures', {
          cause: err,
        });
      }
      throw err;
    }
  }

  async #request(input: string[]): Promise<Float32Array[]> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json',
    };
    if (this.#apiKey !== '') headers.authorization = `Bearer ${this.#apiKey}`;
    const signal = AbortSignal.timeout(this.#timeoutMs);
    let body: unknown;
    try {
      const response = await fetch(this.#url, {
        method: 'POST',
        headers,
        body: JSON.stringify({ model: this.model, input }),
        signal,
      });
      if (!response.ok) {
        const text = await response.text().catch(() => '');
        const Failure = [400, 413, 422].includes(response.status)
          ? RequestRejected
          : EmbedderUnavailable;
        throw new Failure(`embeddings endpoint answered ${response.status}${this.#excerpt(text)}`, {
          status: response.status,
        });
      }
      const text = await response.text();
      try {
        body = JSON.parse(text);
      } catch (err) {
        throw new EmbedderUnavailable('embeddings answer is not JSON', { cause: err });
      }
    } catch (err) {
      throw this.#translate(err, signal);
    }
    return parseAnswer(body, input.length);
  }

  /** Any failure of the exchange as an {@link EmbedderUnavailable}. */
  #translate(err: unknown, signal: AbortSignal): EmbedderUnavailable {
    if (err instanceof EmbedderUnavailable) return err;
    if (signal.aborted) {
      return new EmbedderUnavailable(`embeddings request timed out after ${this.#timeoutMs} ms`, {
        cause: err,
      });
    }
    const cause = (err as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
    const reason =
      typeof cause?.code === 'string'
        ? cause.code
        : typeof cause?.message === 'string'
          ? cause.message
          : err instanceof Error
            ? err.message
            : String(err);
    return new EmbedderUnavailable(`embeddings request failed: ${this.#redact(reason)}`, {
      cause: err,
    });
  }

  /** ": <start of the answer>" with the key removed, or nothing. */
  #excerpt(text: string): string {
    const flat = this.#redact(text).replace(/\s+/g, ' ').trim();
    if (flat === '') return '';
    return `: ${flat.length > EXCERPT_CHARS ? `${flat.slice(0, EXCERPT_CHARS)}…` : flat}`;
  }

  #redact(text: string): string {
    return this.#apiKey === '' ? text : text.replaceAll(this.#apiKey, '[redacted]');
  }
}

/**
 * The vectors of an OpenAI embeddings answer, ordered by `index`: exactly `count` of them,
 * each a non-empty list of finite numbers, all of the same dimension.
 */
function parseAnswer(body: unknown, count: number): Float32Array[] {
  const bad = (why: string): EmbedderUnavailable =>
    new EmbedderUnavailable(`malformed embeddings answer: ${why}`);
  const data = (body as { data?: unknown } | null)?.data;
  if (typeof body !== 'object' || body === null || !Array.isArray(data)) {
    throw bad('no data list');
  }
  if (data.length !== count) throw bad(`${data.length} vectors for ${count} inputs`);
  const vectors = new Array<Float32Array | undefined>(count);
  let dimensions = -1;
  for (const [position, item] of (data as unknown[]).entries()) {
    const { index, embedding } = (item ?? {}) as { index?: unknown; embedding?: unknown };
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= count) {
      throw bad(`item ${position} has no index in 0..${count - 1}`);
    }
    if (vectors[index] !== undefined) throw bad(`index ${index} repeated`);
    if (!Array.isArray(embedding) || embedding.length === 0) {
      throw bad(`vector ${index} is not a list of numbers`);
    }
    if (dimensions === -1) dimensions = embedding.length;
    else if (embedding.length !== dimensions) {
      throw bad(`vector ${index} has ${embedding.length} dimensions, not ${dimensions}`);
    }
    const vector = new Float32Array(dimensions);
    for (let i = 0; i < dimensions; i++) {
      const value: unknown = embedding[i];
      if (typeof value !== 'number') throw bad(`vector ${index} holds a non-number`);
      vector[i] = value;
      // Checked after narrowing to 32 bits: a finite double may still overflow a float.
      if (!Number.isFinite(vector[i])) throw bad(`vector ${index} holds a non-finite number`);
    }
    vectors[index] = vector;
  }
  // `count` distinct indexes in [0, count): every slot is filled.
  return vectors as Float32Array[];
}
