import { describe, expect, it } from 'vitest';
import { CanonicalizationError, canonicalize, sortedKeys } from '../../src/crypto/jcs.js';

describe('RFC 8785 canonicalisation', () => {
  it('reproduces the §3.2.2 example byte for byte', () => {
    // The input text of RFC 8785 §3.2.2, parsed as a JSON parser would.
    const input = JSON.parse(
      '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],' +
        '"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",' +
        '"literals":[null,true,false]}',
    );
    expect(canonicalize(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('sorts keys by UTF-16 code units as in §3.2.3', () => {
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    // Object.keys would list "1" first whatever the text says, so read the order off the text.
    const text = canonicalize(input);
    const order = ['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33'].map((k) =>
      text.indexOf(`${JSON.stringify(k)}:`),
    );
    expect(order.every((pos) => pos >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(text.startsWith('{"\\r":"Carriage Return","1":"One","\u0080":"Control"')).toBe(true);
  });

  // Appendix B: IEEE-754 bit patterns and their required serialisation.
  const appendixB: Array<[string, string]> = [
    ['0000000000000000', '0'],
    ['8000000000000000', '0'],
    ['0000000000000001', '5e-324'],
    ['8000000000000001', '-5e-324'],
    ['7fefffffffffffff', '1.7976931348623157e+308'],
    ['ffefffffffffffff', '-1.7976931348623157e+308'],
    ['4340000000000000', '9007199254740992'],
    ['c340000000000000', '-9007199254740992'],
    ['4430000000000000', '295147905179352830000'],
    ['44b52d02c7e14af5', '9.999999999999997e+22'],
    ['44b52d02c7e14af6', '1e+23'],
    ['44b52d02c7e14af7', '1.0000000000000001e+23'],
    ['444b1ae4d6e2ef4e', '999999999999999700000'],
    ['444b1ae4d6e2ef4f', '999999999999999900000'],
    ['444b1ae4d6e2ef50', '1e+21'],
    ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
    ['3eb0c6f7a0b5ed8d', '0.000001'],
    ['41b3de4355555553', '333333333.3333332'],
    ['41b3de4355555554', '333333333.33333325'],
    ['41b3de4355555555', '333333333.3333333'],
    ['41b3de4355555556', '333333333.3333334'],
    ['41b3de4355555557', '333333333.33333343'],
    ['becbf647612f3696', '-0.0000033333333333333333'],
    ['43143ff3c1cb0959', '1424953923781206.2'],
  ];
  it.each(appendixB)('serialises IEEE-754 %s as %s (Appendix B)', (hex, expected) => {
    const value = Buffer.from(hex, 'hex').readDoubleBE(0);
    expect(canonicalize([value])).toBe(`[${expected}]`);
  });

  it.each([
    ['NaN', '7fffffffffffffff'],
    ['Infinity', '7ff0000000000000'],
  ])('refuses %s', (_name, hex) => {
    expect(() => canonicalize({ n: Buffer.from(hex, 'hex').readDoubleBE(0) })).toThrow(CanonicalizationError);
  });

  it('refuses lone surrogates, which I-JSON forbids', () => {
    expect(() => canonicalize({ s: '\ud800' })).toThrow(/lone surrogate/);
    expect(() => canonicalize({ '\udc00': 1 })).toThrow(/lone surrogate/);
  });

  it('omits undefined members and keeps nested order canonical', () => {
    expect(canonicalize({ b: { z: 1, a: [{ y: 2, x: 1 }] }, a: undefined })).toBe(
      '{"b":{"a":[{"x":1,"y":2}],"z":1}}',
    );
  });

  it('orders keys exactly as the default sort does, for small objects and large ones', () => {
    // Keys mixing ASCII, surrogate pairs, BMP characters above them, prefixes of each other and
    // integer-like keys (which Object.keys lists first): sortedKeys sorts small objects itself.
    const pool = ['a', 'ab', 'b', '10', '9', '', 'A', '\ud83d\ude00', '\ufb33', '\u00f6', 'id', 'id_', 'Z9'];
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let round = 0; round < 200; round++) {
      const n = 1 + Math.floor(random() * 20);
      const obj: Record<string, number> = {};
      for (let i = 0; i < n; i++)
        obj[pool[Math.floor(random() * pool.length)]! + (random() < 0.3 ? i : '')] = i;
      expect(sortedKeys(obj)).toEqual(Object.keys(obj).sort());
    }
  });
});
