// The PostgreSQL prefilter for witness regex queries: the substrings it requires must be in every
// string the pattern matches (checked against re2js on generated strings), and it must give up
// rather than guess on what it does not parse.
import { RE2JS } from 're2js';
import { describe, expect, it } from 'vitest';
import {
  containsLike,
  regexPrefilter,
  requiredLiterals,
} from '../../src/services/witness/regex-prefilter.js';

describe('requiredLiterals', () => {
  it('finds the literal runs every match contains', () => {
    expect(requiredLiterals('.*error.*')).toEqual(['error']);
    expect(requiredLiterals('^signaling_.*_failed$')).toEqual(['signaling_', '_failed']);
    expect(requiredLiterals('colou?r_changed')).toEqual(['colo', 'r_changed']);
    expect(requiredLiterals('turn\\.example\\.com:3478')).toEqual(['turn.example.com:3478']);
    expect(requiredLiterals('abc+def')).toEqual(['abc', 'def']);
    expect(requiredLiterals('x{0,3}yyy(a|b)zzz[0-9]+ok!')).toEqual(['yyy', 'zzz', 'ok!']);
    expect(requiredLiterals('abcd*?efg')).toEqual(['abc', 'efg']);
  });

  it('gives up on alternation at the top, flags set mid-pattern and literals JSON would escape', () => {
    expect(requiredLiterals('error|warning')).toEqual([]);
    expect(requiredLiterals('(?i)error')).toEqual([]); // case-sensitive literals: none
    expect(requiredLiterals('abc(?i)def')).toEqual([]);
    expect(requiredLiterals('abc(?-s:x)(?i)def')).toEqual([]);
    expect(requiredLiterals('\\Qa.b\\E')).toEqual([]);
    expect(requiredLiterals('(a+)+$')).toEqual([]);
    expect(requiredLiterals('say "hello"')).toEqual(['say ', 'hello']);
    expect(requiredLiterals('\\d\\d\\d-\\w+')).toEqual([]);
    expect(requiredLiterals('naïve')).toEqual([]);
  });

  it('treats a group, flags and all, as one atom and alternation inside it as no concern', () => {
    expect(requiredLiterals('abc(?:x|y)def')).toEqual(['abc', 'def']);
    expect(requiredLiterals('abc(?i:xyz)def')).toEqual(['abc', 'def']);
    expect(requiredLiterals('abc(?P<name>x|y)?def')).toEqual(['abc', 'def']);
    expect(requiredLiterals('(?s)abc.*def')).toEqual(['abc', 'def']);
    expect(requiredLiterals('(?m)^abc$')).toEqual(['abc']);
    expect(requiredLiterals('[|(]abc[)|]')).toEqual(['abc']);
    expect(requiredLiterals('abc\\|def')).toEqual(['abc|def']);
    expect(requiredLiterals('\\(abc\\)')).toEqual(['(abc)']);
    // Whole escapes are passed over: \x41def matches "Adef", which lacks "41def".
    expect(requiredLiterals('abc\\x41def\\pLghi\\bjkl')).toEqual(['abc', 'def', 'ghi', 'jkl']);
    expect(requiredLiterals('\\x{41}bcd\\p{Greek}xyz\\101bcd\\x4')).toEqual(['bcd', 'xyz']);
  });

  it('makes a leading (?i) case-insensitive literals, ended by k and s (whose RE2 case orbits are not ASCII)', () => {
    expect(regexPrefilter('(?i)error')).toEqual({ literals: ['error'], caseInsensitive: true });
    expect(regexPrefilter('(?is)timeout.*failed')).toEqual({
      literals: ['timeout', 'failed'],
      caseInsensitive: true,
    });
    expect(regexPrefilter('(?i)disk_full')).toEqual({ literals: ['_full'], caseInsensitive: true });
    expect(regexPrefilter('(?i)kelvin').literals).toEqual(['elvin']);
    expect(regexPrefilter('(?i)status').literals).toEqual(['tatu']);
    expect(regexPrefilter('(?-i)error')).toEqual({ literals: ['error'], caseInsensitive: false });
    expect(regexPrefilter('(?i)a|bcd')).toEqual({ literals: [], caseInsensitive: true });
    // The non-ASCII members of those orbits really match: a literal keeping k or s would drop them.
    expect(RE2JS.compile('(?i)kelvin').test('\u212Aelvin')).toBe(true);
    expect(RE2JS.compile('(?i)status').test('\u017Ftatus')).toBe(true);
  });

  it('never requires what a match can lack (generated patterns and strings, confirmed by re2js)', () => {
    const atoms = ['a', 'b', 'ab', '.', '\\.', '[ab]', '(a|b)', 'x', 'yz', '(?:ab)', '(?i:a)', 'K', 's'];
    atoms.push('\\x61', '\\x{62}', '\\pL', '\\p{Latin}', '\\141', '\\w');
    const quants = ['', '?', '*', '+', '{0,2}', '{2}', '+?'];
    const alphabet = ['a', 'b', 'x', 'y', 'z', '.', 'A', 'B', 'Y', 'k', 'K', '\u212A', 'S', '\u017F'];
    // What ILIKE under the "C" collation compares: ASCII letters folded, nothing else.
    const fold = (t: string) => t.replace(/[A-Z]/g, (ch) => ch.toLowerCase());
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    let checked = 0;
    for (let p = 0; p < 400; p++) {
      let pattern = rand(3) === 0 ? '(?i)' : '';
      for (let k = 0; k < 1 + rand(5); k++)
        pattern += atoms[rand(atoms.length)]! + quants[rand(quants.length)]!;
      const re = RE2JS.compile(pattern);
      const { literals, caseInsensitive } = regexPrefilter(pattern, 1);
      for (let s = 0; s < 200; s++) {
        let text = '';
        for (let k = 0; k < rand(12); k++) text += alphabet[rand(alphabet.length)]!;
        if (!re.test(text)) continue;
        checked++;
        for (const lit of literals)
          if (caseInsensitive) expect(fold(text), `${pattern} matched ${text}`).toContain(fold(lit));
          else expect(text, `${pattern} matched ${text}`).toContain(lit);
      }
    }
    expect(checked).toBeGreaterThan(1_000);
  });
});

describe('containsLike', () => {
  it('escapes LIKE wildcards and the escape character', () => {
    expect(containsLike('50%_off\\now')).toBe('%50\\%\\_off\\\\now%');
  });
});
