import { termsOf } from '../../search/tokenizer.ts';
import { indexedText } from '../../search/user-index.ts';
import { hashA, hashB } from '../../util/string-hash.ts';

/**
 * The full-text index of SQLite holds one token per (user, term): `k` and 16 hex digits of a
 * 64-bit hash of tenant, user and the term as the in-process index stems it. A query reads the
 * postings of its user's own terms only. With one shared token per word, as FTS5 tokenizers
 * make them, a query read every user's postings of its words: its cost grew with the whole
 * store (≈ 15 ms a query at 1,000,000 memories), not with the user.
 *
 * The tokens are computed here, in JavaScript (the triggers call {@link FTS_BODY_FUNCTION}), so
 * matching follows the same tokenizer, stop words and stemmer as the in-process index. A hash
 * collision can only add a match of another user or term: the query checks tenant and user on
 * the row, and a stray match of the same user costs one place among the candidates. Changing the tokenizer or the hashes means
 * rebuilding the table (a migration), as the tokens already stored would no longer be found.
 */

/** Name of the SQL function the full-text triggers call (registered on the writer). */
export const FTS_BODY_FUNCTION = 'engram_fts_body';

const BYTE_HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const hex = (n: number): string =>
  `${BYTE_HEX[(n >>> 24) & 255]}${BYTE_HEX[(n >>> 16) & 255]}${BYTE_HEX[(n >>> 8) & 255]}${BYTE_HEX[n & 255]}`;

function token(scope: string, term: string): string {
  const key = `${scope}\x1f${term}`;
  return `k${hex(hashA(key))}${hex(hashB(key))}`;
}

const scopeOf = (tenant: string, userId: string): string => `${tenant}\x1f${userId}`;

/**
 * The indexed body of a memory: its tokens in text order, repeated as their terms are (BM25
 * counts them), space-separated (FTS5's `ascii` tokenizer splits them back). Content, tags and
 * kind are indexed, as in the in-process index.
 */
export function ftsBody(
  tenant: string,
  userId: string,
  content: string,
  tagsJson: string,
  kind: string,
): string {
  const tags = tagsJson === '[]' ? [] : (JSON.parse(tagsJson) as string[]);
  const text = indexedText({ content, tags, kind });
  const scope = scopeOf(tenant, userId);
  const tokens = new Map<string, string>();
  return termsOf(text)
    .map((term) => {
      let t = tokens.get(term);
      if (t === undefined) {
        t = token(scope, term);
        tokens.set(term, t);
      }
      return t;
    })
    .join(' ');
}

/**
 * The MATCH expression of a user's search for any of `words` (plain words, as a query's
 * tokens give them); null when none of them is an indexed term (stop words, punctuation).
 */
export function ftsMatch(tenant: string, userId: string, words: string[]): string | null {
  const scope = scopeOf(tenant, userId);
  const tokens = new Set<string>();
  for (const term of termsOf(words.join(' '))) tokens.add(token(scope, term));
  return tokens.size === 0 ? null : [...tokens].join(' OR ');
}
