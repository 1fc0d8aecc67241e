import { isoTime as iso } from '../util/iso-time.ts';
import type { SessionRow, TimeoutBasis } from './session-types.ts';

/** A session as the API shows it: ISO-8601 times, no tenant. */
export interface PublicSession {
  id: string;
  userId: string;
  agentId: string | null;
  state: string;
  createdAt: string;
  lastActivityAt: string;
  /** When an active session ends unless there is activity first; when it ended otherwise. */
  expiresAt: string;
  endedAt: string | null;
  /** The idle timeout in force and what it was learned from. */
  timeout: { ms: number; basis: TimeoutBasis };
  messageCount: number;
  summaryId: string | null;
}

/** The public view of a stored session. */
export function toPublicSession(s: SessionRow): PublicSession {
  return {
    id: s.id,
    userId: s.userId,
    agentId: s.agentId,
    state: s.state,
    createdAt: iso(s.createdAt),
    lastActivityAt: iso(s.lastActivityAt),
    expiresAt: iso(s.expiresAt),
    endedAt: s.endedAt === null ? null : iso(s.endedAt),
    timeout: { ms: s.timeoutMs, basis: s.timeoutBasis },
    messageCount: s.messageCount,
    summaryId: s.summaryId,
  };
}
