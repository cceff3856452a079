// `ifmesh failover` for people: the plan (--dry-run), the steps and checks of a run, and one verdict
// line derived from one boolean (a run never reads as applied and failed at once). The checks' details
// carry their numbers rounded (src/ui/units.ts); --json keeps the full precision of the data.
import type { ChalkInstance } from 'chalk';
import type { ScenarioClass } from '../ops/failover/classification.js';
import { type FailoverPlan, type FailoverReport, stepLine } from '../ops/failover/scenarios.js';
import { CHECK_TITLES, type ValidationReport } from '../ops/failover/validate.js';
import { formatDuration } from './units.js';

const pad = (rows: string[][]): string[] => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) =>
    r
      .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
};

/**
 * The failover guide's classification table, then each scenario's command and manual steps: what
 * `failover --help` and `failover list` print. Plain text, no colour: it is also help output.
 */
export function renderClassification(classes: readonly ScenarioClass[]): string {
  const table = pad([
    ['type', 'component', 'scope', 'recovery time (guide)', 'target', 'manual intervention'],
    ...classes.map((c) => [
      `${c.scenario}: ${c.type}`,
      c.component,
      c.scope,
      c.recovery_time,
      `< ${formatDuration(c.target_ms)}`,
      c.manual_intervention,
    ]),
  ]);
  const out = ["Failover classification (the failover guide's types A-E):", ...table.map((l) => `  ${l}`)];
  for (const c of classes) {
    out.push('', `${c.scenario}: ${c.type} — ${c.command}`);
    out.push(...c.manual_steps.map((step, i) => `  ${i + 1}. ${step}`));
  }
  out.push(
    '',
    '`failover validate` holds the measured recovery time (run start to service restored) to the target.',
  );
  return out.join('\n');
}

export function renderPlan(d: { plan: FailoverPlan }): string {
  return [
    `failover ${d.plan.failover_id} (scenario ${d.plan.scenario}), dry run: nothing changed`,
    ...d.plan.steps.map((s, i) => `  ${i + 1}. ${s}`),
  ].join('\n');
}

const mark = (ok: boolean, c: ChalkInstance) => (ok ? c.green('✓') : c.red('✗'));

// Checks and steps the progress lines above already printed (no terminal) are not repeated.
const checkLines = (r: ValidationReport, c: ChalkInstance, shown: ReadonlySet<string>) =>
  r.checks
    .filter((k) => !shown.has(CHECK_TITLES[k.name]))
    .map((k) => `  ${mark(k.passed, c)} ${CHECK_TITLES[k.name]}: ${k.detail}`);

const titled = (title: string, lines: string[]) => (lines.length ? [title, ...lines] : []);

/** The single verdict line: success or failure from `ok` alone, naming what failed. */
function verdict(ok: boolean, success: string, failure: string, failed: string[], c: ChalkInstance): string {
  return ok
    ? c.green(`✅ ${success}`)
    : c.red(`✗ ${failure}${failed.length ? ` (failed: ${failed.join('; ')})` : ''}`);
}

/** A scenario run: its steps, the validation's checks, then one verdict from `ok`. */
export function renderFailover(
  d: { report: FailoverReport; validation: ValidationReport; ok: boolean },
  c: ChalkInstance,
  shown: ReadonlySet<string> = new Set(),
): string {
  const r = d.report;
  const name = `failover ${r.failover_id} (scenario ${r.scenario})`;
  return [
    ...titled(
      `${name}: steps`,
      r.steps.filter((s) => !shown.has(stepLine(s))).map((s) => `  ${mark(s.ok, c)} ${s.step}: ${s.detail}`),
    ),
    ...titled('recovery validation:', checkLines(d.validation, c, shown)),
    verdict(
      d.ok,
      `${name} applied, recovery validated`,
      `${name} FAILED`,
      [
        ...r.steps.filter((s) => !s.ok).map((s) => s.step),
        ...d.validation.checks.filter((k) => !k.passed).map((k) => CHECK_TITLES[k.name]),
      ],
      c,
    ),
  ].join('\n');
}

/** `failover validate` alone: the checks, then one verdict from `passed`. */
export function renderValidation(
  r: ValidationReport,
  c: ChalkInstance,
  shown: ReadonlySet<string> = new Set(),
): string {
  return [
    ...checkLines(r, c, shown),
    verdict(
      r.passed,
      `failover ${r.failover_id} recovery validated`,
      `failover ${r.failover_id} recovery NOT validated`,
      r.checks.filter((k) => !k.passed).map((k) => CHECK_TITLES[k.name]),
      c,
    ),
  ].join('\n');
}
