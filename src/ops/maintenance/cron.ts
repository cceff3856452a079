// `maintenance install-cron`: the runbook's "Daily (00:00 UTC)" and "Weekly (Sunday 00:00 UTC)"
// schedule as crontab lines, the periodic key rotation's tick (see src/ops/keys/schedule.ts), and the
// logrotate configuration daily maintenance uses. Printed by default; with --write, installed as a
// cron.d file and <state>/logrotate.conf.
//
// Timezones: cronie honours CRON_TZ=UTC; Debian's cron (and busybox's) ignores it and reads the
// times in the host's timezone. So the times are written as UTC when the host is UTC or cron honours
// CRON_TZ; converted to local time when the host's zone has a fixed offset; and refused when the zone
// has daylight saving (a converted time would be an hour off for half the year).
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import type { LoadedConfig } from '../../config/load.js';
import { UsageError } from '../../errors.js';
import { logrotateConfig } from '../../exec/logrotate.js';
import { writeFileWhole } from '../../state/json-file.js';
import type { StateDir } from '../../state/state-dir.js';
import { cronStepMinutes } from '../keys/schedule.js';

/** debian: Debian's cron, ignores CRON_TZ; cronie: honours it; unknown: treated as ignoring it. */
export type CronKind = 'debian' | 'cronie' | 'unknown';
export const CRON_KINDS: CronKind[] = ['debian', 'cronie', 'unknown'];

export interface CronTimezone {
  /** The zone cron reads the times in (the host's, or --timezone). */
  zone: string;
  cron: CronKind;
  /** Minutes east of UTC when planned. */
  offset_minutes: number;
  daylight_saving: boolean;
  /** utc: the times are UTC as written; cron_tz: UTC through CRON_TZ; converted: local times. */
  mode: 'utc' | 'cron_tz' | 'converted';
  /** The sentence the file's header states. */
  assumption: string;
}

export interface CronLine {
  what: 'maintenance daily' | 'maintenance weekly' | 'rotate-keys --if-due';
  schedule: string;
  command: string;
}

export interface CronPlan {
  /** The cron.d file (with a user column); the same lines without it go into `crontab -e`. */
  cron_file: string;
  cron_text: string;
  lines: CronLine[];
  timezone: CronTimezone;
  /** What cron's runs would not see or do as this shell does: said before anything is installed. */
  warnings: string[];
  logrotate_file: string;
  logrotate_text: string;
  written: boolean;
}

const q = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** The host's timezone as cron sees it: /etc/localtime's zone, Debian's /etc/timezone, else UTC. */
export function hostTimezone(): string {
  try {
    const m = /zoneinfo\/(.+)$/.exec(readlinkSync('/etc/localtime'));
    if (m) return m[1]!;
  } catch {
    // not a symlink: a copied zone file, named by /etc/timezone on Debian
  }
  try {
    const t = readFileSync('/etc/timezone', 'utf8').trim();
    if (t) return t;
  } catch {
    // no /etc/timezone
  }
  // glibc reads no zone at all as UTC.
  return existsSync('/etc/localtime') ? (Intl.DateTimeFormat().resolvedOptions().timeZone ?? 'UTC') : 'UTC';
}

/** Which cron runs here, by its binary: cronie installs crond, Debian's cron installs cron. */
export function detectCron(): CronKind {
  if (existsSync('/usr/sbin/crond') && !existsSync('/usr/sbin/cron')) return 'cronie';
  if (existsSync('/usr/sbin/cron') || existsSync('/etc/debian_version')) return 'debian';
  return 'unknown';
}

/** Minutes east of UTC of `zone` at `at`. */
export function utcOffsetMinutes(zone: string, at: number): number {
  let name: string | undefined;
  try {
    name = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' })
      .formatToParts(new Date(at))
      .find((p) => p.type === 'timeZoneName')?.value;
  } catch {
    throw new UsageError(`${zone} is not a timezone`, 'pass an IANA name, e.g. --timezone Etc/UTC');
  }
  const m = /GMT([+-])(\d{1,2}):?(\d{2})?/.exec(name ?? '');
  return m ? (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3] ?? 0)) : 0;
}

