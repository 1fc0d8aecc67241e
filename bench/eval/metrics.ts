/** Retrieval quality of one question: ranked ids against the relevant ones. */
export interface QuestionScore {
  category: number;
  recallAt5: number;
  recallAt10: number;
  hitAt10: number;
  reciprocalRank: number;
}

/** Scores one ranked list (best first) against the set of relevant ids. */
export function scoreRanking(
  ranked: string[],
  relevant: Set<string>,
  category: number,
): QuestionScore {
  const found = (k: number): number => ranked.slice(0, k).filter((id) => relevant.has(id)).length;
  const first = ranked.findIndex((id) => relevant.has(id));
  return {
    category,
    recallAt5: found(5) / relevant.size,
    recallAt10: found(10) / relevant.size,
    hitAt10: found(10) > 0 ? 1 : 0,
    reciprocalRank: first < 0 ? 0 : 1 / (first + 1),
  };
}

/** Averages of a set of question scores. */
export interface Summary {
  questions: number;
  recallAt5: number;
  recallAt10: number;
  hitAt10: number;
  mrr: number;
}

/** Averages question scores. */
export function summarize(scores: QuestionScore[]): Summary {
  const mean = (f: (s: QuestionScore) => number): number =>
    scores.length === 0 ? 0 : scores.reduce((a, s) => a + f(s), 0) / scores.length;
  return {
    questions: scores.length,
    recallAt5: mean((s) => s.recallAt5),
    recallAt10: mean((s) => s.recallAt10),
    hitAt10: mean((s) => s.hitAt10),
    mrr: mean((s) => s.reciprocalRank),
  };
}
