// A cron run whose configuration does not load cannot run at all, and its exit 2 lands in a log
// nobody reads. With PRODUCTION_MODE=true that is exactly how an unconfigured or unreadable
// certificate shows up (the loader refuses it), so maintenance tells the team about it: the
// notification settings are read again with the production rules relaxed (only to find the channels;
// nothing else runs), and the issues, which never hold a secret's value, are sent.
import os from 'node:os';
import { loadConfig } from '../../config/load.js';
import { type ConfigError, formatConfigIssue } from '../../errors.js';
import { configuredNotifiers } from '../incident/notify/send.js';
import type { OpContext } from '../shared.js';
import { utcDay } from './common.js';
import { type NoticeOutcome, tellSomeone } from './notify.js';

export async function tellConfigBroken(
  what: string,
  err: ConfigError,
  load: {
    cwd: string;
    env: Record<string, string | undefined>;
    file?: string | undefined;
    flags?: Record<string, string> | undefined;
  },
  notify: boolean,
  ctx: Pick<OpContext, 'clock' | 'dispatcher' | 'signal'>,
): Promise<NoticeOutcome | undefined> {
  let notifiers: ReturnType<typeof configuredNotifiers>;
  try {
    const relaxed = await loadConfig({ ...load, flags: { ...load.flags, PRODUCTION_MODE: 'false' } });
    notifiers = configuredNotifiers(relaxed.config);
  } catch {
    return undefined; // the notification settings themselves do not load: nobody can be told
  }
  const now = ctx.clock.now();
  return tellSomeone(
    {
      id: `MAINT-${utcDay(now)}`,
      kind: `maintenance-${what}`,
      title: `ifmesh ${what} maintenance could not run: invalid configuration`,
      // Nothing of maintenance runs until it is fixed, a certificate check included.
      severity: 'P3',
      needs: err.issues.map(formatConfigIssue),
      started_at: new Date(now).toISOString(),
      details: { 'Check it': 'ifmesh config check', Host: os.hostname() },
    },
    { notifiers, notify },
    ctx,
  );
}
