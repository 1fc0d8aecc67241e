/** `tokenize` and `termsOf` on a query, an ASCII memory, accented text and CJK text. */
import { termsOf, tokenize } from '../../src/search/tokenizer.ts';
import { type MicroResult, measure } from './micro-result.ts';

const TEXTS: Array<[string, string]> = [
  ['short ASCII query', 'where did Caroline go hiking'],
  [
    '200-char ASCII memory',
    "Caroline mentioned she's planning a hiking trip to the Rocky Mountains next summer with her sister; they want to camp near a lake and she asked for tips on lightweight tents and bear-proof food storage.",
  ],
  [
    'accented text',
    'Hélène a réservé un séjour à Besançon pour l’été prochain ; elle préfère les hôtels près de la cathédrale et déteste les trajets en voiture trop longs.',
  ],
  [
    'CJK text',
    '我下个月要去东京出差，想在新宿附近找一家安静的酒店，最好离车站不远，早餐包含在房价里。',
  ],
];

export async function run(): Promise<MicroResult[]> {
  const tasks: Array<[string, () => void]> = [];
  for (const [label, text] of TEXTS) {
    tasks.push([`tokenize, ${label} (${text.length} chars)`, () => void tokenize(text)]);
    tasks.push([`termsOf, ${label} (${text.length} chars)`, () => void termsOf(text)]);
  }
  return measure('tokenizing', tasks);
}
