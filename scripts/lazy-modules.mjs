// An esbuild plugin for scripts/build.mjs: modules that a short command may never use are loaded
// by the bundle on first use, not when it starts. esbuild runs every imported module's top level
// at start-up: Node's built-ins that a start of Node has not loaded yet (child_process, crypto,
// net, os, …) were compiled on every run of every command, used or not, and so were packages
// such as proper-lockfile (which loads graceful-fs, which patches fs). On Node 24 that was the
// largest part of `bootstrap product.get`'s start-up beyond Node's own (bench/startup.mjs).
// Each such import gets a stand-in with a getter per export (the names the module has when the
// build loads it) that requires the real module on first access.
import { createRequire, isBuiltin } from 'node:module';

const require = createRequire(import.meta.url);

/** Built-ins loaded before a file runs (nothing to save), or subclassed as the bundle loads. */
const eager = new Set(['fs', 'path', 'util', 'buffer', 'events', 'url', 'stream']);
/**
 * Modules whose functions the bundle takes as it loads (yargs keeps assert's strictEqual, and
 * calls notStrictEqual on every run): each function (not a class) is a stand-in that forwards
 * its calls; the two strict checks load assert only to throw its error.
 */
const forwarded = new Set(['node:assert']);
const passes = '{ strictEqual: (a, b) => Object.is(a, b), notStrictEqual: (a, b) => !Object.is(a, b) }';

/** `packages`: npm packages (CommonJS, exporting an object) to load lazily as well. */
export function lazyModules(packages) {
  return {
    name: 'lazy-modules',
    setup(b) {
      b.onResolve({ filter: /^(node:)?[a-z_/]+$/ }, (args) => {
        const name = args.path.replace(/^node:/, '');
        if (!isBuiltin(name) || name.startsWith('_') || eager.has(name)) return undefined;
        if (args.namespace === 'lazy') return { path: `node:${name}`, external: true };
        return { path: `node:${name}`, namespace: 'lazy' };
      });
      b.onResolve({ filter: new RegExp(`^(${packages.join('|')})$`) }, async (args) => {
        if (args.pluginData?.real) return undefined;
        const real = await b.resolve(args.path, { resolveDir: args.resolveDir, kind: args.kind, pluginData: { real: true } });
        return { path: real.path, namespace: 'lazy', pluginData: { name: args.path } };
      });
      b.onLoad({ filter: /.*/, namespace: 'lazy' }, (args) => ({
        contents: standIn(args.path, args.pluginData?.name ?? args.path),
        loader: 'js',
        resolveDir: process.cwd(),
      }));
    },
  };
}

/**
 * The stand-in's source (CommonJS) for `path` (a built-in or a package's file), imported as
 * `name`. Its getters are on its prototype, not its own: esbuild's ESM interop (at every import
 * of it) copies a module's own properties one by one, but a copy has the module's prototype.
 * A module that is itself a function (assert) gets a function that forwards calls.
 */
function standIn(path, name) {
  const real = require(path);
  const keys = Object.keys(real).filter((k) => k !== 'default' && k !== '__esModule');
  const calls = forwarded.has(path) ? keys.filter((k) => typeof real[k] === 'function' && !/^[A-Z]/.test(k)) : [];
  return `// ${name}, loaded on first use (scripts/lazy-modules.mjs)
let real;
const load = () => (real ??= require(${JSON.stringify(path)}));
const proto = Object.create(${typeof real === 'function' ? 'Function' : 'Object'}.prototype);
const calls = ${JSON.stringify(calls)}, passes = ${calls.length ? passes : '{}'};
for (const k of ${JSON.stringify(keys)}) {
  Object.defineProperty(proto, k, calls.includes(k)
    ? { value: function (...a) { return passes[k]?.(...a) ? undefined : load()[k].apply(this, a); }, configurable: true, writable: true }
    : { get: () => load()[k], configurable: true });
}
module.exports = ${typeof real === 'function'
    ? 'Object.setPrototypeOf(function (...a) { return new.target ? Reflect.construct(load(), a, new.target) : load().apply(this, a); }, proto)'
    : 'Object.create(proto)'};
`;
}
