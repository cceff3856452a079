// The one place a command's outcome becomes its exit code (src/cli/define.ts's Outcome). The codes
// and their meanings are src/errors.ts's ExitCode; errors thrown map through IfmeshError.exitCode.
import { ExitCode, type ExitCodeValue } from '../errors.js';
import type { Outcome } from './define.js';

export type ExitDecision = { code: ExitCodeValue; pass?: false } | { code: number; pass: true };

export function exitCodeOf(outcome: Outcome): ExitDecision {
  if (outcome === undefined) return { code: ExitCode.ok };
  if (typeof outcome === 'string') return { code: ExitCode[outcome] };
  if ('passThrough' in outcome) return { code: outcome.passThrough, pass: true };
  return { code: outcome.exitCode };
}
