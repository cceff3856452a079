import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { systemClock, systemExec } from '../../src/cli/context.js';
import { requireBinary } from './binaries.js';

/**
 * A unique lab name and a private lab directory for one test file, so parallel runs never share
 * namespaces; the context the lab ops take. The lab needs root (CI has it) and these binaries.
 */
export function labFixture(tag: string) {
  if (process.getuid?.() !== 0) throw new Error('the NAT lab tests need root (network namespaces, nftables)');
  requireBinary('nft', 'nftables');
  requireBinary('ip', 'iproute2');
  requireBinary('turnserver', 'coturn');
  requireBinary('curl', 'curl');
  const dir = mkdtempSync(path.join(os.tmpdir(), `ifmesh-test-lab-${tag}-`));
  const name = `${tag}${process.pid % 10_000}`;
  return {
    name,
    dir,
    ctx: { exec: systemExec, env: { IFMESH_LAB_DIR: dir }, clock: systemClock },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
