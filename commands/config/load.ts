import type { Context } from '../../src/cli/context.js';
import type { ConfigFlags } from '../../src/cli/options.js';
import type { LoadedConfig } from '../../src/config/load.js';
import type { Output } from '../../src/ui/output.js';

/**
 * `config check` and `show` load the configuration themselves rather than as a need: without
 * trusting its CA (they only read it), and showing its warnings even when it does not validate.
 */
export async function loadShown(ctx: Context, flags: ConfigFlags, out: Output): Promise<LoadedConfig> {
  const [{ loadConfig }, { configLoadOptions }] = await Promise.all([
    import('../../src/config/load.js'),
    import('../../src/cli/tls.js'),
  ]);
  try {
    const loaded = await loadConfig(configLoadOptions(ctx, flags));
    for (const w of loaded.warnings) out.warn(w);
    return loaded;
  } catch (err) {
    for (const w of (err as { warnings?: string[] }).warnings ?? []) out.warn(w);
    throw err;
  }
}
