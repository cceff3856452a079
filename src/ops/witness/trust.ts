import {
  fetchServed,
  keyChange,
  keyFingerprint,
  normalizeWitnessUrl,
  type ObserveOptions,
  observeCheckpoint,
  openServed,
  readHeldCheckpoints,
  updateHeld,
} from '../../clients/witness-checkpoint.js';

export interface TrustReport {
  url: string;
  /** What the URL was known to sign as, if anything. */
  held: { origin: string; fingerprint: string | null } | null;
  presented: { origin: string; fingerprint: string; size: number };
  changed: boolean;
  accepted: boolean;
}

/**
 * Shows what a witness presents beside what is held for its URL; with `accept`, records the
 * presented key as the one this URL signs with. The presented checkpoint must verify under its own
 * key, and, if its origin is already held, extend that log.
 */
export async function trustWitness(opts: ObserveOptions & { accept: boolean }): Promise<TrustReport> {
  const base = normalizeWitnessUrl(opts.url);
  const all = await readHeldCheckpoints(opts.state);
  const served = await fetchServed(opts);
  const cp = openServed(served, served.public_key, served.origin);
  const known = all.urls[base];
  const knownLog = known ? all.logs[known] : undefined;
  const report: TrustReport = {
    url: base,
    held: known
      ? { origin: known, fingerprint: knownLog ? keyFingerprint(knownLog.public_key) : null }
      : null,
    presented: { origin: served.origin, fingerprint: keyFingerprint(served.public_key), size: cp.size },
    changed: known !== undefined && known !== served.origin,
    accepted: false,
  };
  if (!opts.accept) return report;
  const sameOrigin = all.logs[served.origin];
  if (sameOrigin && sameOrigin.public_key !== served.public_key)
    throw keyChange(base, sameOrigin, sameOrigin.origin, served);
  await updateHeld(opts.state, (h) => {
    h.urls[base] = served.origin;
  });
  // Holds (or proves consistent with) its checkpoint exactly as any client would.
  await observeCheckpoint(opts);
  return { ...report, accepted: true };
}
