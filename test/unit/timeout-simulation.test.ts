/**
 * A deterministic simulation of two users over 60 days (seeded PRNG, a clock of plain numbers)
 * comparing fixed idle timeouts with the adaptive model on premature expiries (a session cut
 * mid-conversation) and idle minutes held (the time a session stays open after the user left).
 *
 * FAST: gaps of ≈20–40 s, sessions of 5–30 messages, several sessions a day hours apart.
 * SLOW: gaps of ≈4–12 min with occasional ≈20-minute pauses (one gap in ten), sessions of 5–20
 * messages.
 *
 * ADAPTIVE sees the true session boundaries (a gap is within or between sessions as the user
 * meant it). ADAPTIVE (service view) sees what the service would: a gap longer than the timeout
 * in force ended the session, so it is learned as a between-session gap, and a between-session
 * gap shorter than the timeout merged two sessions, so it is learned as a within-session gap.
 * ADAPTIVE (service, 2× return) is the service view with one rule more: a user back within twice
 * the timeout after an expiry was probably cut mid-conversation, so that gap is learned as a
 * within-session gap. In all, the timeout in force for a gap is computed before that gap is
 * observed.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { prng } from '../../bench/lib/zipf.ts';
import { TimeoutModel, type TimeoutSettings } from '../../src/sessions/timeout-model.ts';

const SECOND = 1000;
const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const DAYS = 60;

const SETTINGS: TimeoutSettings = {
  defaultMs: 30 * MINUTE,
  minMs: 2 * MINUTE,
  maxMs: 2 * HOUR,
  quantile: 0.95,
  margin: 1.5,
};

/** One session of the trace: the gap since the user's previous session, then its gaps. */
interface Session {
  /** Null for the first session. */
  betweenMs: number | null;
  withinMs: number[];
}

interface User {
  name: string;
  seed: number;
  messages: [number, number];
  /** A sampler of one session's within-session gaps. */
  session: (random: () => number) => () => number;
  /** Median gap between two sessions of one day. */
  betweenMedianMs: number;
}

/** The slow user, with a given share of ≈20-minute pauses among its gaps. */
const slowUser = (pauseRate: number): User => ({
  name: 'slow',
  seed: 20_240_602,
  messages: [5, 20],
  session: (random) => {
    const median = uniform(random, 5 * MINUTE, 9 * MINUTE);
    return () =>
      random() < pauseRate ? logNormal(random, 20 * MINUTE, 0.1) : logNormal(random, median, 0.3);
  },
  betweenMedianMs: 3 * HOUR,
});

/** A log-normal draw around `median` with log-sd `sigma` (Box–Muller). */
function logNormal(random: () => number, median: number, sigma: number): number {
  const u = 1 - random();
  const v = random();
  return median * Math.exp(sigma * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v));
}

const uniform = (random: () => number, lo: number, hi: number): number => lo + random() * (hi - lo);

const FAST: User = {
  name: 'fast',
  seed: 20_240_601,
  messages: [5, 30],
  session: (random) => {
    const median = uniform(random, 20 * SECOND, 40 * SECOND);
    return () => logNormal(random, median, 0.4);
  },
  betweenMedianMs: 2.5 * HOUR,
};

const SLOW = slowUser(0.1);

/** The user's sessions over DAYS days: first one at 8–9 h, the last starting before 22 h. */
function trace(user: User): Session[] {
  const random = prng(user.seed);
  const sessions: Session[] = [];
  let clock = 0;
  let lastActivity: number | null = null;
  for (let day = 0; day < DAYS; day++) {
    let start = day * DAY + 8 * HOUR + uniform(random, 0, HOUR);
    while (start < day * DAY + 22 * HOUR) {
      clock = start;
      const n = Math.floor(uniform(random, user.messages[0], user.messages[1] + 1));
      const gap = user.session(random);
      const withinMs = Array.from({ length: n - 1 }, gap);
      for (const g of withinMs) clock += g;
      sessions.push({ betweenMs: lastActivity === null ? null : start - lastActivity, withinMs });
      lastActivity = clock;
      start = clock + Math.max(45 * MINUTE, logNormal(random, user.betweenMedianMs, 0.5));
    }
  }
  return sessions;
}

