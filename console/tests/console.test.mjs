// The console in a real browser: one Chromium for every screen's tests (tests/screens/*.mjs,
// each a module of node:test tests using ./harness.mjs), run in file order. KITH_SCREENS
// (comma-separated parts of file names) runs only those, e.g. KITH_SCREENS=customers.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import './harness.mjs';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'screens');
const only = (process.env.KITH_SCREENS || '').split(',').filter(Boolean);
for (const file of readdirSync(dir).filter((f) => f.endsWith('.mjs')).sort()) {
  if (only.length && !only.some((part) => file.includes(part))) continue;
  await import(pathToFileURL(join(dir, file)).href);
}