const hhmm = (minutes: number) => {
  const a = Math.abs(minutes);
  return `UTC${minutes < 0 ? '-' : '+'}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
};

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** Where the runbook's 00:00 UTC (and Sunday's) falls in cron's zone, or a refusal. */
export function cronTimes(
  zone: string,
  cron: CronKind,
  now: number,
): { tz: CronTimezone; daily: string; weekly: string } {
  const year = new Date(now).getUTCFullYear();
  const offset = utcOffsetMinutes(zone, now);
  const dst = utcOffsetMinutes(zone, Date.UTC(year, 0, 1)) !== utcOffsetMinutes(zone, Date.UTC(year, 6, 1));
  const base = { zone, cron, offset_minutes: offset, daylight_saving: dst };
  const utc = { daily: '0 0 * * *', weekly: '0 0 * * 0' };
  if (cron === 'cronie')
    return {
      ...utc,
      tz: {
        ...base,
        mode: 'cron_tz',
        assumption: `Times are UTC through CRON_TZ=UTC, which cronie honours (this host's timezone: ${zone}). Debian's cron ignores CRON_TZ: on such a host run install-cron again.`,
      },
    };
  if (offset === 0 && !dst)
    return {
      ...utc,
      tz: {
        ...base,
        mode: 'utc',
        assumption: `Times are UTC: this host's timezone is ${zone}, so they hold even where cron ignores CRON_TZ (Debian's does). If the host's timezone changes, run install-cron again.`,
      },
    };
  const cronName = cron === 'debian' ? "Debian's cron" : 'this cron (not known to honour it)';
  if (dst)
    throw new UsageError(
      `this host's timezone is ${zone} (${hhmm(offset)} now, with daylight saving) and ${cronName} ignores CRON_TZ: the runbook's 00:00 UTC would run at local midnight, and no fixed local time is 00:00 UTC all year`,
      'set the host to UTC (timedatectl set-timezone Etc/UTC) and run install-cron again; with cronie, pass --cron cronie',
      'cron_timezone',
    );
  // A fixed offset: convert. 00:00 UTC is `offset` minutes past local midnight, possibly the day before.
  const local = ((offset % 1440) + 1440) % 1440;
  const dow = (7 + Math.floor(offset / 1440)) % 7;
  const at = `${local % 60} ${Math.floor(local / 60)}`;
  const clock = `${String(Math.floor(local / 60)).padStart(2, '0')}:${String(local % 60).padStart(2, '0')}`;
  return {
    daily: `${at} * * *`,
    weekly: `${at} * * ${dow}`,
    tz: {
      ...base,
      mode: 'converted',
      assumption: `The runbook's 00:00 UTC in local time: this host's timezone is ${zone} (${hhmm(offset)}, no daylight saving) and ${cronName} ignores CRON_TZ, so 00:00 UTC is ${clock} here (weekly: ${DAYS[dow]} ${clock}). No CRON_TZ line: it would move these times on a cron that honours it.`,
    },
  };
}

export interface CronOptions {
  state: StateDir;
  cwd: string;
  node: string;
  bin: string;
  user: string;
  cronFile: string;
  /** The env file cron's runs read (absolute); undefined: none, or the default path from `cwd`. */
  configFile?: string | undefined;
  /** MAINTENANCE_MAX_AGENTS: weekly's --max-agents. */
  maxAgents: number;
  /** Daily renews the certificate under --warn-days. */
  renew: boolean;
  /** ENABLE_SRTP_KEY_ROTATION and SRTP_KEY_ROTATION_INTERVAL_MS: the periodic rotation's tick. */
  keyRotation: { enabled: boolean; intervalMs: number };
  timezone: string;
  cron: CronKind;
  now: number;
  warnings?: string[];
}

