#!/usr/bin/env node
// Builds a Kith plugin written in JavaScript into a WebAssembly component.
//
//   cd <plugin project> && node <toolchain>/build.mjs --kind <kind>
//
// <toolchain> is a copy of sdk/js/toolchain after `npm ci --ignore-scripts --no-audit --no-fund`;
// <kind> is the plugin's kind, which is also the name of its world in wit/v0.2 (tag-rule,
// scoring-model, loyalty-scheme, channel-connector). Relative to the project it reads
// src/index.js, .kith/sdk/js/ (the SDK, imported as `@kith/plugin-sdk`) and .kith/wit/v0.2/,
// and writes target/kith/bundle.js (the bundled source) and target/kith/plugin.wasm. The same
// input gives components that behave the same but are not byte-identical: Wizer runs the runtime
// with real randomness, and its hash-map seeds end up in the snapshot (about 100 bytes differ).
//
// 1. esbuild bundles src/index.js into one ES module: `@kith/plugin-sdk` and
//    `@kith/plugin-sdk/<module>` resolve to .kith/sdk/js/index.js and .kith/sdk/js/<module>.js;
//    `kith:*` and `wasi:*` imports stay imports (they are the world's).
// 2. componentize-qjs embeds it in the QuickJS runtime (non-async ABI, `--sync`), snapshots it
//    with Wizer, and stubs the runtime's own WASI imports with traps (`--stub-wasi`), so the
//    component imports only what its world does.
// 3. channel-connector only: componentize-qjs 0.4.5 cannot snapshot a world that imports
//    `wasi:http` (its Wizer linker defines the world's unknown imports as traps before the real
//    WASI ones, and the trap `wasi:http/types` then refers to other `wasi:io` resource types than
//    the real `wasi:io/streams`: "mismatched resource types"). So the world's WASI packages are
//    renamed `wasx:` (same length) in a copy of the WIT and in the bundle's imports, the
//    component is built, and the names of its own imports are renamed back to `wasi:` (inside,
//    the nested components and core modules keep `wasx:`, which only needs to agree with itself).
//
// Options: --kind K (required), --project DIR (default: the working directory), --entry PATH
// (default: the first of src/index.js, src/index.ts, src/index.mjs; esbuild strips TypeScript),
// --sdk DIR (default .kith/sdk/js), --wit DIR (default .kith/wit/v0.2), --out DIR (default
// target/kith). Relative paths are relative to the project.

import { build } from 'esbuild';
import { componentize } from 'componentize-qjs';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const KINDS = ['tag-rule', 'scoring-model', 'loyalty-scheme', 'channel-connector'];
const RENAMED = 'wasx:';
const ENTRIES = ['src/index.js', 'src/index.ts', 'src/index.mjs'];

function fail(message) {
  process.stderr.write(`kith js build: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const options = { project: '.', entry: null, sdk: '.kith/sdk/js', wit: '.kith/wit/v0.2', out: 'target/kith' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const [name, inline] = eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
    const key = { '--kind': 'kind', '--project': 'project', '--entry': 'entry', '--sdk': 'sdk', '--wit': 'wit', '--out': 'out' }[name];
    if (!key) fail(`unknown argument \`${arg}\``);
    const value = inline ?? argv[++i];
    if (value === undefined) fail(`${name} needs a value`);
    options[key] = value;
  }
  if (!options.kind) fail('--kind is required (tag-rule, scoring-model, loyalty-scheme or channel-connector)');
  if (!KINDS.includes(options.kind)) fail(`unknown kind \`${options.kind}\`: expected one of ${KINDS.join(', ')}`);
  const project = path.resolve(options.project);
  options.entry ??= ENTRIES.find((entry) => existsSync(path.join(project, entry))) ?? ENTRIES[0];
  for (const key of ['entry', 'sdk', 'wit', 'out']) options[key] = path.resolve(project, options[key]);
  return options;
}

