/**
 * The search tokenizer: word splitting, case and compatibility folding, apostrophes, stop words,
 * stemming, unspaced scripts (CJK, Thai), the word-length cap, and its invariants on any input.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { STOP_WORDS, termsOf, tokenize } from '../../src/search/tokenizer.ts';

const words = (text: string): string[] => tokenize(text).map((t) => t.word);

describe('tokenize: splitting and folding', () => {
  it('splits on punctuation and folds case', () => {
    assert.deepEqual(words('Hello, WORLD!'), ['hello', 'world']);
    assert.deepEqual(termsOf('Hello, WORLD!'), ['hello', 'world']);
  });

  it('keeps words in text order, repeated as often as they occur', () => {
    assert.deepEqual(termsOf('guitar piano guitar'), ['guitar', 'piano', 'guitar']);
  });

  it('splits on every kind of white space and separator', () => {
    assert.deepEqual(words('alpha\tbeta\ngamma\u00a0delta\u2003epsilon/zeta_eta-theta'), [
      'alpha',
      'beta',
      'gamma',
      'delta',
      'epsilon',
      'zeta',
      'eta',
      'theta',
    ]);
  });

  it('folds full-width and other compatibility forms (NFKC)', () => {
    assert.deepEqual(termsOf('ＡＢＣ'), ['abc']);
    assert.deepEqual(words('ﬁsh'), ['fish']);
    assert.deepEqual(termsOf('ＡＢＣ'), termsOf('abc'));
  });

  it('folds case beyond ASCII', () => {
    assert.deepEqual(words('ÉCOLE Straße'), ['école', 'straße']);
  });

  it('returns nothing for empty, blank, punctuation-only and emoji-only text', () => {
    assert.deepEqual(tokenize(''), []);
    assert.deepEqual(tokenize('   \n\t '), []);
    assert.deepEqual(tokenize('!!! ... ??? -- ,;:()[]{}'), []);
    assert.deepEqual(tokenize('😀🎉👍🏽 🚀'), []);
    assert.deepEqual(tokenize('👨‍👩‍👧‍👦'), []);
  });

  it('returns nothing for emoji written with a variation selector ("❤️", "☀️")', () => {
    assert.deepEqual(tokenize('❤️'), []);
    assert.deepEqual(tokenize('☀️ ✔️'), []);
    assert.deepEqual(termsOf('I ❤️ NY'), ['ny']);
    assert.deepEqual(tokenize('\u0301'), []);
  });
});

describe('tokenize: apostrophes', () => {
  it('drops a possessive suffix and stems the word', () => {
    assert.deepEqual(tokenize("Caroline's"), [{ word: 'caroline', term: 'carolin' }]);
    assert.deepEqual(termsOf("Caroline's"), termsOf('Caroline'));
  });

  it('accepts the typographic apostrophe like the straight one', () => {
    assert.deepEqual(termsOf('Caroline’s'), termsOf("Caroline's"));
    assert.deepEqual(termsOf('O’Neil'), termsOf("O'Neil"));
  });

  it('drops a short contraction suffix: "don\'t" leaves the stop word "don", never "t"', () => {
    assert.deepEqual(words("don't"), []);
    assert.deepEqual(words("isn't doesn't"), []);
    assert.ok(!termsOf("don't panic").includes('t'));
    assert.deepEqual(words("don't panic"), ['panic']);
  });

  it('joins a name written with an apostrophe: "o\'neil" meets "oneil"', () => {
    assert.deepEqual(words("o'neil"), ['oneil']);
    assert.deepEqual(termsOf("o'neil"), termsOf('oneil'));
  });

  it('treats quotes around a word as punctuation', () => {
    assert.deepEqual(words("'quoted' words'"), ['quoted', 'words']);
  });
});

describe('tokenize: stop words', () => {
  it('drops English stop words and question words', () => {
    assert.deepEqual(tokenize('the what when did'), []);
    assert.deepEqual(words('When did Caroline go to the museum?'), ['caroline', 'go', 'museum']);
  });

  it('drops stop words whatever their case', () => {
    assert.deepEqual(tokenize('THE What WHEN Did'), []);
  });

  it('drops the added auxiliaries (does, doing, done, which, whose, not …)', () => {
    assert.deepEqual(tokenize('does doing done why whom whose which kind yes no not'), []);
  });
});

describe('tokenize: stemming', () => {
  it('stems English words (Porter)', () => {
    assert.deepEqual(termsOf('running runs run'), ['run', 'run', 'run']);
    assert.deepEqual(termsOf('connected connection connecting'), ['connect', 'connect', 'connect']);
  });

  it('keeps the folded word as written beside its stem', () => {
    assert.deepEqual(tokenize('Running'), [{ word: 'running', term: 'run' }]);
  });

  it('stems the same way every time (the stem cache)', () => {
    const first = termsOf('swimming painting hiking');
    for (let i = 0; i < 3; i++) assert.deepEqual(termsOf('swimming painting hiking'), first);
  });

  it('leaves non-ASCII words unstemmed', () => {
    assert.deepEqual(tokenize('cafés'), [{ word: 'cafés', term: 'cafés' }]);
  });
});

describe('tokenize: numbers', () => {
  it('keeps numbers as words, splitting at a decimal point', () => {
    assert.deepEqual(termsOf('42 2024 3.14'), ['42', '2024', '3', '14']);
  });

  it('keeps words mixing letters and digits', () => {
    assert.deepEqual(words('gpt4 b2b'), ['gpt4', 'b2b']);
  });

  it('folds full-width digits', () => {
    assert.deepEqual(termsOf('２０２４'), ['2024']);
  });
});

describe('tokenize: unspaced scripts', () => {
  it('splits Japanese into several words', () => {
    const t = termsOf('東京で寿司を食べた');
    assert.ok(t.length >= 3, JSON.stringify(t));
    assert.ok(t.includes('東京'), JSON.stringify(t));
    assert.ok(t.includes('寿司'), JSON.stringify(t));
    assert.equal(t.join(''), '東京で寿司を食べた'.replace(/\s/g, ''));
  });

  it('splits Chinese into several words', () => {
    const t = termsOf('我喜欢吃寿司和拉面');
    assert.ok(t.length >= 3, JSON.stringify(t));
    assert.equal(t.join(''), '我喜欢吃寿司和拉面');
  });

  it('splits Thai into several words', () => {
    const t = termsOf('ฉันชอบกินข้าวผัด');
    assert.ok(t.length >= 3, JSON.stringify(t));
    assert.equal(t.join(''), 'ฉันชอบกินข้าวผัด');
  });

  it('handles mixed English and Japanese text, English still stemmed', () => {
    const t = termsOf('Running in 東京 today');
    assert.ok(t.includes('run'), JSON.stringify(t));
    assert.ok(t.includes('東京'), JSON.stringify(t));
    assert.ok(t.includes('todai'), JSON.stringify(t));
    assert.ok(!t.includes('in'), JSON.stringify(t));
  });

  it('drops punctuation of unspaced scripts', () => {
    const t = termsOf('寿司。ラーメン、「天ぷら」！');
    assert.ok(t.length >= 3, JSON.stringify(t));
    for (const term of t) assert.doesNotMatch(term, /[。、「」！]/);
  });
});

describe('tokenize: the word-length cap', () => {
  it('cuts words to 64 characters', () => {
    const t = tokenize('x'.repeat(100));
    assert.equal(t.length, 1);
    assert.equal(t[0]?.word, 'x'.repeat(64));
    assert.ok((t[0]?.term.length ?? 0) <= 64);
  });

  it('keeps a word of exactly 64 characters whole', () => {
    const word = 'ab'.repeat(32);
    assert.equal(tokenize(word)[0]?.word, word);
  });

  it('cuts after case folding that lengthens a word', () => {
    // "İ" lower-cases to two code units.
    for (const t of tokenize('İ'.repeat(50))) {
      assert.ok([...t.word].length <= 64 && [...t.term].length <= 64);
    }
  });

  it('cuts on a code point boundary, never inside a surrogate pair', () => {
    const [t] = tokenize(`${'a'.repeat(63)}𐌰𐌰`);
    assert.ok(t);
    assert.ok(t.word.isWellFormed() && t.term.isWellFormed(), JSON.stringify(t.word.slice(60)));
  });

  it('cuts each word of a long text separately', () => {
    const t = tokenize(`${'a'.repeat(80)} ${'b'.repeat(80)} short`);
    assert.deepEqual(
      t.map((x) => x.word.length),
      [64, 64, 5],
    );
  });
});

/** Checks the invariants of tokenize's output for one input. */
function checkInvariants(text: string): void {
  const tokens = tokenize(text);
  for (const { word, term } of tokens) {
    assert.ok(word.length > 0 && term.length > 0, JSON.stringify({ text, word, term }));
    assert.ok(
      [...word].length <= 64 && [...term].length <= 64,
      JSON.stringify({ text, word, term }),
    );
    assert.equal(word, word.toLowerCase(), JSON.stringify({ text, word }));
    assert.equal(term, term.toLowerCase(), JSON.stringify({ text, term }));
    assert.ok(!STOP_WORDS.has(word), JSON.stringify({ text, word }));
  }
  assert.deepEqual(
    termsOf(text),
    tokens.map((t) => t.term),
  );
}

