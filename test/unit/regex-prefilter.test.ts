// The PostgreSQL prefilter for witness regex queries: the substrings it requires must be in every
// string the pattern matches (checked against re2js on generated strings), and it must give up
// rather than guess on what it does not parse.
import { RE2JS } from 're2js';
import { describe, expect, it } from 'vitest';
import { containsLike, requiredLiterals } from '../../src/services/witness/regex-prefilter.js';

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

  it('gives up on alternation at the top, flags and literals JSON would escape', () => {
    expect(requiredLiterals('error|warning')).toEqual([]);
    expect(requiredLiterals('(?i)error')).toEqual([]);
    expect(requiredLiterals('(a+)+$')).toEqual([]);
    expect(requiredLiterals('say "hello"')).toEqual(['say ', 'hello']);
    expect(requiredLiterals('\\d\\d\\d-\\w+')).toEqual([]);
    expect(requiredLiterals('naïve')).toEqual([]);
  });

  it('never requires what a match can lack (generated patterns and strings, confirmed by re2js)', () => {
    const atoms = ['a', 'b', 'ab', '.', '\\.', '[ab]', '(a|b)', 'x', 'yz'];
    const quants = ['', '?', '*', '+', '{0,2}', '{2}', '+?'];
    const alphabet = ['a', 'b', 'x', 'y', 'z', '.'];
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    let checked = 0;
    for (let p = 0; p < 400; p++) {
      let pattern = '';
      for (let k = 0; k < 1 + rand(5); k++)
        pattern += atoms[rand(atoms.length)]! + quants[rand(quants.length)]!;
      const re = RE2JS.compile(pattern);
      const lits = requiredLiterals(pattern, 1);
      for (let s = 0; s < 200; s++) {
        let text = '';
        for (let k = 0; k < rand(12); k++) text += alphabet[rand(alphabet.length)]!;
        if (!re.test(text)) continue;
        checked++;
        for (const lit of lits) expect(text, `${pattern} matched ${text}`).toContain(lit);
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
