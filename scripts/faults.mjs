// `npm run faults`: runs the fault matrix (the scenario files below, against real processes),
// collects what each scenario measured (test/faults/figures.ts), prints one table — fault, trials,
// expected, observed, figure — and writes it into docs/reliability.md's table block.
// Exit 0 when every scenario passed and every figure met its expectation, 1 otherwise, 2 on bad usage.
//
//   npm run faults                  the whole matrix (about 20 minutes on 2 cores)
//   npm run faults -- witness       only the scenario files whose path contains "witness"
//   npm run faults -- --no-write    print the table, leave docs/reliability.md alone
//   npm run faults -- --json        one JSON document on stdout instead of the table
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// The scenarios: every file under test/faults/, the crash and corruption drills kept with the
// end-to-end tests, and TURN failover on real NAT (the NAT lab: root, as the lab tests need).
const SCENARIOS = [
  ...readdirSync(path.join(ROOT, 'test/faults'))
    .filter((n) => n.endsWith('.test.ts'))
    .map((n) => `test/faults/${n}`),
  'test/e2e/rollout-crash.test.ts',
  'test/e2e/state-corrupt.test.ts',
  'test/lab/lab-failover.test.ts',
];
// Each test has its own timeout; the run as a whole has this one.
const RUN_LIMIT_MS = 40 * 60_000;
const BEGIN = '<!-- faults:table -->';
const END = '<!-- /faults:table -->';
// The page whose table block the run rewrites.
const PAGE_NAME = 'docs/reliability.md';
const PAGE = path.join(ROOT, PAGE_NAME);

const args = process.argv.slice(2);
const unknown = args.find((a) => a.startsWith('-') && a !== '--json' && a !== '--no-write');
if (unknown) usage(`unknown option ${unknown}; use --json, --no-write or words naming scenario files`);
const json = args.includes('--json');
const filters = args.filter((a) => !a.startsWith('-'));
const files = filters.length ? SCENARIOS.filter((f) => filters.some((w) => f.includes(w))) : SCENARIOS;
if (!files.length) usage(`no scenario file matches ${filters.join(', ')}; they are: ${SCENARIOS.join(', ')}`);
const vitest = path.join(ROOT, 'node_modules', '.bin', 'vitest');
if (!existsSync(vitest)) usage('vitest is not installed here; run npm ci first');

// A whole run is long: a page that cannot take the table is said before it, not after.
if (!filters.length && !args.includes('--no-write')) {
  const text = readFileSync(PAGE, 'utf8');
  if (text.indexOf(BEGIN) < 0 || text.indexOf(END) < text.indexOf(BEGIN))
    usage(`${PAGE_NAME} has no ${BEGIN} … ${END} block to write the table into; add one, or pass --no-write`);
}

const figuresDir = mkdtempSync(path.join(os.tmpdir(), 'ifmesh-faults-'));
try {
  const code = await runScenarios();
  const figures = readFigures();
  const missed = figures.filter((f) => !f.ok);
  const ok = code === 0 && missed.length === 0 && figures.length > 0;
  const table = renderTable(figures);
  if (json) process.stdout.write(`${JSON.stringify({ ok, scenarios_passed: code === 0, figures })}\n`);
  else process.stdout.write(`\n${table}\n`);
  if (figures.length === 0) console.error('faults: no scenario recorded a figure');
  if (missed.length)
    console.error(`faults: ${missed.length} row(s) missed: ${missed.map((f) => f.fault).join('; ')}`);
  if (code !== 0) console.error('faults: a scenario failed (see the test output above)');
  const write = !args.includes('--no-write');
  if (write && filters.length) {
    console.error(`faults: a filtered run leaves ${PAGE_NAME} alone; run the whole matrix to rewrite it`);
  } else if (write && figures.length) {
    writePage(table, ok);
    console.error(`faults: ${PAGE_NAME} table rewritten`);
  }
  process.exitCode = ok ? 0 : 1;
} finally {
  rmSync(figuresDir, { recursive: true, force: true });
}

function usage(message) {
  console.error(`faults: ${message}`);
  process.exit(2);
}

function runScenarios() {
  return new Promise((resolve) => {
    // Its own process group, so the time limit stops vitest and everything its scenarios started.
    const child = spawn(vitest, ['run', '--config', 'test/vitest.config.ts', ...files], {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', json ? 'ignore' : 'inherit', 'inherit'],
      // tier all: the long drills the quick tier leaves out are part of the matrix.
      env: { ...process.env, IFMESH_TEST_TIER: 'all', IFMESH_FAULT_FIGURES: figuresDir },
    });
    const signalGroup = (sig) => {
      try {
        process.kill(-child.pid, sig);
      } catch {
        // already gone
      }
    };
    let kill;
    const limit = setTimeout(() => {
      console.error(`faults: the run passed its ${RUN_LIMIT_MS / 60_000}-minute limit; stopping it`);
      signalGroup('SIGTERM');
      kill = setTimeout(() => signalGroup('SIGKILL'), 30_000);
    }, RUN_LIMIT_MS);
    child.on('error', (err) => {
      clearTimeout(limit);
      console.error(`faults: could not run vitest: ${err.message}`);
      resolve(2);
    });
    child.on('exit', (code) => {
      clearTimeout(limit);
      clearTimeout(kill);
      resolve(code ?? 1);
    });
  });
}

function readFigures() {
  const file = path.join(figuresDir, 'figures.ndjson');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

function renderTable(figures) {
  const cell = (s) => String(s).replaceAll('|', '\\|');
  // Sorted by fault, so a rerun changes the figures, not the order (scenarios finish in any order).
  const sorted = [...figures].sort((a, b) => a.fault.localeCompare(b.fault));
  const rows = sorted.map(
    (f) =>
      `| ${cell(f.fault)} | ${f.trials} | ${cell(f.expected)} | ${cell(f.observed)} | ${cell(f.figure)} | ${f.ok ? 'yes' : '**missed**'} |`,
  );
  return [
    '| fault | trials | expected | observed | figure | met |',
    '|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

function writePage(table, ok) {
  const file = PAGE;
  const text = readFileSync(file, 'utf8');
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  if (a < 0 || b < a) {
    console.error(`faults: ${PAGE_NAME} lost its ${BEGIN} … ${END} block during the run; table not written`);
    return;
  }
  const when = new Date().toISOString().slice(0, 10);
  const machine = `${os.cpus().length} cores, Node ${process.versions.node}`;
  const status = ok ? 'every scenario passed' : 'NOT every scenario passed (rows marked missed)';
  const block = `${BEGIN}\nMeasured ${when} on ${machine}: ${status}.\n\n${table}\n`;
  writeFileSync(`${file}.tmp`, text.slice(0, a) + block + text.slice(b));
  // written beside it, then renamed: the page is never half-written
  renameSync(`${file}.tmp`, file);
}