interface Outcome {
  policy: string;
  sessions: number;
  /** Within-session gaps longer than the timeout in force. */
  premature: number;
  /** Sessions with at least one premature expiry. */
  sessionsCut: number;
  /** Sum over sessions of the timeout in force after the last message, in minutes. */
  idleMinutes: number;
  /** Between-session gaps shorter than the timeout in force (two sessions merged). */
  merged: number;
  /** Mean timeout in force after a session's last message, in ms. */
  meanTimeoutMs: number;
}

/** How a policy picks the timeout and what it learns from a gap. */
interface Policy {
  name: string;
  timeout: () => number;
  /** Called after the gap was judged against the timeout in force (`timeoutMs`). */
  learn: (kind: 'within' | 'between', gapMs: number, timeoutMs: number) => void;
}

const fixed = (ms: number): Policy => ({
  name: `fixed ${ms / MINUTE} min`,
  timeout: () => ms,
  learn: () => {},
});

/** `truth`: learns the user's own boundaries; `service`: the service's; `return`: see top. */
type View = 'truth' | 'service' | 'return';

const VIEW_NAMES: Record<View, string> = {
  truth: 'adaptive',
  service: 'adaptive (service view)',
  return: 'adaptive (service, 2× return)',
};

function adaptive(view: View): Policy & { model: TimeoutModel } {
  const model = TimeoutModel.empty();
  return {
    name: VIEW_NAMES[view],
    model,
    timeout: () => model.timeout(SETTINGS).timeoutMs,
    learn: (kind, gapMs, timeoutMs) => {
      const asWithin =
        view === 'truth'
          ? kind === 'within'
          : gapMs <= (view === 'service' ? timeoutMs : 2 * timeoutMs);
      if (asWithin) model.observeWithin(gapMs);
      else model.observeBetween(gapMs);
    },
  };
}

function simulate(sessions: readonly Session[], policy: Policy): Outcome {
  let premature = 0;
  let sessionsCut = 0;
  let idleMs = 0;
  let merged = 0;
  for (const session of sessions) {
    if (session.betweenMs !== null) {
      const inForce = policy.timeout();
      if (session.betweenMs <= inForce) merged++;
      policy.learn('between', session.betweenMs, inForce);
    }
    let cut = false;
    for (const gap of session.withinMs) {
      const inForce = policy.timeout();
      if (gap > inForce) {
        premature++;
        cut = true;
      }
      policy.learn('within', gap, inForce);
    }
    if (cut) sessionsCut++;
    idleMs += policy.timeout();
  }
  return {
    policy: policy.name,
    sessions: sessions.length,
    premature,
    sessionsCut,
    idleMinutes: Math.round(idleMs / MINUTE),
    merged,
    meanTimeoutMs: idleMs / sessions.length,
  };
}

function table(user: string, outcomes: readonly Outcome[]): string[] {
  const pad = (text: string | number, width: number): string => String(text).padStart(width);
  const lines = [
    `${user.padEnd(5)} ${'policy'.padEnd(29)} ${pad('sessions', 8)} ${pad('premature', 9)} ${pad('cut', 4)} ${pad('cut %', 6)} ${pad('idle min', 9)} ${pad('idle/sess', 9)} ${pad('merged', 6)}`,
  ];
  for (const o of outcomes) {
    lines.push(
      `${user.padEnd(5)} ${o.policy.padEnd(29)} ${pad(o.sessions, 8)} ${pad(o.premature, 9)} ${pad(o.sessionsCut, 4)} ${pad(((100 * o.sessionsCut) / o.sessions).toFixed(1), 6)} ${pad(o.idleMinutes, 9)} ${pad((o.idleMinutes / o.sessions).toFixed(1), 9)} ${pad(o.merged, 6)}`,
    );
  }
  return lines;
}

interface Run {
  outcomes: Outcome[];
  adaptive: Outcome;
  service: Outcome;
  returning: Outcome;
  fixed: Outcome[];
  finalTimeoutMs: number;
}

