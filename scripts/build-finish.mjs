// After `tsc` (npm run build): the entry script made executable, and the checkout's package-lock.json
// copied to dist/ so that a packed release carries the dependency tree it was built and tested with
// (npm pack never ships package-lock.json itself, and an npm-shrinkwrap.json at the root would
// override the checkout's own lockfile). `ifmesh deploy --release` installs it with `npm ci`.
import { chmodSync, copyFileSync, existsSync } from 'node:fs';

chmodSync('dist/bin/ifmesh.js', 0o755);
if (existsSync('package-lock.json')) copyFileSync('package-lock.json', 'dist/package-lock.json');
