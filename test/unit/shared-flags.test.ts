// Every command's --help, walked from the registry: each command (and sub-command) has the shared
// flags it needs, and every shared flag anywhere is the one declaration in src/cli/options.ts.
import { Command, type Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { SHARED_FLAGS, type SharedFlag, shared } from '../../src/cli/options.js';
import { type CommandIo, commands } from '../../src/cli/registry.js';
import { run } from '../helpers/cli.js';

// Which command needs which shared flag. Commands not listed here are still checked for using the
// shared declarations of whatever shared flags they have.
const NEEDS: Record<string, SharedFlag[]> = {
  up: ['state-dir', 'json'],
  deploy: ['stage', 'state-dir', 'witness', 'config', 'set', 'json'],
  status: ['stage', 'state-dir', 'json'],
  down: ['stage', 'state-dir', 'json'],
  logs: ['state-dir'],
  selftest: ['json'],
  'config check': ['stage', 'config', 'set', 'json'],
  'config show': ['stage', 'config', 'set', 'json'],
  'keys generate': ['json'],
  'keys show': ['json'],
  'message sign': ['json'],
  'message verify': ['json'],
  'signaling serve': ['state-dir', 'witness', 'config', 'set', 'json'],
  'agent run': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'agent swarm': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  verify: ['stage', 'state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  preflight: ['stage', 'state-dir', 'config', 'set', 'json'],
  'witness serve': ['state-dir', 'config', 'set', 'json'],
  'witness query': ['state-dir', 'witness', 'config', 'set', 'json'],
  'witness tail': ['state-dir', 'witness', 'config', 'set', 'json'],
  'witness verify': ['state-dir', 'json'],
  'witness spool': ['state-dir', 'witness', 'config', 'set', 'json'],
  'witness trust': ['state-dir', 'json'],
  'monitoring export': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'monitoring check': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  top: ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'troubleshoot connection-timeout': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'troubleshoot packet-loss': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'troubleshoot latency': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'troubleshoot dtls': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'troubleshoot memory': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'agents block': ['state-dir', 'signaling', 'config', 'set', 'json'],
  'agents unblock': ['state-dir', 'signaling', 'config', 'set', 'json'],
  'agents list': ['state-dir', 'signaling', 'config', 'set', 'json'],
  'certs check': ['config', 'set', 'json'],
  'certs rotate': ['state-dir', 'witness', 'config', 'set', 'json'],
  'maintenance daily': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'maintenance weekly': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'maintenance install-cron': ['state-dir', 'json'],
  'rotate-keys': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'witness migrate': ['json'],
  'failover turn': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'failover signaling': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'failover partition': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'failover cert': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'failover keys': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'failover validate': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'incident p1': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'incident p2': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'incident security': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'incident cert-expiry': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'incident turn-failure': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'incident show': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'incident resolve': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'incident escalate': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'incident ack': ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'],
  'incident list': ['state-dir', 'witness', 'config', 'set', 'json'],
  'incident due': ['state-dir', 'witness', 'config', 'set', 'json'],
  'canary status': ['stage', 'state-dir', 'json'],
  'canary promote': ['stage', 'state-dir', 'witness', 'config', 'set', 'json'],
  'canary abort': ['stage', 'state-dir', 'witness', 'config', 'set', 'json'],
  monitor: ['stage', 'state-dir', 'witness', 'config', 'set', 'json'],
  rollback: ['stage', 'state-dir', 'witness', 'config', 'set', 'json'],
  releases: ['stage', 'state-dir', 'json'],
  'canary resume': ['stage', 'state-dir', 'witness', 'config', 'set', 'json'],
};

const io = {} as CommandIo;

/** Every runnable command path in the registry ("up", "witness query", …) with its options. */
async function walk(): Promise<Map<string, readonly Option[]>> {
  const found = new Map<string, readonly Option[]>();
  for (const entry of commands) {
    const cmd = new Command(entry.name);
    (await entry.load()).register(cmd, io);
    if (cmd.commands.length === 0) found.set(entry.name, cmd.options);
    for (const sub of cmd.commands) found.set(`${entry.name} ${sub.name()}`, sub.options);
  }
  return found;
}

const flagOf = (o: Option) => o.long?.replace(/^--/, '') as SharedFlag;

describe('shared flags', () => {
  it('every command in the table exists, and its --help shows the shared flags it needs', async () => {
    const all = await walk();
    expect([...all.keys()]).toEqual(expect.arrayContaining(Object.keys(NEEDS)));
    for (const [name, needs] of Object.entries(NEEDS)) {
      const r = await run([...name.split(' '), '--help']);
      expect(r.code, name).toBe(0);
      for (const flag of needs) {
        const declared = shared(flag);
        expect(r.stdout, `${name} --help lacks ${declared.flags}`).toContain(declared.flags);
      }
    }
  });

  it('a shared flag, wherever it appears, is the one declaration (same argument, same help)', async () => {
    for (const [name, options] of await walk()) {
      for (const o of options.filter((x) => SHARED_FLAGS.includes(flagOf(x)))) {
        const declared = shared(flagOf(o));
        expect({ command: name, flags: o.flags, help: o.description }).toEqual({
          command: name,
          flags: declared.flags,
          help: declared.description,
        });
      }
    }
  });
});