function run(user: User): Run {
  const sessions = trace(user);
  const fixedOutcomes = [5, 15, 30].map((m) => simulate(sessions, fixed(m * MINUTE)));
  const learner = adaptive('truth');
  const adaptiveOutcome = simulate(sessions, learner);
  const serviceOutcome = simulate(sessions, adaptive('service'));
  const returningOutcome = simulate(sessions, adaptive('return'));
  return {
    outcomes: [...fixedOutcomes, adaptiveOutcome, serviceOutcome, returningOutcome],
    adaptive: adaptiveOutcome,
    service: serviceOutcome,
    returning: returningOutcome,
    fixed: fixedOutcomes,
    finalTimeoutMs: learner.model.timeout(SETTINGS).timeoutMs,
  };
}

const percent = (o: Outcome): string => `${((100 * o.premature) / o.sessions).toFixed(1)}%`;

describe('adaptive session timeout: a 60-day simulation of a fast and a slow user', () => {
  const fast = run(FAST);
  const slow = run(SLOW);

  it('prints the counts per user and policy', (t) => {
    for (const line of [...table('fast', fast.outcomes), ...table('slow', slow.outcomes)]) {
      t.diagnostic(line);
    }
    t.diagnostic(
      `final adaptive timeout: fast ${(fast.finalTimeoutMs / MINUTE).toFixed(1)} min, slow ${(slow.finalTimeoutMs / MINUTE).toFixed(1)} min`,
    );
    // A few sessions a day for 60 days.
    for (const r of [fast, slow]) {
      assert.ok(r.adaptive.sessions >= 2 * DAYS && r.adaptive.sessions <= 8 * DAYS);
    }
  });

  it('fast user: adaptive holds fewer idle minutes than every fixed policy at least as safe', () => {
    const asSafe = fast.fixed.filter((f) => f.premature <= fast.adaptive.premature);
    assert.ok(asSafe.length > 0, 'no fixed policy is as safe as adaptive');
    for (const f of asSafe) {
      assert.ok(
        fast.adaptive.idleMinutes < f.idleMinutes,
        `adaptive ${fast.adaptive.idleMinutes} idle min vs ${f.policy} ${f.idleMinutes}`,
      );
    }
  });

  it('slow user: adaptive cuts at most 5% of sessions, fixed 5 min cuts most', () => {
    assert.ok(
      slow.adaptive.premature <= 0.05 * slow.adaptive.sessions,
      `adaptive: ${slow.adaptive.premature} premature expiries in ${slow.adaptive.sessions} sessions`,
    );
    const five = slow.fixed[0] as Outcome;
    assert.ok(five.sessionsCut >= 0.5 * five.sessions, `fixed 5 min cut ${five.sessionsCut}`);
    assert.ok(five.premature > 10 * Math.max(1, slow.adaptive.premature));
  });

  it("fast user's adaptive timeout is shorter than the slow user's", () => {
    assert.ok(fast.finalTimeoutMs < slow.finalTimeoutMs);
    assert.ok(fast.adaptive.meanTimeoutMs < slow.adaptive.meanTimeoutMs);
  });

  it('slow user: a service that counts a quick return after an expiry as within stays close', () => {
    // Without that rule, cut pauses are learned as between-session gaps and the timeout sinks.
    assert.ok(slow.returning.premature <= 0.05 * slow.returning.sessions);
    assert.ok(slow.returning.premature <= slow.service.premature);
  });

  it('slow user: premature expiries against the share of pauses (diagnostic)', (t) => {
    // The 0.95 quantile covers the pauses only when they are more than ≈5% of the gaps.
    const rows: string[] = [];
    for (const rate of [0.03, 0.05, 0.08, 0.1, 0.15]) {
      const sessions = trace(slowUser(rate));
      const cells = (['truth', 'service', 'return'] as const).map(
        (v) => `${v} ${percent(simulate(sessions, adaptive(v))).padStart(5)}`,
      );
      rows.push(
        `pauses ${String(rate * 100).padStart(2)}% of gaps, premature expiries per session: ${cells.join(', ')}`,
      );
    }
    for (const row of rows) t.diagnostic(row);
    assert.equal(rows.length, 5);
  });

  it('no fixed policy beats adaptive on both counts, for either user', () => {
    for (const r of [fast, slow]) {
      for (const f of r.fixed) {
        const dominates =
          f.premature <= r.adaptive.premature && f.idleMinutes <= r.adaptive.idleMinutes;
        assert.ok(!dominates, `${f.policy} dominates adaptive`);
      }
    }
  });
});
