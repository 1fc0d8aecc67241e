import type { NewMemoryInput } from '../memory/memory-service.ts';
import type { MemoryRow } from '../memory/memory-types.ts';
import { idf } from '../search/signals.ts';
import { termsOf } from '../search/tokenizer.ts';
import type { UserIndex } from '../search/user-index.ts';
import type { SessionRow } from './session-types.ts';

/** Longest excerpt of one message in a summary, and of the whole summary, in characters. */
const EXCERPT_CHARS = 300;
const SUMMARY_CHARS = 2000;

/** Messages picked: one per five, between one and five. */
function picks(messages: number): number {
  return Math.min(5, Math.max(1, Math.ceil(messages / 5)));
}

/**
 * How much a message says: the summed inverse document frequency of its distinct terms (rare
 * words weigh more: the BM25 signal), over the square root of its length (long messages do not
 * win by length alone), raised by its importance. Frequencies come from the user's index when
 * held, else from the session's own messages.
 */
export function informativeness(
  terms: string[],
  importance: number,
  df: (term: string) => number,
  n: number,
): number {
  const distinct = [...new Set(terms)];
  if (distinct.length === 0) return 0;
  let sum = 0;
  for (const t of distinct) sum += idf(df(t), n);
  return (sum / Math.sqrt(distinct.length)) * (1 + importance);
}

function excerpt(row: MemoryRow): string {
  const role = typeof row.metadata.role === 'string' ? `${row.metadata.role}: ` : '';
  const text = row.content.replace(/\s+/g, ' ').trim();
  const cut = text.length > EXCERPT_CHARS ? `${text.slice(0, EXCERPT_CHARS - 1)}…` : text;
  return `${role}${cut}`;
}

/**
 * The summary memory of an ended session, as input for `MemoryService.build` (extractive, no language model): its most informative
 * messages, in the order they were said. Null for a session without messages.
 */
export function summarizeSession(
  session: SessionRow,
  messages: MemoryRow[],
  index: UserIndex | null,
): NewMemoryInput | null {
  if (messages.length === 0) return null;
  const termLists = messages.map((m) => termsOf(m.content));
  let df: (t: string) => number;
  let n: number;
  if (index && index.docCount > 0) {
    df = (t) => index.df(t);
    n = index.docCount;
  } else {
    const counts = new Map<string, number>();
    for (const terms of termLists)
      for (const t of new Set(terms)) counts.set(t, (counts.get(t) ?? 0) + 1);
    df = (t) => counts.get(t) ?? 0;
    n = messages.length;
  }
  const chosen = messages
    .map((m, i) => ({ m, i, score: informativeness(termLists[i] ?? [], m.importance, df, n) }))
    .sort((a, b) => b.score - a.score || a.i - b.i)
    .slice(0, picks(messages.length))
    .sort((a, b) => a.i - b.i);
  const day = new Date(session.createdAt).toISOString().slice(0, 10);
  let content = `Session of ${day}, ${messages.length} message${messages.length === 1 ? '' : 's'}: `;
  content += chosen.map((c) => excerpt(c.m)).join(' … ');
  if (content.length > SUMMARY_CHARS) content = `${content.slice(0, SUMMARY_CHARS - 1)}…`;
  return {
    userId: session.userId,
    agentId: session.agentId ?? undefined,
    sessionId: session.id,
    content,
    kind: 'summary',
    tags: ['session-summary'],
    metadata: {
      sessionId: session.id,
      messages: messages.length,
      excerpts: chosen.map((c) => c.m.id),
    },
    importance: 0.6,
  };
}
