import type { KeyReport } from '../../src/ops/keys.js';
import type { Output } from '../../src/ui/output.js';

/** A key report: what was written (if anything), then the identity. */
export function renderKey(out: Output, report: KeyReport, verb: string): void {
  for (const w of report.warnings) out.warn(w);
  out.result(report, (r, c) =>
    [
      verb ? `${c.green('✓')} ${verb} ${r.files.join(', ')}` : '',
      `agent_id    ${r.agent_id ?? c.dim('(not recorded)')}`,
      `key_id      ${r.key_id}`,
      `public_key  ${r.public_key}`,
    ]
      .filter(Boolean)
      .join('\n'),
  );
}
