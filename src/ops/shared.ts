/** Resolves once `signal` aborts (SIGTERM/SIGINT for a server command). */
export function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/** `ifmesh signaling serve` arguments for a local instance (up and deploy start them alike). */
export function signalingServeArgs(
  bin: string,
  o: { port: number; instanceId: string; stateDir: string; adminTokenFile?: string },
): string[] {
  return [
    bin,
    'signaling',
    'serve',
    '--host',
    '127.0.0.1',
    '--port',
    String(o.port),
    '--instance-id',
    o.instanceId,
    ...(o.adminTokenFile ? ['--admin-token-file', o.adminTokenFile] : []),
    '--state-dir',
    o.stateDir,
  ];
}
