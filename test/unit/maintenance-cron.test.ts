// install-cron's schedule, pure: the runbook's 00:00 UTC under each kind of cron and timezone, the
// periodic key rotation's tick, and what the generated file states about its timezone.
import { describe, expect, it } from 'vitest';
import { cronStepMinutes, rotationSchedule } from '../../src/ops/keys/schedule.js';
import { cronTimes, planCron, utcOffsetMinutes } from '../../src/ops/maintenance/cron.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { tempDir } from '../helpers/cli.js';

// A winter day: Europe/Paris is UTC+01:00 then.
const NOW = Date.UTC(2026, 0, 15, 12);

const plan = (o: Partial<Parameters<typeof planCron>[0]> = {}) =>
  planCron({
    state: openStateDir('/srv/mesh/.ifmesh'),
    cwd: '/srv/mesh',
    node: '/usr/bin/node',
    bin: '/opt/ifmesh/dist/bin/ifmesh.js',
    user: 'mesh',
    cronFile: '/etc/cron.d/ifmesh',
    maxAgents: 250,
    renew: false,
    keyRotation: { enabled: true, intervalMs: 86_400_000 },
    timezone: 'Etc/UTC',
    cron: 'debian',
    now: NOW,
    ...o,
  });

const entries = (text: string) => text.split('\n').filter((l) => /^[\d*]/.test(l));

describe('install-cron timezones', () => {
  it('a UTC host: 00:00 as written, CRON_TZ=UTC kept, and the file says why the times hold', () => {
    const p = plan();
    expect(p.timezone).toMatchObject({ zone: 'Etc/UTC', mode: 'utc', offset_minutes: 0 });
    expect(p.cron_text).toMatch(/^CRON_TZ=UTC$/m);
    expect(p.cron_text).toContain("# Times are UTC: this host's timezone is Etc/UTC");
    expect(p.cron_text).toContain("Debian's");
    const [daily, weekly] = entries(p.cron_text);
    expect(daily).toMatch(/^0 0 \* \* \* mesh cd \/srv\/mesh && .* maintenance daily --state-dir /);
    expect(weekly).toMatch(/^0 0 \* \* 0 mesh .* maintenance weekly --state-dir \S+ --max-agents 250 >> /);
  });

  it("Debian's cron on a zone with daylight saving: refused, naming the zone and the fix", () => {
    expect(() => plan({ timezone: 'Europe/Paris' })).toThrow(
      /Europe\/Paris \(UTC\+01:00 now, with daylight saving\)/,
    );
    expect(() => plan({ timezone: 'Europe/Paris', cron: 'unknown' })).toThrow(/ignores CRON_TZ/);
    try {
      plan({ timezone: 'America/New_York' });
    } catch (err) {
      expect((err as { hint: string }).hint).toContain('timedatectl set-timezone Etc/UTC');
      expect((err as { code: string }).code).toBe('cron_timezone');
    }
  });

  it('cronie honours CRON_TZ: 00:00 UTC whatever the host zone', () => {
    const p = plan({ timezone: 'Europe/Paris', cron: 'cronie' });
    expect(p.timezone.mode).toBe('cron_tz');
    expect(p.cron_text).toMatch(/^CRON_TZ=UTC$/m);
    expect(
      entries(p.cron_text)
        .slice(0, 2)
        .map((l) => l.split(' ').slice(0, 5).join(' ')),
    ).toEqual(['0 0 * * *', '0 0 * * 0']);
  });

  it('a fixed-offset zone is converted to local time, and no CRON_TZ line is written', () => {
    const east = plan({ timezone: 'Asia/Kolkata' });
    expect(east.timezone).toMatchObject({ mode: 'converted', offset_minutes: 330, daylight_saving: false });
    expect(east.cron_text).not.toMatch(/^CRON_TZ=/m);
    expect(east.cron_text).toContain('00:00 UTC is 05:30 here (weekly: Sunday 05:30)');
    expect(
      entries(east.cron_text)
        .slice(0, 2)
        .map((l) => l.split(' ').slice(0, 5).join(' ')),
    ).toEqual(['30 5 * * *', '30 5 * * 0']);
    // West of UTC, Sunday 00:00 UTC is still Saturday evening.
    const west = cronTimes('America/Bogota', 'debian', NOW);
    expect([west.daily, west.weekly]).toEqual(['0 19 * * *', '0 19 * * 6']);
    expect(west.tz.assumption).toContain('Saturday 19:00');
  });

  it('offsets come from the zone database, and a wrong zone is a usage error', () => {
    expect(utcOffsetMinutes('Asia/Kathmandu', NOW)).toBe(345);
    expect(utcOffsetMinutes('UTC', NOW)).toBe(0);
    expect(() => utcOffsetMinutes('Mars/Olympus', NOW)).toThrow(/not a timezone/);
  });
});

