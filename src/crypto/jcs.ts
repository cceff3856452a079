// RFC 8785 JSON Canonicalization Scheme.
// ECMAScript's own serialisation of strings and numbers is what the RFC specifies (§3.2.2), so
// JSON.stringify is used for primitives; only key order (UTF-16 code units, §3.2.3) and the I-JSON
// restrictions are ours to enforce.

export class CanonicalizationError extends Error {}

export function canonicalize(value: unknown): string {
  return serialize(value, '$');
}

function serialize(value: unknown, path: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new CanonicalizationError(`${path}: ${value} is not valid in JSON`);
      return JSON.stringify(value);
    case 'string':
      if (hasLoneSurrogate(value)) throw new CanonicalizationError(`${path}: string has a lone surrogate`);
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) {
        return `[${value.map((v, i) => serialize(v, `${path}[${i}]`)).join(',')}]`;
      }
      const obj = value as Record<string, unknown>;
      // Default sort compares UTF-16 code units, exactly as §3.2.3 asks.
      const keys = Object.keys(obj)
        .filter((k) => obj[k] !== undefined)
        .sort();
      const parts: string[] = [];
      for (const k of keys) {
        if (hasLoneSurrogate(k)) throw new CanonicalizationError(`${path}: key has a lone surrogate`);
        parts.push(`${JSON.stringify(k)}:${serialize(obj[k], `${path}.${k}`)}`);
      }
      return `{${parts.join(',')}}`;
    }
    default:
      throw new CanonicalizationError(`${path}: ${typeof value} cannot be canonicalised`);
  }
}

// String.prototype.isWellFormed (ES2024, in Node 20) answers the same question several times faster
// than a regex scan on the ~1 KB strings every signed message carries; the TypeScript lib is ES2023.
const wellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

function hasLoneSurrogate(s: string): boolean {
  return !wellFormed(s);
}
