// The console in a real browser: one Chromium for every screen's tests (tests/screens/*.mjs,
// each a module of node:test tests using ./harness.mjs), run in file order.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import './harness.mjs';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'screens');
for (const file of readdirSync(dir).filter((f) => f.endsWith('.mjs')).sort()) {
  await import(pathToFileURL(join(dir, file)).href);
}