describe('install-cron lines', () => {
  it('weekly carries --max-agents from configuration; the env file and --renew ride along', () => {
    const p = plan({ configFile: '/srv/mesh/config/webrtc-production.env', renew: true });
    const [daily, weekly, rotation] = p.lines;
    expect(daily!.command).toContain(
      'maintenance daily --state-dir /srv/mesh/.ifmesh --config /srv/mesh/config/webrtc-production.env --renew >> /srv/mesh/.ifmesh/logs/maintenance.log 2>&1',
    );
    expect(weekly!.command).toContain(
      'maintenance weekly --state-dir /srv/mesh/.ifmesh --config /srv/mesh/config/webrtc-production.env --max-agents 250 >>',
    );
    expect(rotation).toMatchObject({ what: 'rotate-keys --if-due', schedule: '*/15 * * * *' });
    expect(rotation!.command).toContain('rotate-keys --if-due --state-dir /srv/mesh/.ifmesh --config');
    expect(rotation!.command).toContain('logs/key-rotation.log');
  });

  it('no rotation line when ENABLE_SRTP_KEY_ROTATION=false; a short interval ticks more often', () => {
    expect(
      plan({ keyRotation: { enabled: false, intervalMs: 86_400_000 } }).lines.map((l) => l.what),
    ).toEqual(['maintenance daily', 'maintenance weekly']);
    expect(cronStepMinutes(86_400_000)).toBe(15);
    expect(cronStepMinutes(20 * 60_000)).toBe(5);
    expect(cronStepMinutes(60_000)).toBe(1);
    expect(plan({ keyRotation: { enabled: true, intervalMs: 60_000 } }).lines[2]!.schedule).toBe('* * * * *');
  });
});

describe('periodic rotation schedule', () => {
  it('due at once when never rotated, then once the interval has passed since the last', async () => {
    const { writeRotationRecord } = await import('../../src/ops/keys/schedule.js');
    const d = tempDir();
    try {
      const o = { enabled: true, intervalMs: 3_600_000 };
      expect(rotationSchedule(openStateDir(d.dir), o, NOW)).toMatchObject({
        due: true,
        overdue: false,
        last: null,
      });
      writeRotationRecord(openStateDir(d.dir), {
        at: new Date(NOW).toISOString(),
        reason: 'scheduled',
        incident_id: null,
        ok: true,
        completed: 3,
        total: 3,
        pending: [],
        failed_connections: 0,
        rotation_ids: ['r1'],
      });
      expect(rotationSchedule(openStateDir(d.dir), o, NOW + 3_599_999)).toMatchObject({
        due: false,
        next_due_at: new Date(NOW + 3_600_000).toISOString(),
      });
      expect(rotationSchedule(openStateDir(d.dir), o, NOW + 3_600_000).due).toBe(true);
      // Overdue only past an hour's grace: the cron tick is missing or failing.
      expect(rotationSchedule(openStateDir(d.dir), o, NOW + 7_200_000).overdue).toBe(false);
      expect(rotationSchedule(openStateDir(d.dir), o, NOW + 7_200_001).overdue).toBe(true);
      expect(rotationSchedule(openStateDir(d.dir), { ...o, enabled: false }, NOW + 9e9)).toMatchObject({
        due: false,
        overdue: false,
        next_due_at: null,
      });
    } finally {
      d.cleanup();
    }
  });
});
