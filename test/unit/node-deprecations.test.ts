// ifmesh is tested on Node 20 only (docs/installing.md), and Node 20 is past its end of life: the
// code must not lean on anything Node 22 deprecates, so moving to 22 is a version bump, not a port.
// Greps bin/, commands/ and src/ for the APIs deprecated (documentation-only, runtime or end-of-life)
// as of Node 22, from https://nodejs.org/docs/latest-v22.x/api/deprecations.html, and fails naming
// file, line, the API, its deprecation code and the replacement.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

interface Rule {
  code: string;
  api: string;
  pattern: RegExp;
  use: string;
  /** A line that must match: proves the pattern is not dead. */
  example: string;
}

const UTIL_IS =
  'isArray|isBoolean|isBuffer|isDate|isError|isFunction|isNull|isNullOrUndefined|isNumber|isObject|isPrimitive|isRegExp|isString|isSymbol|isUndefined';
const FROM = (mod: string) =>
  String.raw`from\s*['"](?:node:)?${mod}['"]|require\(\s*['"](?:node:)?${mod}['"]\s*\)`;

const RULES: Rule[] = [
  {
    code: 'DEP0005',
    api: 'Buffer() / new Buffer()',
    pattern: /(?<![\w.$])Buffer\s*\(/,
    use: 'Buffer.from / Buffer.alloc',
    example: 'const b = new Buffer(10);',
  },
  {
    code: 'DEP0044–DEP0058',
    api: 'util.is*()',
    pattern: new RegExp(String.raw`\butil\.(?:${UTIL_IS})\b`),
    use: 'Array.isArray, typeof, instanceof',
    example: 'if (util.isArray(x)) {}',
  },
  {
    code: 'DEP0044–DEP0058',
    api: 'util.is*() imported by name',
    pattern: new RegExp(String.raw`import\s*\{[^}]*\b(?:${UTIL_IS})\b[^}]*\}\s*${FROM('util')}`),
    use: 'Array.isArray, typeof, instanceof',
    example: "import { isArray } from 'node:util';",
  },
  {
    code: 'DEP0026, DEP0028, DEP0029, DEP0059',
    api: 'util.print / puts / debug / error / log',
    pattern: /\butil\.(?:print|puts|debug|error|log)\s*\(/,
    use: 'console.*',
    example: "util.log('x');",
  },
  {
    code: 'DEP0060',
    api: 'util._extend',
    pattern: /\butil\._extend\b/,
    use: 'Object.assign',
    example: 'util._extend(a, b);',
  },
  {
    code: 'DEP0175',
    api: 'util.toUSVString',
    pattern: /\btoUSVString\b/,
    use: 'String.prototype.toWellFormed',
    example: 'util.toUSVString(s);',
  },
  {
    code: 'DEP0040',
    api: 'the punycode module',
    pattern: new RegExp(FROM('punycode')),
    use: 'url.domainToASCII or a userland punycode',
    example: "import punycode from 'punycode';",
  },
  {
    code: 'DEP0025',
    api: 'the sys module',
    pattern: new RegExp(FROM('sys')),
    use: 'node:util',
    example: "const sys = require('sys');",
  },
  {
    code: 'DEP0111',
    api: 'process.binding()',
    pattern: /\bprocess\.binding\s*\(/,
    use: 'public APIs',
    example: "process.binding('fs');",
  },
  {
    code: 'DEP0134, DEP0161',
    api: 'process._tickCallback / _getActiveHandles / _getActiveRequests',
    pattern: /\bprocess\._(?:tickCallback|getActiveHandles|getActiveRequests)\b/,
    use: 'process.getActiveResourcesInfo()',
    example: 'process._getActiveHandles();',
  },
  {
    code: 'DEP0138',
    api: 'process.mainModule',
    pattern: /\bprocess\.mainModule\b/,
    use: 'require.main',
    example: 'process.mainModule.filename;',
  },
  {
    code: 'DEP0139',
    api: 'process.umask() without an argument',
    pattern: /\bprocess\.umask\(\s*\)/,
    use: 'reading the mask elsewhere, or process.umask(mask)',
    example: 'const m = process.umask();',
  },
  {
    code: 'DEP0144',
    api: 'module.parent',
    pattern: /\bmodule\.parent\b/,
    use: 'require.main / import.meta',
    example: 'if (!module.parent) {}',
  },
  {
    code: 'DEP0147',
    api: 'fs.rmdir(path, { recursive: true })',
    pattern: /\brmdir(?:Sync)?\s*\([^)]*\brecursive\b/,
    use: 'fs.rm(path, { recursive: true })',
    example: 'fs.rmdirSync(d, { recursive: true });',
  },
  {
    code: 'DEP0176',
    api: 'fs.F_OK / R_OK / W_OK / X_OK',
    pattern: /\bfs\.(?:F_OK|R_OK|W_OK|X_OK)\b/,
    use: 'fs.constants.F_OK …',
    example: 'fs.accessSync(p, fs.R_OK);',
  },
  {
    code: 'DEP0180',
    api: 'the fs.Stats constructor',
    pattern: /\bnew\s+(?:fs\.)?Stats\s*\(/,
    use: 'fs.stat()',
    example: 'new fs.Stats();',
  },
  {
    code: 'DEP0022',
    api: 'os.tmpDir()',
    pattern: /\bos\.tmpDir\s*\(/,
    use: 'os.tmpdir()',
    example: 'os.tmpDir();',
  },
  {
    code: 'DEP0106',
    api: 'crypto.createCipher / createDecipher',
    pattern: /\bcreate(?:Cipher|Decipher)\s*\(/,
    use: 'crypto.createCipheriv / createDecipheriv',
    example: "crypto.createCipher('aes-256-cbc', pw);",
  },
  {
    code: 'DEP0179, DEP0181',
    api: 'the Hash / Hmac constructors',
    pattern: /\bnew\s+(?:crypto\.)?(?:Hash|Hmac)\s*\(/,
    use: 'crypto.createHash / createHmac',
    example: "new crypto.Hash('sha256');",
  },
  {
    code: 'DEP0183',
    api: 'OpenSSL engine-based APIs',
    pattern: /\bsetEngine\s*\(|\b(?:clientCertEngine|privateKeyEngine)\b/,
    use: 'OpenSSL providers',
    example: "crypto.setEngine('x');",
  },
  {
    code: 'DEP0064',
    api: 'tls.createSecurePair()',
    pattern: /\bcreateSecurePair\b/,
    use: 'tls.TLSSocket',
    example: 'tls.createSecurePair();',
  },
  {
    code: 'DEP0116, DEP0169',
    api: 'the legacy URL API url.parse() / url.resolve()',
    pattern: /\burl\.(?:parse|resolve)\s*\(/,
    use: 'new URL()',
    example: 'url.parse(u);',
  },
  {
    code: 'DEP0116, DEP0169',
    api: 'url.parse / url.resolve imported by name',
    pattern: new RegExp(String.raw`import\s*\{[^}]*\b(?:parse|resolve)\b[^}]*\}\s*${FROM('url')}`),
    use: 'new URL()',
    example: "import { parse } from 'node:url';",
  },
  {
    code: 'DEP0066',
    api: 'OutgoingMessage._headers / _headerNames',
    pattern: /\._header(?:s|Names)\b/,
    use: 'getHeaders() / getHeaderNames()',
    example: 'res._headers;',
  },
  {
    code: 'DEP0063',
    api: 'ServerResponse.writeHeader()',
    pattern: /\.writeHeader\s*\(/,
    use: 'writeHead()',
    example: 'res.writeHeader(200);',
  },
  {
    code: 'DEP0133',
    api: 'http req/res .connection',
    pattern: /\b(?:req|request|res|response)\.connection\b/,
    use: '.socket',
    example: 'req.connection.remoteAddress;',
  },
  {
    code: 'DEP0095–DEP0097, DEP0126, DEP0127',
    api: 'timers.enroll / unenroll / active / _unrefActive',
    pattern: /\btimers\.(?:enroll|unenroll|active|_unrefActive)\s*\(/,
    use: 'setTimeout / clearTimeout / refresh()',
    example: 'timers.active(obj);',
  },
  {
    code: 'DEP0160',
    api: "process.on('multipleResolves')",
    pattern: /['"]multipleResolves['"]/,
    use: 'nothing (removed)',
    example: "process.on('multipleResolves', f);",
  },
  {
    code: 'DEP0173',
    api: 'assert.CallTracker',
    pattern: /\bCallTracker\b/,
    use: 'mock functions (node:test)',
    example: 'new assert.CallTracker();',
  },
  {
    code: 'DEP0177',
    api: 'util.types.isWebAssemblyCompiledModule',
    pattern: /\bisWebAssemblyCompiledModule\b/,
    use: 'instanceof WebAssembly.Module',
    example: 'util.types.isWebAssemblyCompiledModule(m);',
  },
  {
    code: 'DEP0193',
    api: 'the internal _stream_* modules',
    pattern: /['"](?:node:)?_stream_\w+['"]/,
    use: 'node:stream',
    example: "require('_stream_readable');",
  },
];

/** Each hit: file:line, the API, its code and the replacement. Comment lines are skipped. */
function findDeprecated(file: string, text: string): string[] {
  const hits: string[] = [];
  text.split('\n').forEach((line, i) => {
    const code = line.trimStart();
    if (code.startsWith('//') || code.startsWith('*') || code.startsWith('/*')) return;
    const beforeComment = line.replace(/\s\/\/\s.*$/, '');
    for (const rule of RULES)
      if (rule.pattern.test(beforeComment))
        hits.push(`${file}:${i + 1}: ${rule.api} (${rule.code}, deprecated by Node 22); use ${rule.use}`);
  });
  return hits;
}

function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && /\.(?:[cm]?[jt]s|tsx)$/.test(e.name))
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)));
}

describe('APIs deprecated in Node 22', () => {
  it('every pattern catches its example, naming file and line (the check is not dead)', () => {
    for (const rule of RULES) {
      const hits = findDeprecated('example.ts', `const ok = 1;\n${rule.example}`);
      expect(hits, rule.api).toContain(
        `example.ts:2: ${rule.api} (${rule.code}, deprecated by Node 22); use ${rule.use}`,
      );
    }
    // What is not deprecated stays quiet.
    const fine = [
      'Buffer.from(x); Buffer.alloc(4); const b: Buffer = x;',
      "crypto.createCipheriv('aes-256-gcm', k, iv); crypto.createHash('sha256');",
      'util.types.isDate(d); util.inspect(x); util.debuglog("x");',
      "fs.rmSync(d, { recursive: true }); fs.accessSync(p, fs.constants.R_OK); new URL('http://x');",
      'os.tmpdir(); process.umask(0o022); res.writeHead(200); req.socket.remoteAddress;',
      '// url.parse(x) in a comment',
    ];
    expect(findDeprecated('fine.ts', fine.join('\n'))).toEqual([]);
  });

  it('none is used in bin/, commands/ or src/', () => {
    const files = ['bin', 'commands', 'src'].flatMap(sources);
    expect(files.length).toBeGreaterThan(50);
    const hits = files.flatMap((f) => findDeprecated(f, readFileSync(path.join(ROOT, f), 'utf8')));
    expect(hits, hits.join('\n')).toEqual([]);
  });
});
