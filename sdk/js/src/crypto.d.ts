// `@kith/plugin-sdk/crypto`: SHA-256, HMAC-SHA256 and base64 in plain JavaScript (QuickJS has no crypto).
// Data is bytes (a Uint8Array, or an array of numbers) or a string, taken as UTF-8.

/** The SHA-256 digest (32 bytes) of bytes or a string (UTF-8). */
export declare function sha256(data: Uint8Array | number[] | string): Uint8Array;
/** The HMAC-SHA256 (32 bytes) of `data` under `key`, each bytes or a string (UTF-8). */
export declare function hmacSha256(key: Uint8Array | number[] | string, data: Uint8Array | number[] | string): Uint8Array;
/** Bytes, or a string as UTF-8, in base64 with `=` padding (RFC 4648 §4). */
export declare function base64Encode(data: Uint8Array | number[] | string): string;
/** Bytes, or a string as UTF-8, in lower-case hexadecimal. */
export declare function hexEncode(data: Uint8Array | number[] | string): string;
