// How the fleet tests run the failover guide's scenario B: restart the instance at `failedUrl`, then
// watch the mesh for `stabilize`. The latency budget is not what they are about (a loaded machine).
export function failoverRestartArgv(failedUrl: string, stabilize: string): string[] {
  return [
    'failover',
    'signaling',
    '--max-rtt-p95',
    '10s',
    '--failed',
    failedUrl,
    '--action',
    'restart',
    '--stabilize',
    stabilize,
    '--loopback',
    '--json',
  ];
}
