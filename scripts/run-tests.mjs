// Runs every compiled test file explicitly (node --test given a folder of .ts files, or a glob
// that matches nothing, runs 0 tests and passes) and fails when no test ran.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const testDir = join(root, 'dist/test');
const only = process.argv.slice(2);

function findTests(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'helpers' || name === 'fixtures' ? [] : findTests(path);
    return name.endsWith('.test.js') ? [path] : [];
  });
}

const files = findTests(testDir)
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();
if (files.length === 0) {
  console.error('run-tests: no test files found under dist/test');
  process.exit(1);
}
console.log(`run-tests: ${files.length} files: ${files.map((f) => relative(testDir, f)).join(' ')}`);
const child = spawn(process.execPath, ['--test', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', '--test-reporter-destination=dist/test-results.tap', ...files], {
  stdio: ['ignore', 'inherit', 'inherit'],
  cwd: root,
});
child.on('close', async (code) => {
  const { readFileSync } = await import('node:fs');
  const tap = readFileSync(join(root, 'dist/test-results.tap'), 'utf8');
  const count = (name) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(tap)?.[1] ?? 0);
  const [tests, pass, fail] = [count('tests'), count('pass'), count('fail')];
  console.log(`${pass} passed, ${fail} failed`);
  if (tests === 0) {
    console.error('run-tests: no test ran');
    process.exit(1);
  }
  process.exit(code ?? 1);
});