// Resolves `@kith/plugin-sdk[/module]` into the SDK folder and keeps the world's imports external.
function kithImports({ kind, sdk }) {
  const connector = kind === 'channel-connector';
  return {
    name: 'kith-imports',
    setup(b) {
      b.onResolve({ filter: /^@kith\/plugin-sdk(\/.*)?$/ }, (args) => {
        const sub = args.path.slice('@kith/plugin-sdk'.length).replace(/^\//, '').replace(/\.js$/, '');
        if (sub === 'http' && !connector) {
          return { errors: [{ text: `@kith/plugin-sdk/http is for channel connectors: a ${kind} has no wasi:http` }] };
        }
        const file = path.join(sdk, `${sub || 'index'}.js`);
        if (!existsSync(file)) return { errors: [{ text: `${args.path}: no ${file} (does .kith/sdk/js hold the SDK?)` }] };
        return { path: file };
      });
      b.onResolve({ filter: /^kith:/ }, (args) => ({ path: args.path, external: true }));
      b.onResolve({ filter: /^wasi:/ }, (args) => {
        if (!connector) return { errors: [{ text: `${args.path}: a ${kind} imports no WASI interface` }] };
        return { path: RENAMED + args.path.slice('wasi:'.length), external: true };
      });
    },
  };
}

// A copy of the WIT folder with every `wasi:` package named `wasx:`.
function renamedWit(from, to) {
  rmSync(to, { recursive: true, force: true });
  const copy = (src, dst) => {
    mkdirSync(dst, { recursive: true });
    for (const name of readdirSync(src).sort()) {
      const s = path.join(src, name);
      const d = path.join(dst, name);
      if (statSync(s).isDirectory()) copy(s, d);
      else if (name.endsWith('.wit')) writeFileSync(d, readFileSync(s, 'utf8').replaceAll('wasi:', RENAMED));
    }
  };
  copy(from, to);
}

function readLeb(bytes, at) {
  let value = 0;
  let shift = 0;
  let length = 0;
  for (;;) {
    const byte = bytes[at + length++];
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [value, length];
    shift += 7;
  }
}

// Renames `from` to `to` (same length) in the names of a component's own imports: its top-level
// import sections. Nothing else names them: the component refers to its imports by index, and
// the nested components it instantiates (the QuickJS runtime, the WASI stubs) keep their own
// names, which only need to agree with themselves. Returns how many names were renamed.
function renameImports(bytes, from, to) {
  const needle = Buffer.from(from);
  const replacement = Buffer.from(to);
  if (bytes.readUInt32LE(0) !== 0x6d736100 || bytes[6] !== 1) throw new Error('not a component');
  let count = 0;
  for (let at = 8; at < bytes.length; ) {
    const id = bytes[at];
    const [size, length] = readLeb(bytes, at + 1);
    const body = at + 1 + length;
    if (id === 10) {
      for (let i = bytes.indexOf(needle, body); i >= 0 && i < body + size; i = bytes.indexOf(needle, i + needle.length)) {
        replacement.copy(bytes, i);
        count++;
      }
    }
    at = body + size;
  }
  return count;
}

async function main() {
  const started = Date.now();
  const options = parseArgs(process.argv.slice(2));
  const { kind, entry, sdk, wit, out } = options;
  if (!existsSync(entry)) fail(`no ${entry}`);
  if (!existsSync(path.join(sdk, 'index.js'))) fail(`no ${path.join(sdk, 'index.js')}: the SDK is written there by \`kith plugin build\``);
  if (!existsSync(path.join(wit, 'worlds.wit'))) fail(`no ${path.join(wit, 'worlds.wit')}: the WIT is written there by \`kith plugin build\``);
  mkdirSync(out, { recursive: true });

  const bundle = path.join(out, 'bundle.js');
  try {
    await build({
      entryPoints: [entry],
      outfile: bundle,
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      target: 'es2023',
      mainFields: ['module', 'main'],
      charset: 'utf8',
      legalComments: 'none',
      logLevel: 'error',
      plugins: [kithImports(options)],
    });
  } catch {
    fail('bundling failed (see above)');
  }

  const connector = kind === 'channel-connector';
  const witPath = connector ? path.join(out, 'wit-renamed') : wit;
  if (connector) renamedWit(wit, witPath);
  let component;
  try {
    ({ component } = await componentize({
      witPath,
      jsSource: readFileSync(bundle, 'utf8'),
      world: kind,
      stubWasi: true,
      sync: true,
    }));
  } catch (e) {
    fail(`componentize-qjs: ${e && e.message ? e.message : e}`);
  }
  if (connector) {
    rmSync(witPath, { recursive: true, force: true });
    if (renameImports(component, RENAMED, 'wasi:') === 0) fail('no wasi:http import to rename: the component is not a channel connector');
  }

  const wasm = path.join(out, 'plugin.wasm');
  writeFileSync(`${wasm}.tmp`, component);
  renameSync(`${wasm}.tmp`, wasm);
  const mib = (component.length / 1048576).toFixed(1);
  process.stdout.write(`built ${path.relative(process.cwd(), wasm) || wasm} (${kind}, ${mib} MiB) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

await main();
