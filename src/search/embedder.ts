/**
 * Turns texts into vectors for semantic search. Vectors of different models are not
 * comparable, so each embedder names its model.
 */
export interface Embedder {
  /** The model whose vectors {@link Embedder.embed} returns. */
  readonly model: string;
  /**
   * One vector per text, in the order of `texts` (an empty list gives an empty list). Rejects
   * with {@link EmbedderUnavailable} when the vectors cannot be had now.
   */
  embed(texts: string[]): Promise<Float32Array[]>;
}

/** Settings of an {@link EmbedderUnavailable}. */
export interface EmbedderUnavailableOptions {
  cause?: unknown;
  /** HTTP status of the endpoint's answer, when it answered with an error status. */
  status?: number;
}

/**
 * The embedder could not produce vectors: the endpoint is down, slow, refusing, answering
 * something that is not a list of vectors, or its circuit is open. Its message never carries
 * the endpoint's key.
 */
export class EmbedderUnavailable extends Error {
  override name = 'EmbedderUnavailable';
  /** HTTP status of the endpoint's answer, when it answered with an error status. */
  readonly status: number | undefined;

  constructor(message: string, options: EmbedderUnavailableOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = options.status;
  }
}
