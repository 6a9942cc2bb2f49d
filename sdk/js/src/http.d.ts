/** A response, read whole. */
export declare class Response {
  /** The HTTP status code. */
  readonly status: number;
  /** Header names (lower-case) and values, in order. */
  readonly headers: [string, string][];
  /** The body. */
  readonly body: Uint8Array;
  /** The first value of a header, by its name (any case), or null. */
  header(name: string): string | null;
  /** The body as text (UTF-8). */
  text(): string;
  /** The body parsed as JSON; a SyntaxError when it is not. */
  json(): any;
}

/**
 * Send a request over wasi:http and wait for the whole response (channel connectors only).
 * Throws KithError: `invalid` for a bad URL, method or header, `access-denied` for a host not
 * granted, `failed` when the exchange fails.
 */
export declare function request(
  method: string,
  url: string,
  headers?: Record<string, string> | [string, string][],
  body?: string | Uint8Array | null,
): Response;
