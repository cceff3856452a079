// `rotate-keys --if-due`: the periodic rotation cron runs (see schedule.ts for where the timer lives).
// Not due, or disabled: nothing happens, exit 0. Due: under the `key-rotation` lock, a scheduled
// rotation through the same ops as `rotate-keys`; one that does not complete (an agent silent,
// connections failed after it, no instance answering) is told to the team like maintenance findings.
import { type ExitCodeValue, IfmeshError, UnauthorizedError } from '../../errors.js';
import type { StateDir } from '../../state/state-dir.js';
import { formatDuration } from '../../ui/units.js';
import type { WitnessTarget } from '../events.js';
import { errorText, utcDay, withMaintenanceLock } from '../maintenance/common.js';
import { type NoticeIo, type NoticeOutcome, tellSomeone } from '../maintenance/notify.js';
import type { OpContext } from '../shared.js';
import { applyRotation, planRotation, type RotationReport } from './rotate.js';
import { type RotationSchedule, rotationSchedule } from './schedule.js';

export interface PeriodicOptions {
  state: StateDir;
  signaling: string[];
  adminToken: string | undefined;
  witness?: WitnessTarget | undefined;
  enabled: boolean;
  intervalMs: number;
  timeoutMs: number;
  settleMs?: number | undefined;
  onProgress?: (completed: number, total: number) => void;
}

export interface PeriodicReport {
  schedule: RotationSchedule;
  rotated: boolean;
  rotation: RotationReport | null;
  ok: boolean;
  needs_human: string[];
  notice: NoticeOutcome;
  /** The rotation could not run at all (no token, no instance answering): its code and exit code. */
  error?: { code: string; message: string; exit_code: ExitCodeValue };
}

/** Why a finished rotation needs a person, one line each. */
export function rotationNeeds(r: RotationReport): string[] {
  const needs: string[] = [];
  if (r.pending.length)
    needs.push(`${r.completed}/${r.total} agents rotated; no answer from ${r.pending.join(', ')}`);
  for (const i of r.instances) if (i.error) needs.push(`${i.url} did not start a rotation: ${i.error}`);
  const s = r.stability;
  if (s?.failed_connections === null)
    needs.push(`no signaling instance answered ${formatDuration(s.settle_ms)} after the rotation`);
  else if (s?.failed_connections)
    needs.push(
      `${s.failed_connections} connections failed after rotation (${s.failed.map((f) => `${f.agent_id}→${f.peer_id}`).join(', ')}): monitor and investigate reconnections`,
    );
  return needs;
}

export async function runPeriodicRotation(
  o: PeriodicOptions,
  io: NoticeIo,
  ctx: Pick<OpContext, 'clock' | 'signal' | 'dispatcher'>,
): Promise<PeriodicReport> {
  const look = () =>
    rotationSchedule(o.state, { enabled: o.enabled, intervalMs: o.intervalMs }, ctx.clock.now());
  const first = look();
  const idle = (schedule: RotationSchedule): PeriodicReport => ({
    schedule,
    rotated: false,
    rotation: null,
    ok: true,
    needs_human: [],
    notice: { status: 'not_needed', severity: null, channels: [] },
  });
  if (!first.due) return idle(first);
  return withMaintenanceLock(
    o.state,
    'rotate-keys --if-due',
    ctx.clock,
    async () => {
      // Another tick may have rotated while this one waited to start.
      const schedule = look();
      if (!schedule.due) return idle(schedule);
      const needs: string[] = [];
      let rotation: RotationReport | null = null;
      let error: PeriodicReport['error'];
      try {
        if (!o.adminToken)
          throw new UnauthorizedError(
            'no signaling admin token',
            'set SIGNALING_ADMIN_TOKEN in the env file cron reads',
          );
        const plan = planRotation({
          signaling: o.signaling,
          reason: 'scheduled',
          timeoutMs: o.timeoutMs,
          settleMs: o.settleMs,
        });
        rotation = await applyRotation(
          plan,
          { adminToken: o.adminToken, witness: o.witness, state: o.state, onProgress: o.onProgress },
          ctx,
        );
        needs.push(...rotationNeeds(rotation));
      } catch (err) {
        if (!(err instanceof IfmeshError)) throw err;
        error = { code: err.code, message: err.message, exit_code: err.exitCode };
        needs.push(
          `the scheduled key rotation could not run: ${errorText(err)}${err.hint ? ` (${err.hint})` : ''}`,
        );
      }
      const now = ctx.clock.now();
      const notice = await tellSomeone(
        {
          id: `KEYROT-${utcDay(now)}-${new Date(now).toISOString().slice(11, 16).replace(':', '')}`,
          kind: 'key-rotation',
          title: 'ifmesh scheduled key rotation needs a person',
          // SRTP Key Rotation Success: the runbook alerts on any failure.
          severity: 'P3',
          needs,
          started_at: new Date(now).toISOString(),
          details: {
            'Run again': `ifmesh rotate-keys --state-dir ${o.state.root}`,
            Log: 'ifmesh logs key-rotation',
          },
        },
        io,
        ctx,
      );
      return {
        schedule,
        rotated: rotation !== null,
        rotation,
        ok: needs.length === 0,
        needs_human: needs,
        notice,
        ...(error ? { error } : {}),
      };
    },
    'key-rotation',
  );
}
