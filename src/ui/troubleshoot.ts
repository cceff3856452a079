import type { ChalkInstance } from 'chalk';
import type { TroubleshootReport } from '../ops/troubleshoot/run.js';

function brief(v: unknown): string {
  const s = JSON.stringify(v);
  return s.length > 160 ? `${s.slice(0, 157)}...` : s;
}

/** The path taken (question, evidence, answer), then the root cause and what to do. */
export function troubleshootText(r: TroubleshootReport, c: ChalkInstance): string {
  const who = [r.subject.agent, r.subject.peer].filter(Boolean).join(' -> ');
  const lines = [c.bold(`${r.command}${who ? ` ${who}` : ''} (tree: ${r.walk.tree})`)];
  r.walk.path.forEach((s, i) => {
    lines.push(`${i + 1}. ${s.question}  ${c.bold(s.answer)}`);
    for (const [k, v] of Object.entries(s.evidence)) lines.push(c.dim(`     ${k}: ${brief(v)}`));
  });
  for (const [k, v] of Object.entries(r.extra)) lines.push(c.dim(`   ${k}: ${brief(v)}`));
  // A finding the root cause already names (tree 1's "signaling server down") is said once.
  const findings = r.findings.filter((f) => f.id !== r.walk.root_cause?.id);
  lines.push(
    r.walk.root_cause
      ? `${c.red('Root cause')}: ${r.walk.root_cause.title} [${r.walk.root_cause.id}]`
      : findings.length
        ? `${c.yellow("No root cause on the tree's path")}, but signaling is not all serving (below)`
        : `${c.green('No fault found')}`,
  );
  for (const a of r.walk.actions) lines.push(`  - ${a}`);
  for (const f of findings) {
    lines.push(`${c.yellow('Warning')}: ${f.title} [${f.id}]`);
    for (const i of f.instances)
      lines.push(c.dim(`     ${i.error?.includes(i.url) ? i.error : `${i.url}: ${i.error}`}`));
    for (const a of f.actions) lines.push(`  - ${a}`);
  }
  return lines.join('\n');
}
