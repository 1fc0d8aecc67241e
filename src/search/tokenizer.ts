import { stemmer } from 'stemmer';
import { eng } from 'stopword';

/**
 * English stop words: the `stopword` package's list, plus the question and auxiliary words that
 * search queries are made of ("when did …", "what does …") and that carry no topic.
 */
export const STOP_WORDS: ReadonlySet<string> = new Set([
  ...eng,
  'does',
  'doing',
  'done',
  'when',
  'why',
  'whom',
  'whose',
  'which',
  'kind',
  'yes',
  'no',
  'not',
  's',
  't',
  // What is left of negative contractions once their suffix is dropped ("don't" → "don").
  'ain',
  'aren',
  'couldn',
  'didn',
  'doesn',
  'don',
  'hadn',
  'hasn',
  'haven',
  'isn',
  'mustn',
  'shouldn',
  'wasn',
  'weren',
  'wouldn',
]);

// Scripts written without spaces between words: split by Intl.Segmenter's dictionaries.
const UNSPACED =
  /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Thai}\p{Script=Lao}\p{Script=Khmer}\p{Script=Myanmar}]/u;
// A word: a letter or digit, then letters, marks and digits, with inner apostrophes ("don't",
// "o'neil"). Marks alone (an emoji's variation selector, a stray accent) are no word.
const WORD = /[\p{L}\p{N}][\p{L}\p{M}\p{N}]*(?:['’][\p{L}\p{M}\p{N}]+)*/gu;
const ASCII_WORD = /^[a-z]+$/;
// WORD restricted to ASCII: letters and digits, with inner apostrophes.
const ASCII_WORDS = /[A-Za-z0-9]+(?:'[A-Za-z0-9]+)*/g;
const NOT_ASCII = /[\u0080-\uffff]/;

const segmenter = new Intl.Segmenter(undefined, { granularity: 'word' });

/** Longest word kept (longer runs are cut): bounds the work and the index of hostile input. */
const MAX_WORD = 64;

// Stemming costs ~0.6 µs a word; words repeat, so stems are remembered (bounded: reset when full).
const STEM_CACHE_MAX = 100_000;
let stems = new Map<string, string>();

function stemOf(word: string): string {
  let stem = stems.get(word);
  if (stem === undefined) {
    // The Porter stemmer knows English only: other words are kept as they are.
    stem = ASCII_WORD.test(word) ? stemmer(word) : word;
    if (stems.size >= STEM_CACHE_MAX) stems = new Map();
    stems.set(word, stem);
  }
  return stem;
}

/** One word of a text: as written (folded) and as indexed (stemmed). */
export interface Token {
  word: string;
  term: string;
}

function pushWord(raw: string, out: Token[]): void {
  let word = raw.toLowerCase();
  if (word.includes("'") || word.includes('’')) {
    const parts = word.split(/['’]/);
    // A short suffix is a possessive or a contraction ("caroline's" → caroline, "isn't" → isn,
    // a stop word); a longer one is part of a name ("o'neil" → oneil).
    word = parts[0] ?? '';
    const rest = parts.slice(1).join('');
    if (rest.length > 2) word += rest;
  }
  // Cut by code points, never inside a surrogate pair.
  if (word.length > MAX_WORD) word = Array.from(word).slice(0, MAX_WORD).join('');
  if (word.length === 0 || STOP_WORDS.has(word)) return;
  out.push({ word, term: stemOf(word) });
}

/**
 * Splits text into words (Unicode word boundaries), folds case and compatibility forms, drops
 * English stop words and stems English words (Porter). Returns tokens in text order.
 */
export function tokenize(text: string): Token[] {
  const out: Token[] = [];
  if (!NOT_ASCII.test(text)) {
    // ASCII text (most queries and memories): the same words, found by a byte-class regex,
    // which is several times faster than the Unicode property classes.
    ASCII_WORDS.lastIndex = 0;
    for (let m = ASCII_WORDS.exec(text); m !== null; m = ASCII_WORDS.exec(text)) {
      pushWord(m[0], out);
    }
    return out;
  }
  const source = text.normalize('NFKC');
  if (UNSPACED.test(source)) {
    for (const s of segmenter.segment(source)) {
      if (!s.isWordLike) continue;
      for (const m of s.segment.matchAll(WORD)) pushWord(m[0], out);
    }
    return out;
  }
  for (const m of source.matchAll(WORD)) pushWord(m[0], out);
  return out;
}

/** The index terms of a text (stems, in text order, repeated as often as they occur). */
export function termsOf(text: string): string[] {
  return tokenize(text).map((t) => t.term);
}
