import { execFileSync } from 'node:child_process';

/** Fails (never skips) when a system binary the test needs is missing, naming its Debian package. */
export function requireBinary(binary: string, debianPackage: string): string {
  try {
    return execFileSync('sh', ['-c', `command -v ${binary}`])
      .toString()
      .trim();
  } catch {
    throw new Error(
      `${binary} is not installed: apt-get install ${debianPackage} (or run bash test/setup/system-packages.sh as root)`,
    );
  }
}
