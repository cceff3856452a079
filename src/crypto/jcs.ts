// RFC 8785 JSON Canonicalization Scheme.
// ECMAScript's own serialisation of strings and numbers is what the RFC specifies (§3.2.2), so
// JSON.stringify is used for primitives; only key order (UTF-16 code units, §3.2.3) and the I-JSON
// restrictions are ours to enforce.

export class CanonicalizationError extends Error {}

export function canonicalize(value: unknown): string {
  return serialize(value, []);
}

// Every signed message is canonicalised twice (sender and receiver): the path of the value being
// serialised is kept as a stack and only spelt out for an error, instead of a string per value.
function serialize(value: unknown, trail: (string | number)[]): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw fail(trail, `${value} is not valid in JSON`);
      return JSON.stringify(value);
    case 'string':
      if (hasLoneSurrogate(value)) throw fail(trail, 'string has a lone surrogate');
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          trail.push(i);
          out += (i ? ',' : '') + serialize(value[i], trail);
          trail.pop();
        }
        return `${out}]`;
      }
      const obj = value as Record<string, unknown>;
      const keys = sortedKeys(obj);
      let out = '{';
      let first = true;
      for (const k of keys) {
        const v = obj[k];
        if (v === undefined) continue;
        if (hasLoneSurrogate(k)) throw fail(trail, 'key has a lone surrogate');
        trail.push(k);
        out += `${first ? '' : ','}${JSON.stringify(k)}:${serialize(v, trail)}`;
        trail.pop();
        first = false;
      }
      return `${out}}`;
    }
    default:
      throw fail(trail, `${typeof value} cannot be canonicalised`);
  }
}

/**
 * The object's own keys in the order §3.2.3 asks: by UTF-16 code units, which is how both the
 * default sort and `<` compare strings. Objects of a handful of keys (every event and message) are
 * sorted in place by insertion: profiled under batched witness ingest, Array.prototype.sort's own
 * work array was the largest allocation of the witness process (two sorts per event), and the
 * garbage collector a fifth of its main thread.
 */
export function sortedKeys(obj: object): string[] {
  const keys = Object.keys(obj);
  if (keys.length > 16) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > k) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = k;
  }
  return keys;
}

function fail(trail: (string | number)[], what: string): CanonicalizationError {
  const path = trail.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`)).join('');
  return new CanonicalizationError(`$${path}: ${what}`);
}

// String.prototype.isWellFormed (ES2024, in Node 20) answers the same question several times faster
// than a regex scan on the ~1 KB strings every signed message carries; the TypeScript lib is ES2023.
export const wellFormed = (s: string): boolean =>
  (s as unknown as { isWellFormed(): boolean }).isWellFormed();

function hasLoneSurrogate(s: string): boolean {
  return !wellFormed(s);
}