describe('tokenize: properties', () => {
  it('never throws; terms are non-empty, ≤ 64 chars, lower-case, not stop words (binary strings)', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300 }), checkInvariants), {
      numRuns: 2_000,
    });
  });

  it('holds for full-Unicode and grapheme strings too', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'grapheme', maxLength: 200 }),
          fc.string({ unit: 'grapheme-composite', maxLength: 200 }),
          fc.string({
            unit: fc.constantFrom('İ', 'ß', 'ﬁ', 'Ａ', "'", '’', ' ', 'x'),
            maxLength: 200,
          }),
        ),
        checkInvariants,
      ),
      { numRuns: 2_000 },
    );
  });

  it('holds for texts made of English words, stop words and apostrophes', () => {
    const word = fc.constantFrom(
      'the',
      'The',
      'WHEN',
      'did',
      "don't",
      "Caroline's",
      'running',
      'o’neil',
      'Tokyo',
      '東京',
      '42',
      "'",
      'a'.repeat(70),
    );
    fc.assert(
      fc.property(
        fc.array(word, { maxLength: 20 }),
        fc.constantFrom(' ', ', ', '\n', ''),
        (ws, sep) => checkInvariants(ws.join(sep)),
      ),
      { numRuns: 1_000 },
    );
  });

  it('is deterministic: the same text gives the same tokens', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 100 }), (text) => {
        assert.deepEqual(tokenize(text), tokenize(text));
      }),
      { numRuns: 500 },
    );
  });

  it('a stop word alone never yields a token, in any case', () => {
    fc.assert(
      fc.property(fc.constantFrom(...STOP_WORDS), fc.boolean(), (w, upper) => {
        // Stop words with an apostrophe in the list ("don't") are split by the tokenizer first.
        if (w.includes("'") || w.includes('’')) return;
        assert.deepEqual(tokenize(upper ? w.toUpperCase() : w), [], w);
      }),
      { numRuns: 500 },
    );
  });

  it('ASCII text gives the same tokens on its fast path as on the Unicode path', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary-ascii', maxLength: 200 }),
          // Apostrophes, case and digits at word edges, often.
          fc.string({
            unit: fc.constantFrom('a', 'Q', 's', 't', '7', "'", "''", ' ', '-'),
            maxLength: 60,
          }),
        ),
        (text) => {
          // A trailing non-ASCII word sends the same text down the Unicode path.
          const unicode = tokenize(`${text} \u00e9t\u00e9`);
          assert.deepEqual(unicode.at(-1), { word: 'été', term: 'été' });
          assert.deepEqual(tokenize(text), unicode.slice(0, -1));
          assert.deepEqual(
            termsOf(text),
            unicode.slice(0, -1).map((t) => t.term),
          );
        },
      ),
      { numRuns: 3000 },
    );
  });
});
