/** Where a session is in its life. `expired`: ended by the sweeper after its idle timeout. */
export type SessionState = 'active' | 'ended' | 'expired';

/** Why a session has the idle timeout it has (shown by GET /v1/sessions/{id}). */
export interface TimeoutBasis {
  /** `default`: too little history; `learned`: from the user's own gaps. */
  source: 'default' | 'learned';
  /** Within-session gaps observed (decayed count). */
  withinGaps: number;
  /** Between-session gaps observed (decayed count). */
  betweenGaps: number;
  /** The quantile of within-session gaps the timeout starts from, and its value. */
  quantile: number;
  quantileMs: number | null;
  /** The factor applied to that quantile. */
  margin: number;
  /** Set when the learned value was cut to the configured bounds. */
  clamped: 'min' | 'max' | null;
  /** Median gap between the user's sessions, when known. */
  betweenMedianMs: number | null;
}

/** A session as the store holds it (times are epoch ms). */
export interface SessionRow {
  tenant: string;
  /** ULID. */
  id: string;
  userId: string;
  agentId: string | null;
  state: SessionState;
  createdAt: number;
  /** Last message or touch. */
  lastActivityAt: number;
  /** lastActivityAt + timeoutMs while active. */
  expiresAt: number;
  endedAt: number | null;
  /** The idle timeout in force. */
  timeoutMs: number;
  timeoutBasis: TimeoutBasis;
  /** Messages appended so far. */
  messageCount: number;
  /** The summary memory written when the session ended, if any. */
  summaryId: string | null;
}

/** Changes of an active session on activity (a message or a touch). */
export interface SessionActivity {
  at: number;
  expiresAt: number;
  timeoutMs: number;
  timeoutBasis: TimeoutBasis;
  /** Messages appended with this activity (0 for a touch). */
  messages: number;
}

/** A user's learned timeout model, serialized (see timeout-model.ts). */
export interface TimeoutModelRow {
  tenant: string;
  userId: string;
  /** JSON of the model. */
  model: string;
  updatedAt: number;
}