export function planCron(o: CronOptions): CronPlan {
  const { tz, daily, weekly } = cronTimes(o.timezone, o.cron, o.now);
  const config = o.configFile ? ` --config ${q(o.configFile)}` : '';
  const run = (what: string, log: string, extra = '') =>
    `cd ${q(o.cwd)} && ${q(o.node)} ${q(o.bin)} ${what} --state-dir ${q(o.state.root)}${config}${extra} >> ${q(o.state.logFile(log))} 2>&1`;
  const lines: CronLine[] = [
    {
      what: 'maintenance daily',
      schedule: daily,
      command: run('maintenance daily', 'maintenance', o.renew ? ' --renew' : ''),
    },
    {
      what: 'maintenance weekly',
      schedule: weekly,
      command: run('maintenance weekly', 'maintenance', ` --max-agents ${o.maxAgents}`),
    },
  ];
  if (o.keyRotation.enabled) {
    const step = cronStepMinutes(o.keyRotation.intervalMs);
    lines.push({
      what: 'rotate-keys --if-due',
      schedule: `${step === 1 ? '*' : `*/${step}`} * * * *`,
      command: run('rotate-keys --if-due', 'key-rotation'),
    });
  }
  const cron = [
    '# ifmesh maintenance (generated by `ifmesh maintenance install-cron`)',
    `# ${tz.assumption}`,
    ...(o.keyRotation.enabled
      ? [
          `# rotate-keys --if-due rotates once SRTP_KEY_ROTATION_INTERVAL_MS (${o.keyRotation.intervalMs / 3_600_000} h) has passed since the last rotation (<state>/key-rotation.json).`,
        ]
      : []),
    ...(tz.mode === 'converted' ? [] : ['CRON_TZ=UTC']),
    'SHELL=/bin/sh',
    'PATH=/usr/local/bin:/usr/bin:/bin',
    ...lines.map((l) => `${l.schedule} ${o.user} ${l.command}`),
    '',
  ].join('\n');
  return {
    cron_file: o.cronFile,
    cron_text: cron,
    lines,
    timezone: tz,
    warnings: o.warnings ?? [],
    logrotate_file: o.state.logrotateConf,
    logrotate_text: logrotateConfig(o.state.logs),
    written: false,
  };
}

/** Keys written into the cron line itself, so where this shell got them does not matter. */
const IN_THE_LINE = new Set(['MAINTENANCE_MAX_AGENTS']);

/** What cron's runs would miss: keys only this shell's environment (or --set) gives, and nobody to tell. */
export function cronWarnings(loaded: LoadedConfig): string[] {
  const warnings: string[] = [];
  const shellOnly = Object.entries(loaded.sources)
    .filter(([k, s]) => (s.kind === 'env' || s.kind === 'flag') && !IN_THE_LINE.has(k))
    .map(([k]) => k)
    .sort();
  if (shellOnly.length)
    warnings.push(
      `${shellOnly.join(', ')} come from this shell (environment or --set), which cron does not pass: put them in the env file${loaded.file ? ` (${loaded.file})` : ''}`,
    );
  const c = loaded.config;
  const fromFile = (k: string) => loaded.sources[k]?.kind === 'file';
  const slack = c.slackWebhookUrl && fromFile('SLACK_WEBHOOK_URL');
  const mail = c.smtpUrl && c.alertEmail && fromFile('SMTP_URL') && fromFile('ALERT_EMAIL');
  if (!slack && !mail)
    warnings.push(
      'no notification channel in the env file (SLACK_WEBHOOK_URL, or SMTP_URL and ALERT_EMAIL): what maintenance finds under cron will reach nobody',
    );
  return warnings;
}

export function applyCron(plan: CronPlan): CronPlan {
  writeFileWhole(plan.logrotate_file, plan.logrotate_text);
  writeFileWhole(plan.cron_file, plan.cron_text);
  return { ...plan, written: true };
}

export function currentUser(env: Record<string, string | undefined>): string {
  try {
    return os.userInfo().username;
  } catch {
    return env.USER ?? 'root';
  }
}
