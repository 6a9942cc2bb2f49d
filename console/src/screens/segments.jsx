// Placeholder: replaced by the screen's own module.
export default function Screen() {
  return <h1>segments</h1>;
}
