// A prefilter PostgreSQL can run for an RE2 pattern: substrings every match must contain. The witness
// still confirms each candidate with re2js (the pattern's real semantics); the prefilter only keeps
// rows that cannot match from leaving the database. It is conservative by construction: whatever
// this parser does not fully understand (alternation, flags set mid-pattern, groups, classes,
// escapes of letters) ends a literal or yields no prefilter at all, never a literal a match could lack.
// A leading (?i) makes the literals case-insensitive: they are then matched with ASCII case folding
// only (ILIKE under the "C" collation), and k and s, whose RE2 case orbits hold non-ASCII letters
// (U+212A KELVIN SIGN, U+017F LONG S), end a literal instead of being part of one.

/** Characters JSON text keeps as they are (so a value containing them shows them in the body) and LIKE can name. */
const SAFE = /^[\x20-\x7e]$/;
const UNSAFE_IN_JSON = new Set(['"', '\\']);
const QUANTIFIER = /^\{(\d+)(,(\d*))?\}/;

const LEADING_FLAGS = /^\(\?([imsU]*)(?:-([imsU]*))?\)/;
const FLAG_GROUP = /^\(\?[imsU]*(?:-[imsU]*)?\)/;

export interface RegexPrefilter {
  /** Substrings every match contains (ASCII case-insensitively when `caseInsensitive`). */
  literals: string[];
  caseInsensitive: boolean;
}

/**
 * Substrings (at least `minLength` characters) that every string matching `pattern` contains, found
 * at the top level of the pattern, and whether they are to be matched ignoring ASCII case. No
 * literals when there is none or the pattern is beyond this parser.
 */
export function regexPrefilter(pattern: string, minLength = 3): RegexPrefilter {
  const flags = LEADING_FLAGS.exec(pattern);
  const caseInsensitive = flags?.[1]?.includes('i') ?? false;
  const rest = flags ? pattern.slice(flags[0].length) : pattern;
  return { literals: literalsOf(rest, minLength, caseInsensitive), caseInsensitive };
}

/** regexPrefilter's literals of a pattern without flags (exactly: case-sensitive ones). */
export function requiredLiterals(pattern: string, minLength = 3): string[] {
  const p = regexPrefilter(pattern, minLength);
  return p.caseInsensitive ? [] : p.literals;
}

function literalsOf(pattern: string, minLength: number, caseInsensitive: boolean): string[] {
  if (pattern.includes('\\Q') || topLevelAlternation(pattern)) return [];
  const out: string[] = [];
  let cur = '';
  const flush = () => {
    if (cur.length >= minLength && !out.includes(cur)) out.push(cur);
    cur = '';
  };
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i]!;
    let literal: string | undefined;
    let next = i + 1;
    if (c === '\\') {
      const e = pattern[i + 1];
      // An escaped punctuation character is itself; \d, \w, \b, \x41, \pN … are not one literal,
      // and the whole escape is passed over: the digits of \x41 or the L of \pL are not literals.
      if (e !== undefined && /[!-/:-@[-`{-~]/.test(e)) literal = e;
      next = i + escapeLength(pattern, i);
    } else if (c === '[') {
      next = skipClass(pattern, i);
    } else if (c === '(') {
      // (?i) and the like change the flags of what follows: beyond this parser. A group, flags and
      // all ((?:…), (?i:…), (?P<name>…)), is one atom whose content is not looked into.
      if (FLAG_GROUP.test(pattern.slice(i))) return [];
      next = skipGroup(pattern, i);
    } else if (!'.^$*+?{}|)'.includes(c)) {
      literal = c;
    }
    if (next < 0) return [];
    // What follows decides whether the atom is required: ?, * and {0,…} make it optional.
    const q = pattern[next];
    let required = true;
    let endsRun = false;
    let quantified = false;
    if (q === '?' || q === '*') {
      required = false;
      quantified = true;
      next += 1;
    } else if (q === '+') {
      endsRun = quantified = true;
      next += 1;
    } else if (q === '{') {
      const m = QUANTIFIER.exec(pattern.slice(next));
      if (m) {
        required = Number(m[1]) > 0;
        endsRun = quantified = true;
        next += m[0].length;
      }
    }
    if (quantified && pattern[next] === '?') next += 1; // lazy: the same atoms are required
    const folds = caseInsensitive && literal !== undefined && /[ksKS]/.test(literal);
    if (literal !== undefined && required && SAFE.test(literal) && !UNSAFE_IN_JSON.has(literal) && !folds) {
      cur += literal;
      if (endsRun) flush();
    } else {
      flush();
    }
    i = next;
  }
  flush();
  return out;
}

/** A LIKE pattern matching any text that contains `literal` (backslash escapes %, _ and itself). */
export function containsLike(literal: string): string {
  return `%${literal.replace(/[\\%_]/g, (m) => `\\${m}`)}%`;
}

const LONG_ESCAPE = /^\\(?:[xpP]\{[^}]*\}|x[0-9A-Fa-f]{0,2}|[pP].|[0-7]{1,3})/;

/** The length of the escape starting at `i` (\x{…}, \xHH, \p{…}, \pL, octal, or two characters). */
function escapeLength(p: string, i: number): number {
  return LONG_ESCAPE.exec(p.slice(i, i + 64))?.[0].length ?? 2;
}

function topLevelAlternation(p: string): boolean {
  let depth = 0;
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') i++;
    else if (c === '[') {
      const end = skipClass(p, i);
      if (end < 0) return true;
      i = end - 1;
    } else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '|' && depth === 0) return true;
  }
  return false;
}

/** The index after the character class opening at `i`; -1 if it does not close. */
function skipClass(p: string, i: number): number {
  let j = i + 1;
  if (p[j] === '^') j++;
  if (p[j] === ']') j++; // a leading ] is a member
  for (; j < p.length; j++) {
    if (p[j] === '\\') j++;
    else if (p[j] === '[' && p[j + 1] === ':') {
      const end = p.indexOf(':]', j + 2);
      if (end < 0) return -1;
      j = end + 1;
    } else if (p[j] === ']') return j + 1;
  }
  return -1;
}

/** The index after the group opening at `i`; -1 if it does not close. */
function skipGroup(p: string, i: number): number {
  let depth = 0;
  for (let j = i; j < p.length; j++) {
    const c = p[j];
    if (c === '\\') j++;
    else if (c === '[') {
      const end = skipClass(p, j);
      if (end < 0) return -1;
      j = end - 1;
    } else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return j + 1;
  }
  return -1;
}
