// The runtime side of the werift DTLS nonce fix: applied once, and a werift it cannot fix is refused
// with an error that names the fix (the wire tests are in test/integration/werift-dtls-nonce.test.ts).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as werift from 'werift';
import {
  applyDtlsNonceFix,
  WeriftDtlsFixError,
  weriftDtlsFix,
  weriftVersion,
} from '../../src/agent/werift-dtls-fix.js';
import { ROOT } from '../helpers/cli.js';

type Header = { epoch: number; sequenceNumber: number };
const packet = (epoch: number, sequenceNumber: number) => ({
  recordLayerHeader: {
    contentType: 23,
    protocolVersion: { major: 254, minor: 253 },
    epoch,
    sequenceNumber,
    contentLen: 1,
  },
  fragment: Buffer.alloc(1),
});

/** A werift-shaped CipherContext whose encryptPacket hands the header's numbers to the AEAD. */
function weriftLike(numbering: (h: Header) => Header = (h) => h) {
  const seen: string[] = [];
  class CipherContext {
    sessionType = 1;
    cipher = {
      encrypt: (_t: number, data: Buffer, h: Header) => {
        seen.push(`${h.epoch}:${h.sequenceNumber}`);
        return data;
      },
    };
    encryptPacket(pkt: ReturnType<typeof packet>) {
      const h = numbering(pkt.recordLayerHeader);
      this.cipher.encrypt(this.sessionType, pkt.fragment, {
        epoch: h.epoch,
        sequenceNumber: h.sequenceNumber,
      });
      return pkt;
    }
  }
  return { mod: { CipherContext }, seen };
}

describe('applyDtlsNonceFix', () => {
  it('has fixed the installed werift by the time the module is imported, once', () => {
    expect(weriftDtlsFix).toEqual({ version: weriftVersion(), tested: true, applied: true });
    expect(weriftVersion()).toMatch(/^\d+\.\d+\.\d+/);
    // Importing it again, or a second copy of the module, wraps nothing twice.
    expect(applyDtlsNonceFix(werift as unknown as Record<string, unknown>, weriftVersion())).toBe(
      weriftDtlsFix,
    );
  });

  it("renumbers werift 0.24.4's order so that no (epoch, seq) reaches the cipher twice", () => {
    const { mod, seen } = weriftLike();
    applyDtlsNonceFix(mod, '0.24.4');
    const ctx = new mod.CipherContext();
    // Finished at (1, 7), then the counter reset: application records from (1, 1).
    ctx.encryptPacket(packet(1, 7));
    for (let seq = 1; seq <= 12; seq++) ctx.encryptPacket(packet(1, seq));
    const after = seen.slice(-13);
    expect(after).toEqual(Array.from({ length: 13 }, (_, i) => `1:${i}`));
    // A new handshake (new write keys) starts again at 0.
    const next = new mod.CipherContext();
    next.encryptPacket(packet(1, 3));
    expect(seen.at(-1)).toBe('1:0');
  });

  it('refuses a werift without CipherContext, naming the fix and the version', () => {
    const err = (() => {
      try {
        applyDtlsNonceFix({}, '9.9.9');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(WeriftDtlsFixError);
    expect(err).toMatchObject({ code: 'werift_dtls_unfixed', exitCode: 1 });
    expect((err as Error).message).toContain('the werift DTLS nonce fix (src/agent/werift-dtls-fix.ts)');
    expect((err as Error).message).toContain('werift 9.9.9');
    expect((err as Error).message).toContain('refuses to run it');
  });

  it('refuses a werift whose encryptPacket does not number records from the header, and leaves it as it was', () => {
    const { mod } = weriftLike((h) => ({ epoch: h.epoch, sequenceNumber: 5 }));
    const original = mod.CipherContext.prototype.encryptPacket;
    expect(() => applyDtlsNonceFix(mod, '0.99.0')).toThrow(/does not take the record number from the header/);
    expect(mod.CipherContext.prototype.encryptPacket).toBe(original);
    const noMethod = { CipherContext: class {} };
    expect(() => applyDtlsNonceFix(noMethod, '0.99.0')).toThrow(/encryptPacket\(pkt\) is not there/);
  });
});

describe('where DTLS sessions are made', () => {
  it('every module of bin/, commands/ and src/ that makes one imports the fix', () => {
    const files = ['bin', 'commands', 'src'].flatMap((dir) =>
      readdirSync(path.join(ROOT, dir), { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile() && /\.tsx?$/.test(e.name))
        .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name))),
    );
    const makers = files.filter((f) =>
      /new (?:RTCPeerConnection|DtlsClient|DtlsServer)\(/.test(readFileSync(path.join(ROOT, f), 'utf8')),
    );
    expect(makers).toContain('src/agent/agent.ts');
    for (const f of makers.filter((m) => m !== 'src/agent/werift-dtls-probe.ts')) {
      const text = readFileSync(path.join(ROOT, f), 'utf8');
      // Where in the imports does not matter: the fix is applied before the module's own code runs.
      expect(text, `${f} makes DTLS sessions, so it must import src/agent/werift-dtls-fix.js`).toMatch(
        /^import '(?:\.\.?\/)+(?:src\/)?(?:agent\/)?werift-dtls-fix\.js';$/m,
      );
    }
  });
});
