import { createHash } from 'node:crypto';

/** A cached, pre-serialized response body with what decides whether it may be served. */
export interface CacheEntry {
  /** The serialized JSON body, sent as is. */
  body: Buffer;
  /** Strong ETag of `body` (quoted). */
  etag: string;
  /** The scope version the data was read under; served only while it is current. */
  version: number;
  /** When the data was read from the store (epoch ms). */
  storedAt: number;
  /** Until when the entry is fresh: storedAt + TTL with jitter. After it, only for grace. */
  freshUntil: number;
  /** When the data stops being true on its own (the earliest expiresAt it holds), or 0. */
  validUntil: number;
}

/** A strong ETag for a body: a short hash, quoted. */
export function etagOf(body: Buffer): string {
  return `"${createHash('sha1').update(body).digest('base64url').slice(0, 22)}"`;
}

const HEADER = 8 + 8 + 8 + 8 + 1;

/** Encodes an entry as bytes for L2: version, storedAt, freshUntil, validUntil, etag, body. */
export function encodeEntry(entry: CacheEntry): Buffer {
  const etag = Buffer.from(entry.etag);
  const out = Buffer.allocUnsafe(HEADER + etag.length + entry.body.length);
  out.writeDoubleLE(entry.version, 0);
  out.writeDoubleLE(entry.storedAt, 8);
  out.writeDoubleLE(entry.freshUntil, 16);
  out.writeDoubleLE(entry.validUntil, 24);
  out.writeUInt8(etag.length, 32);
  etag.copy(out, HEADER);
  entry.body.copy(out, HEADER + etag.length);
  return out;
}

/** Decodes {@link encodeEntry}'s bytes; null when they are not an entry. */
export function decodeEntry(bytes: Buffer): CacheEntry | null {
  if (bytes.length < HEADER) return null;
  const etagLength = bytes.readUInt8(32);
  if (bytes.length < HEADER + etagLength) return null;
  return {
    version: bytes.readDoubleLE(0),
    storedAt: bytes.readDoubleLE(8),
    freshUntil: bytes.readDoubleLE(16),
    validUntil: bytes.readDoubleLE(24),
    etag: bytes.subarray(HEADER, HEADER + etagLength).toString(),
    body: bytes.subarray(HEADER + etagLength),
  };
}
