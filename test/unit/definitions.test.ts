// The one list of every command (src/cli/definitions.ts), as a generator of README/docs tables
// reads it: each entry has a path that runs, a summary and examples, and its flags are what --help
// shows.
import { describe, expect, it } from 'vitest';
import { commandDefinitions } from '../../src/cli/definitions.js';
import { commands } from '../../src/cli/registry.js';
import { WATCHDOG_DEFAULTS } from '../../src/ops/fleet/watchdog.js';
import { run } from '../helpers/cli.js';

describe('commandDefinitions', () => {
  it('covers every group of the registry, in its order, each entry with a summary and an example of itself', () => {
    const groups = [...new Set(commandDefinitions.map((d) => d.path.split(' ')[0]))];
    expect(groups).toEqual(commands.map((c) => c.name));
    for (const d of commandDefinitions) {
      expect(d.summary, d.path).not.toBe('');
      expect(
        d.examples.some((e) => e.includes(`ifmesh ${d.path}`)),
        `${d.path} has an example of itself`,
      ).toBe(true);
    }
  });

  it("a definition's flags are the ones its --help shows", async () => {
    const d = commandDefinitions.find((x) => x.path === 'keys generate')!;
    expect(d.flags.map((f) => f.flags)).toEqual(['--agent <id>', '--out <dir>', '--force', '--json']);
    expect(d.flags.find((f) => f.flags === '--agent <id>')?.required).toBe(true);
    const help = (await run(['keys', 'generate', '--help'])).stdout;
    for (const f of d.flags) expect(help).toContain(f.flags);
  });

  it("supervise's --max-tries default is the watchdog's", () => {
    const f = commandDefinitions
      .find((x) => x.path === 'supervise')!
      .flags.find((x) => x.flags.startsWith('--max-tries'));
    expect(f?.default).toBe(String(WATCHDOG_DEFAULTS.maxTries));
  });
});
