// npm runs `prepare` after `npm ci` / `npm install` in this directory and before `npm pack`; never
// when a packed tarball is installed. With the devDependencies (a checkout, or packing a release) it
// builds dist/; without them (`npm ci --omit=dev` of a directory that carries its built dist/, as a
// release does) there is nothing to build: it says so, and fails only if dist/ is missing too.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

if (existsSync('node_modules/.bin/tsc')) {
  const build = spawnSync('npm', ['run', 'build'], { stdio: 'inherit' });
  process.exit(build.status ?? 1);
}
if (existsSync('dist/bin/ifmesh.js')) {
  console.log('ifmesh: TypeScript is not installed (--omit=dev); using the built dist/');
  process.exit(0);
}
console.error(
  'ifmesh: dist/ is not built and TypeScript is not installed (npm ci --omit=dev). Build where the ' +
    'devDependencies are installed (npm ci && npm run build) and ship dist/ with the release, or ' +
    'install the packed tarball (npm pack, then npm install -g ./ifmesh-<version>.tgz).',
);
process.exit(1);
