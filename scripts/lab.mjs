// npm run lab: runs the NAT traversal matrix in network namespaces (root) and rewrites the table
// of docs/nat-traversal.md between its markers. Build first (npm run build); every lab is taken down
// as it finishes.
import { readFileSync, writeFileSync } from 'node:fs';
import { NAT_PAIRS, renderMatrix, runPair } from '../dist/src/ops/lab/matrix.js';
import { systemClock } from '../dist/src/util/clock.js';
import { systemExec } from '../dist/src/util/exec.js';

const BEGIN = '<!-- nat-matrix:begin -->';
const END = '<!-- nat-matrix:end -->';
const PAGE = 'docs/nat-traversal.md';
const readme = readFileSync(PAGE, 'utf8');
if (!readme.includes(BEGIN) || !readme.includes(END)) {
  console.error(`${PAGE} has no ${BEGIN} … ${END} block to rewrite`);
  process.exit(2);
}
const ctx = { exec: systemExec, env: { IFMESH_LAB_DIR: process.env.IFMESH_LAB_DIR }, clock: systemClock };
const rows = [];
for (const policy of ['all', 'relay'])
  for (const nats of NAT_PAIRS) {
    const r = await runPair({ name: `matrix${process.pid % 10000}`, nats, policy, ctx });
    rows.push(r);
    console.error(
      `${nats.join(' <-> ')} ${policy}: ${r.connected ? 'connected' : 'NOT connected'} ${r.candidate_types.join('/')} ${r.open_ms ?? '-'} ms${r.fallback ? ' (fallback)' : ''}`,
    );
  }
const table = renderMatrix(rows);
const stamp = `Measured ${new Date().toISOString().slice(0, 10)} by \`npm run lab\` (Node ${process.versions.node}, coturn in the lab's public namespace, TURN_FALLBACK_TIMEOUT_MS 5000).`;
const [head, rest] = readme.split(BEGIN);
writeFileSync(PAGE, `${head}${BEGIN}\n${stamp}\n\n${table}\n${END}${rest.split(END)[1]}`);
console.log(table);
process.exit(rows.every((r) => r.connected) ? 0 : 1);
