// Node module hooks for the tests: the world's imports (`kith:plugin/<name>@0.2.0`,
// `wasi:http/<name>@0.2.12`) resolve to the fakes in ./fake/, whose answers the tests set
// through ./host.js. Registered by ./setup.js.

const FAKES = new Set(['log', 'config', 'kv', 'clock', 'customers', 'shop', 'summaries', 'types', 'outgoing-handler']);

export async function resolve(specifier, context, next) {
  const match = /^(?:kith:plugin|wasi:http)\/([a-z-]+)@[0-9.]+$/.exec(specifier);
  if (match && FAKES.has(match[1])) {
    const file = specifier.startsWith('wasi:') ? `http-${match[1]}` : match[1];
    return { url: new URL(`./fake/${file}.js`, import.meta.url).href, shortCircuit: true };
  }
  return next(specifier, context);
}
