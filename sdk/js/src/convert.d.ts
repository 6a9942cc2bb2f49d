/** `value` as a safe integer number (a number that is one, or a BigInt within ±(2^53 - 1)); `invalid` otherwise. */
export declare function integer(name: string, value: number | bigint, range?: { min?: number; max?: number }): number;
/** `value` or null as a safe integer (undefined and null are none). */
export declare function optionalInteger(name: string, value: number | bigint | null | undefined, range?: { min?: number; max?: number }): number | null;
/** A `u32`. */
export declare function u32(name: string, value: number | bigint): number;
/** `value`, which must be a string. */
export declare function string(name: string, value: unknown): string;
/** `value` or null, which must be a string when given. */
export declare function optionalString(name: string, value: unknown): string | null;
/** A finite number. */
export declare function float(name: string, value: number | bigint): number;
/** A value from the host as plain JavaScript: safe BigInts become numbers, undefined becomes null. */
export declare function fromHost<T = any>(value: unknown): T;
/** Bytes from a host `list<u8>`. */
export declare function bytes(value: Uint8Array | number[] | null | undefined): Uint8Array | null;
