export function handle() {
  throw new Error('no network in the unit tests');
}
