import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CompactRange,
  consistencyProof,
  EMPTY_ROOT,
  inclusionProof,
  leafHash,
  MemoryTree,
  rootHash,
  verifyConsistency,
  verifyInclusion,
} from '../../src/crypto/merkle.js';
import { ROOT } from '../helpers/cli.js';

const v = JSON.parse(readFileSync(path.join(ROOT, 'fixtures/merkle/rfc6962-vectors.json'), 'utf8'));
const hx = (s: string) => Buffer.from(s, 'hex');
const leaves: Buffer[] = v.leaf_inputs_hex.map(hx);
const roots: Buffer[] = v.root_hashes_hex.map(hx);

function treeOf(n: number): MemoryTree {
  const t = new MemoryTree();
  for (const l of leaves.slice(0, n)) t.append(leafHash(l));
  return t;
}

describe('RFC 6962 known answers (transparency-dev/merkle)', () => {
  it('hashes leaves and perfect subtrees', () => {
    const t = treeOf(8);
    for (const [l, level] of (v.node_hashes_hex as string[][]).entries()) {
      for (const [i, h] of level.entries()) expect(t.node(l, i).toString('hex')).toBe(h);
    }
  });

  it('computes the root of every size 0..8, directly and incrementally', () => {
    const range = new CompactRange();
    expect(range.root()).toEqual(EMPTY_ROOT);
    for (let n = 0; n <= 8; n++) {
      expect(rootHash(treeOf(n), n).toString('hex')).toBe(roots[n]!.toString('hex'));
      if (n > 0) {
        range.append(leafHash(leaves[n - 1]!));
        expect(range.root().toString('hex')).toBe(roots[n]!.toString('hex'));
        expect(CompactRange.fromSource(treeOf(8), n).root()).toEqual(roots[n]);
      }
    }
  });

  it.each(v.inclusion_proofs as { leaf: number; size: number; proof_hex: string[] }[])(
    'inclusion proof of leaf $leaf in size $size matches and verifies',
    ({ leaf, size, proof_hex }) => {
      const proof = inclusionProof(treeOf(size), leaf - 1, size);
      expect(proof.map((h) => h.toString('hex'))).toEqual(proof_hex);
      expect(verifyInclusion(leafHash(leaves[leaf - 1]!), leaf - 1, size, proof, roots[size]!)).toBe(true);
    },
  );

  it.each(v.consistency_proofs as { size1: number; size2: number; proof_hex: string[] }[])(
    'consistency proof $size1 → $size2 matches and verifies',
    ({ size1, size2, proof_hex }) => {
      const proof = consistencyProof(treeOf(size2), size1, size2);
      expect(proof.map((h) => h.toString('hex'))).toEqual(proof_hex);
      expect(verifyConsistency(size1, size2, roots[size1]!, roots[size2]!, proof)).toBe(true);
    },
  );

  it('rejects corrupted inclusion proofs (wrong index, size, leaf, root, garbage, flipped bit)', () => {
    const proof = inclusionProof(treeOf(8), 5, 8);
    const leaf = leafHash(leaves[5]!);
    const root = roots[8]!;
    expect(verifyInclusion(leaf, 4, 8, proof, root)).toBe(false);
    expect(verifyInclusion(leaf, 6, 8, proof, root)).toBe(false);
    expect(verifyInclusion(leaf, 5, 16, proof, root)).toBe(false);
    expect(verifyInclusion(leaf, 5, 4, proof, root)).toBe(false);
    expect(verifyInclusion(leafHash(Buffer.from('WrongLeaf')), 5, 8, proof, root)).toBe(false);
    expect(verifyInclusion(leaf, 5, 8, proof, EMPTY_ROOT)).toBe(false);
    expect(verifyInclusion(leaf, 5, 8, [...proof, Buffer.alloc(0)], root)).toBe(false);
    expect(verifyInclusion(leaf, 5, 8, [root, ...proof], root)).toBe(false);
    expect(verifyInclusion(leaf, 5, 8, proof.slice(0, -1), root)).toBe(false);
    const flipped = proof.map((h, i) => (i === 1 ? Buffer.from(h.map((b, j) => (j === 0 ? b ^ 8 : b))) : h));
    expect(verifyInclusion(leaf, 5, 8, flipped, root)).toBe(false);
  });

  it('rejects corrupted consistency proofs and the edge cases of RFC 9162', () => {
    const proof = consistencyProof(treeOf(8), 6, 8);
    const [r6, r8] = [roots[6]!, roots[8]!];
    expect(verifyConsistency(5, 8, r6, r8, proof)).toBe(false);
    expect(verifyConsistency(7, 8, r6, r8, proof)).toBe(false);
    expect(verifyConsistency(6, 16, r6, r8, proof)).toBe(false);
    expect(verifyConsistency(6, 8, r8, r6, proof)).toBe(false);
    expect(verifyConsistency(6, 8, r6, r8, [])).toBe(false);
    expect(verifyConsistency(6, 8, r6, r8, [...proof, r8])).toBe(false);
    expect(verifyConsistency(6, 8, r6, r8, [proof[0]!, ...proof])).toBe(false);
    expect(verifyConsistency(6, 8, r6, r8, proof.slice(0, -1))).toBe(false);
    expect(verifyConsistency(1, 0, r6, r8, [])).toBe(false);
    expect(verifyConsistency(0, 1, EMPTY_ROOT, roots[1]!, [])).toBe(false);
    expect(verifyConsistency(1, 1, r6, r6, [])).toBe(true);
    expect(verifyConsistency(1, 1, r6, r6, [EMPTY_ROOT])).toBe(false);
  });

  it('proves every pair in a larger tree', () => {
    const t = new MemoryTree();
    for (let i = 0; i < 37; i++) t.append(leafHash(Buffer.from(`leaf-${i}`)));
    for (let n = 1; n <= 37; n++) {
      const rn = rootHash(t, n);
      for (let m = 1; m <= n; m++) {
        expect(verifyConsistency(m, n, rootHash(t, m), rn, consistencyProof(t, m, n))).toBe(true);
        expect(verifyInclusion(t.node(0, m - 1), m - 1, n, inclusionProof(t, m - 1, n), rn)).toBe(true);
      }
    }
  });
});
