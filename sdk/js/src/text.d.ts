/** The UTF-8 bytes of a string (the QuickJS runtime has no TextEncoder). */
export declare function utf8Encode(text: string): Uint8Array;
/** The text of UTF-8 bytes; invalid sequences become U+FFFD, or throw a TypeError with `{ fatal: true }`. */
export declare function utf8Decode(bytes: Uint8Array | number[], options?: { fatal?: boolean }): string;
/** `value` with `digits` (default 2) decimals, a tie rounded to even as Rust's `{:.2}` and Python's `:.2f` do. */
export declare function fixed(value: number, digits?: number): string;
