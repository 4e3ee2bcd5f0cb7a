// Build: type-check and compile (dist/src, dist/test), bundle the CLI into dist/bootstrap.cjs,
// and make V8's two code caches for it (scripts/code-cache.mjs). winston is bundled but initialised only when something is
// logged (src/log/winston.ts). Callbacks use node:http(s), loaded only to send them.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
rmSync(join(root, 'dist'), { recursive: true, force: true });
execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', root], { stdio: 'inherit' });

await build({
  entryPoints: [join(root, 'src/cli/main.ts')],
  outfile: join(root, 'dist/bootstrap.cjs'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: true,
  legalComments: 'linked',
  external: [],
  // The bundle is CommonJS: give it import.meta.url for the code that reads package.json.
  banner: { js: 'var __importMetaUrl=require("node:url").pathToFileURL(__filename).href;' },
  define: { 'import.meta.url': '__importMetaUrl' },
  logLevel: 'warning',
  plugins: [lazyStringWidth(), shimmedImports(), bundledWinston()],
});

/**
 * string-width (which yargs uses only to lay out help) builds an Intl.Segmenter and Unicode
 * property regexes when it is imported: ICU data, ~25 ms on every run. Imports of it get a
 * shim that loads the real module on first call, so only help output pays. Checked by
 * bench/startup.
 */
function lazyStringWidth() {
  return {
    name: 'lazy-string-width',
    setup(b) {
      b.onResolve({ filter: /^string-width$/ }, async (args) => {
        if (args.pluginData?.real) return undefined;
        const real = await b.resolve('string-width', { resolveDir: args.resolveDir, kind: args.kind, pluginData: { real: true } });
        return { path: real.path, namespace: 'lazy-string-width' };
      });
      b.onLoad({ filter: /.*/, namespace: 'lazy-string-width' }, (args) => ({
        contents: `let real; export default function stringWidth(s, o) { real ??= require(${JSON.stringify(args.path)}); return real.default(s, o); }`,
        loader: 'js',
        resolveDir: dirname(args.path),
      }));
    },
  };
}

/**
 * Five imports made cheap at every start, for the eyes of the packages that make them only:
 * - node:assert (~8 ms of a start on Node 24), for checks of yargs' own invariants: the same two
 *   functions, the same test (Object.is), the real module loaded only to throw its error;
 * - node:assert again for signal-exit (proper-lockfile's, loaded by every run), whose one check
 *   is `equal` (==): ~1 ms of every run;
 * - escalade, with which yargs looks for "its" package.json to guess a version we set anyway: it
 *   read the directories from the cwd up to / at every start (and the first package.json found,
 *   anyone's), then failed one of those checks. It gets the agent's own package.json, beside dist/;
 * - graceful-fs, proper-lockfile's fs: its calls for a lock (mkdir, stat, utimes, rmdir) open no
 *   file, so graceful-fs's queue for EMFILE never applies, but initialising it patched node:fs
 *   (close, the streams) and loaded more of it, ~1.5 ms of every run. It gets node:fs itself;
 * - @dabh/diagnostics, winston's own debug output: its development build (the one picked without
 *   NODE_ENV=production) built colour conversion tables at every start that logs (~1 ms) and
 *   printed winston's internals to standard error when DEBUG=* was set for some other tool
 *   (`winston:create-logger: Define prototype method for "error"` …). It gets a logger that
 *   prints nothing, as its production build gives unless forced.
 */
function shimmedImports() {
  const modules = {
    assert: [
      "export function notStrictEqual(a, b, m) { if (Object.is(a, b)) require('node:assert').notStrictEqual(a, b, m); }",
      "export function strictEqual(a, b, m) { if (!Object.is(a, b)) require('node:assert').strictEqual(a, b, m); }",
      "export function equal(a, b, m) { if (a != b) require('node:assert').equal(a, b, m); }",
    ],
    'escalade/sync': ["export default function ownPackageJson() { return require('node:path').join(__dirname, '..', 'package.json'); }"],
    'graceful-fs': ["module.exports = require('node:fs');"],
    '@dabh/diagnostics': ['module.exports = function diagnostics() { return function nope() {}; };'],
  };
  return {
    name: 'shimmed-imports',
    setup(b) {
      b.onResolve({ filter: /^(assert|escalade\/sync|graceful-fs|@dabh\/diagnostics)$/ }, (args) =>
        /[\\/]yargs[\\/]lib[\\/]platform-shims[\\/]/.test(args.importer) ||
        (args.path === 'assert' && /[\\/]signal-exit[\\/]index\.js$/.test(args.importer)) ||
        (args.path === 'graceful-fs' && /[\\/]proper-lockfile[\\/]lib[\\/]/.test(args.importer)) ||
        (args.path === '@dabh/diagnostics' && /[\\/]winston[\\/]lib[\\/]/.test(args.importer))
          ? { path: args.path, namespace: 'shimmed-imports' }
          : undefined,
      );
      b.onLoad({ filter: /.*/, namespace: 'shimmed-imports' }, (args) => ({ contents: modules[args.path].join('\n'), loader: 'js' }));
    },
  };
}

/** src/log/winston.ts as a require() that esbuild follows: bundled, initialised on first call. */
function bundledWinston() {
  return {
    name: 'bundled-winston',
    setup(b) {
      b.onLoad({ filter: /[\\/]src[\\/]log[\\/]winston\.ts$/ }, () => ({
        contents: 'export function loadWinston() { return require("winston"); }',
        loader: 'js',
        resolveDir: join(root, 'src/log'),
      }));
    },
  };
}

// The bundle's two code caches (scripts/code-cache.mjs).
execFileSync(process.execPath, [join(root, 'scripts/code-cache.mjs')], { stdio: 'inherit' });
