// The state the fake host functions answer from, reset before each test.
//
// A failing host function throws as the QuickJS runtime reports an import's `err`: an Error
// whose `payload` is the WIT error, e.g. `{ tag: 'access-denied', val: '...' }`.

export const host = {
  reset() {
    this.logs = [];
    this.config = '{}';
    this.kv = new Map();
    this.now = 1767225600000;
    this.customers = new Map();
    this.histories = [];
    this.shop = null;
    this.buyers = [];
    this.calls = [];
    this.denied = new Set();
  },
  /** Throw `err` from a host function, as the runtime does. */
  fail(tag, val) {
    const error = new Error(`[object Object] (see error.payload)`);
    error.payload = { tag, val };
    throw error;
  },
  /** Record a call; fail it when its capability was denied. */
  enter(name, ...args) {
    this.calls.push([name, ...args]);
    if (this.denied.has(name)) this.fail('access-denied', `${name} is not granted`);
  },
};

host.reset();
