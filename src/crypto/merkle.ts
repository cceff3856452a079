// RFC 6962 Merkle tree hashing and proofs (the same definitions as RFC 9162 §2.1), over a source of
// node hashes so that the SQLite store, an in-memory tree and a verifier share one implementation.
import { createHash, hash } from 'node:crypto';

export type Hash = Buffer;

export const EMPTY_ROOT: Hash = createHash('sha256').digest();

const LEAF = Buffer.from([0]);
const NODE = Buffer.from([1]);

// One-shot crypto.hash: about half the cost of a createHash object for inputs this small, and the
// witness hashes two or three times per appended event. The digest is taken as a 'binary' (latin1) string and
// copied into a pooled Buffer: a 'buffer' digest is an ArrayBuffer of its own for each hash, about a
// third more CPU under ingest (measured) and garbage for every thread of the heap to collect.
function sha256(data: string | Uint8Array): Hash {
  return Buffer.from(hash('sha256', data, 'binary'), 'binary');
}

export function leafHash(data: Uint8Array): Hash {
  return sha256(Buffer.concat([LEAF, data]));
}

/** leafHash of a string's UTF-8 bytes, without making a Buffer of it first. */
export function leafHashOfText(text: string): Hash {
  return sha256(`\0${text}`);
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Hash {
  return sha256(Buffer.concat([NODE, left, right]));
}

/** Hashes of perfect subtrees: level 0 are leaves; node(l, i) covers leaves [i·2^l, (i+1)·2^l). */
export interface NodeSource {
  node(level: number, index: number): Hash;
}

function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH(D[start:end]) per RFC 6962 §2.1. */
export function subtreeHash(src: NodeSource, start: number, end: number): Hash {
  const n = end - start;
  if (n === 0) return EMPTY_ROOT;
  if ((n & (n - 1)) === 0 && start % n === 0) return src.node(Math.log2(n), start / n);
  const k = largestPowerOfTwoBelow(n);
  return nodeHash(subtreeHash(src, start, start + k), subtreeHash(src, start + k, end));
}

export function rootHash(src: NodeSource, size: number): Hash {
  return subtreeHash(src, 0, size);
}

/** PATH(m, D[0:n]) of RFC 6962 §2.1.1, for leaf index m (0-based). */
export function inclusionProof(src: NodeSource, index: number, size: number): Hash[] {
  if (index < 0 || index >= size) throw new RangeError(`leaf ${index} is not in a tree of size ${size}`);
  const path = (m: number, start: number, end: number): Hash[] => {
    const n = end - start;
    if (n === 1) return [];
    const k = largestPowerOfTwoBelow(n);
    return m < k
      ? [...path(m, start, start + k), subtreeHash(src, start + k, end)]
      : [...path(m - k, start + k, end), subtreeHash(src, start, start + k)];
  };
  return path(index, 0, size);
}

/** PROOF(m, D[0:n]) of RFC 6962 §2.1.2. */
export function consistencyProof(src: NodeSource, m: number, n: number): Hash[] {
  if (m < 0 || m > n) throw new RangeError(`cannot prove size ${m} against size ${n}`);
  if (m === 0 || m === n) return [];
  const sub = (m1: number, start: number, end: number, whole: boolean): Hash[] => {
    const size = end - start;
    if (m1 === size) return whole ? [] : [subtreeHash(src, start, end)];
    const k = largestPowerOfTwoBelow(size);
    return m1 <= k
      ? [...sub(m1, start, start + k, whole), subtreeHash(src, start + k, end)]
      : [...sub(m1 - k, start + k, end, false), subtreeHash(src, start, start + k)];
  };
  return sub(m, 0, n, true);
}

const isHash = (h: Uint8Array) => h.length === 32;

/** RFC 9162 §2.1.3.2. */
export function verifyInclusion(
  leaf: Uint8Array,
  index: number,
  size: number,
  proof: Uint8Array[],
  root: Uint8Array,
): boolean {
  if (index < 0 || index >= size || !isHash(leaf) || !isHash(root) || !proof.every(isHash)) return false;
  let fn = index;
  let sn = size - 1;
  let r: Uint8Array = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && Buffer.from(r).equals(Buffer.from(root));
}

/** RFC 9162 §2.1.4.2. A size-0 first tree proves nothing and is refused. */
export function verifyConsistency(
  size1: number,
  size2: number,
  root1: Uint8Array,
  root2: Uint8Array,
  proof: Uint8Array[],
): boolean {
  if (size1 < 0 || size2 < size1 || !proof.every(isHash)) return false;
  if (size1 === size2) return proof.length === 0 && Buffer.from(root1).equals(Buffer.from(root2));
  if (size1 === 0 || proof.length === 0 || !isHash(root1) || !isHash(root2)) return false;
  const path = (size1 & (size1 - 1)) === 0 ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr: Uint8Array = path[0]!;
  let sr: Uint8Array = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && Buffer.from(fr).equals(Buffer.from(root1)) && Buffer.from(sr).equals(Buffer.from(root2));
}

/**
 * An append-only tree kept as its "compact range": the roots of the perfect subtrees that make up
 * the current size, so the root is known after every append at O(log n) cost and no other memory.
 */
export class CompactRange {
  private readonly stack: { level: number; hash: Hash }[] = [];
  size = 0;

  /** Appends a leaf hash; returns the perfect-subtree nodes completed by it (level ≥ 1), bottom up. */
  append(leaf: Hash): { level: number; index: number; hash: Hash }[] {
    const completed: { level: number; index: number; hash: Hash }[] = [];
    let entry = { level: 0, hash: leaf };
    let index = this.size;
    while (this.stack.length > 0 && this.stack[this.stack.length - 1]!.level === entry.level) {
      const left = this.stack.pop()!;
      index = Math.floor(index / 2);
      entry = { level: entry.level + 1, hash: nodeHash(left.hash, entry.hash) };
      completed.push({ level: entry.level, index, hash: entry.hash });
    }
    this.stack.push(entry);
    this.size += 1;
    return completed;
  }

  root(): Hash {
    if (this.stack.length === 0) return EMPTY_ROOT;
    let h = this.stack[this.stack.length - 1]!.hash;
    for (let i = this.stack.length - 2; i >= 0; i--) h = nodeHash(this.stack[i]!.hash, h);
    return h;
  }

  /** Rebuilds the range for `size` leaves from stored perfect-subtree nodes. */
  static fromSource(src: NodeSource, size: number): CompactRange {
    const range = new CompactRange();
    let start = 0;
    for (let level = 31; level >= 0; level--) {
      const width = 2 ** level;
      if (size - start >= width) {
        range.stack.push({ level, hash: src.node(level, start / width) });
        start += width;
      }
    }
    range.size = size;
    return range;
  }
}

/** A NodeSource over leaf hashes held in memory, for verifiers and tests. */
export class MemoryTree implements NodeSource {
  private readonly levels: Hash[][] = [[]];

  append(leaf: Hash): void {
    this.levels[0]!.push(leaf);
    let level = 0;
    let index = this.levels[0]!.length - 1;
    while (index % 2 === 1) {
      const l = this.levels[level]!;
      const parent = nodeHash(l[index - 1]!, l[index]!);
      level += 1;
      index = Math.floor(index / 2);
      const row = this.levels[level] ?? [];
      this.levels[level] = row;
      row.push(parent);
    }
  }

  get size(): number {
    return this.levels[0]!.length;
  }

  node(level: number, index: number): Hash {
    const h = this.levels[level]?.[index];
    if (!h) throw new RangeError(`no node at level ${level} index ${index}`);
    return h;
  }
}
