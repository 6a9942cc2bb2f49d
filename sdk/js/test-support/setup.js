// Import first in a test: it routes the world's imports to the fakes, then the test imports the
// SDK dynamically (`await import('../src/index.js')`).

import { register } from 'node:module';

register('./loader.js', import.meta.url);

export { host } from './host.js';
