import type { LoadedConfig, Source } from './load.js';
import { redactUrl } from './load.js';
import { CONFIG_KEYS } from './schema.js';

export const REDACTED = '<redacted>';

export interface ConfigRow {
  key: string;
  /** The effective value; secrets are `<redacted>` when set and null when empty. */
  value: string | null;
  source: string;
  secret: boolean;
}

export interface ConfigReport {
  file: string | null;
  production_mode: boolean;
  values: Record<string, string | null>;
  sources: Record<string, string>;
  warnings: string[];
}

export function sourceLabel(s: Source): string {
  if (s.kind === 'file') return `${s.file}:${s.line}`;
  if (s.kind === 'stage') return `--stage ${s.stage}`;
  return s.kind === 'env' ? 'environment' : s.kind === 'flag' ? '--set' : 'default';
}

/** The only way configuration leaves the process: every secret redacted, credentials in URLs too. */
export function configRows(loaded: LoadedConfig): ConfigRow[] {
  return CONFIG_KEYS.map((spec) => {
    const raw = loaded.raw[spec.key] ?? '';
    let value: string | null = raw;
    if (spec.secret) value = raw === '' ? null : REDACTED;
    else if ((spec.kind === 'http-url' || spec.kind === 'redis-url') && raw.includes('@'))
      value = JSON.parse(redactUrl(raw)) as string;
    return {
      key: spec.key,
      value,
      source: sourceLabel(loaded.sources[spec.key]!),
      secret: Boolean(spec.secret),
    };
  });
}

export function configReport(loaded: LoadedConfig): ConfigReport {
  const rows = configRows(loaded);
  return {
    file: loaded.file ?? null,
    production_mode: loaded.config.productionMode,
    values: Object.fromEntries(rows.map((r) => [r.key, r.value])),
    sources: Object.fromEntries(rows.map((r) => [r.key, r.source])),
    warnings: loaded.warnings,
  };
}
