// Blocking a peer goes through `ifmesh agents block` (the signaling side's refused identities), run
// as a command so the incident needs nothing of its API; until that command is in this build, the
// incident says exactly what to run.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../paths.js';
import type { OpContext } from '../shared.js';

export async function blockAgent(
  peer: string,
  reason: string,
  stateDir: string,
  signaling: string[],
  ctx: Pick<OpContext, 'exec' | 'env' | 'cwd'>,
): Promise<{ ok: boolean; detail: string; command: string }> {
  // Same instances, state and configuration (environment, cwd) as the incident itself.
  const args = [
    'agents',
    'block',
    peer,
    '--reason',
    reason,
    '--state-dir',
    stateDir,
    '--signaling',
    signaling.join(','),
  ];
  const command = `ifmesh agents block ${peer} --reason '${reason}'`;
  const bin = path.join(packageRoot(), 'dist/bin/ifmesh.js');
  if (!existsSync(path.join(packageRoot(), 'dist/commands/agents.js')))
    return {
      ok: false,
      detail: `${peer} must be blocked, but \`ifmesh agents block\` is not in this build: run it once it is`,
      command,
    };
  const r = await ctx.exec(process.execPath, [bin, ...args], {
    timeoutMs: 15_000,
    env: ctx.env,
    cwd: ctx.cwd,
  });
  return r.code === 0
    ? { ok: true, detail: `${peer} blocked at signaling`, command }
    : {
        ok: false,
        detail: `blocking ${peer} failed (exit ${r.code}): ${r.stderr.trim().split('\n').at(-1) ?? ''}`,
        command,
      };
}
