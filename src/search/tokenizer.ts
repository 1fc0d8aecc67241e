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

/**
 * Folds one word as it is indexed: lower case, a short suffix after an apostrophe dropped, cut
 * to {@link MAX_WORD}; pushed onto `out` unless it is empty or a stop word. `lower` and `plain`
 * say what a scan already knows: the word has no upper case, no apostrophe.
 */
function pushWord(raw: string, out: string[], lower = false, plain = false): void {
  let word = lower ? raw : raw.toLowerCase();
  if (!plain && (word.includes("'") || word.includes('’'))) {
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
  out.push(word);
}

/** Whether a UTF-16 unit is an ASCII letter or digit. */
function isAsciiAlnum(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || (c >= 65 && c <= 90);
}

/**
 * The folded words of an ASCII text, or null when the text is not ASCII. A word is WORD
 * restricted to ASCII: a run of letters and digits, with inner apostrophes (each followed by a
 * letter or digit). Found by a scan of the character codes: a regex match array per word and a
 * separate test for non-ASCII took most of a short query's tokenizing.
 */
function asciiWords(text: string): string[] | null {
  const out: string[] = [];
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) return null;
    if (!isAsciiAlnum(c)) {
      i++;
      continue;
    }
    const start = i;
    let upper = c <= 90 && c >= 65;
    let apostrophe = false;
    // Every unit is seen here or by the outer loop: the first that ends the word is not taken.
    for (i++; i < n; i++) {
      const d = text.charCodeAt(i);
      if (isAsciiAlnum(d)) {
        if (d <= 90 && d >= 65) upper = true;
      } else if (d === 39 && i + 1 < n && isAsciiAlnum(text.charCodeAt(i + 1))) {
        apostrophe = true;
      } else break;
    }
    pushWord(text.slice(start, i), out, !upper, !apostrophe);
  }
  return out;
}

/** The folded words of a text (not stemmed), in text order; stop words left out. */
function wordsOf(text: string): string[] {
  // ASCII text (most queries and memories): a scan, several times faster than the Unicode
  // property classes.
  const ascii = asciiWords(text);
  if (ascii !== null) return ascii;
  const out: string[] = [];
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

/**
 * Splits text into words (Unicode word boundaries), folds case and compatibility forms, drops
 * English stop words and stems English words (Porter). Returns tokens in text order.
 */
export function tokenize(text: string): Token[] {
  return wordsOf(text).map((word) => ({ word, term: stemOf(word) }));
}

/** The index terms of a text (stems, in text order, repeated as often as they occur). */
export function termsOf(text: string): string[] {
  const words = wordsOf(text);
  for (let i = 0; i < words.length; i++) words[i] = stemOf(words[i] as string);
  return words;
}
