import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { systemClock, systemExec } from '../../src/cli/context.js';
import { labDown, labRun } from '../../src/ops/lab/lab.js';
import { packageRoot } from '../../src/paths.js';
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

/**
 * `ifmesh ARGS` run on a lab node through `lab run` (so with the lab's configuration, labEnv):
 * its exit code, stdout and stderr.
 */
export async function ifmeshInLab(
  lab: ReturnType<typeof labFixture>,
  node: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const text = { stdout: '', stderr: '' };
  const sink = (k: keyof typeof text) => {
    const s = new PassThrough();
    s.on('data', (d) => {
      text[k] += d;
    });
    return s;
  };
  const code = await labRun(
    {
      name: lab.name,
      host: node,
      command: [process.execPath, path.join(packageRoot(), 'dist/bin/ifmesh.js'), ...args],
      stdin: new PassThrough(),
      stdout: sink('stdout'),
      stderr: sink('stderr'),
    },
    { env: { ...lab.ctx.env, ...env }, signal: AbortSignal.timeout(180_000) },
  );
  return { code, ...text };
}

/** A lab test's teardown: its agents (by their child's pid), then the lab, then its directory. */
export async function teardownLab(
  lab: ReturnType<typeof labFixture>,
  agents: { child: { kill(sig: NodeJS.Signals): boolean } }[] = [],
): Promise<void> {
  for (const a of agents) a.child.kill('SIGTERM');
  await labDown({ name: lab.name }, lab.ctx).catch(() => {});
  lab.cleanup();
}
