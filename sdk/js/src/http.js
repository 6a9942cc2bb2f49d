// Outbound HTTP for channel connectors, over `wasi:http/outgoing-handler@0.2.12`.
//
//   import { request } from '@kith/plugin-sdk/http';
//   const response = request('POST', url, { 'content-type': 'application/json' }, JSON.stringify(body));
//
// Only the channel-connector world imports wasi:http, so only connectors may import this module
// (`kith plugin build` refuses it elsewhere). The kernel lets a request through only to a host
// the manifest declares and the shop granted; any other fails with `access-denied`.

import * as outgoingHandler from 'wasi:http/outgoing-handler@0.2.12';
import * as types from 'wasi:http/types@0.2.12';
import { accessDenied, failed, invalid, KithError } from './errors.js';
import { utf8Decode, utf8Encode } from './text.js';

const METHODS = { GET: 'get', HEAD: 'head', POST: 'post', PUT: 'put', DELETE: 'delete', CONNECT: 'connect', OPTIONS: 'options', TRACE: 'trace', PATCH: 'patch' };
const CHUNK = 4096;
const READ = 64 * 1024;

function drop(resource) {
  if (resource && typeof resource[Symbol.dispose] === 'function') resource[Symbol.dispose]();
}

function payloadOf(e) {
  return e !== null && typeof e === 'object' && 'payload' in e ? e.payload : e;
}

function describeCode(code) {
  if (code === null || typeof code !== 'object') return String(code);
  const val = code.val;
  if (val === undefined || val === null) return code.tag;
  if (typeof val !== 'object') return `${code.tag}(${val})`;
  try {
    return `${code.tag}(${JSON.stringify(val)})`;
  } catch {
    return code.tag;
  }
}

function httpError(code) {
  if (code && typeof code.tag === 'string' && code.tag.toLowerCase() === 'http-request-denied') {
    return accessDenied('the kernel denied the request: host not granted');
  }
  return failed(`HTTP request failed: ${describeCode(code)}`);
}

/** A response, read whole. */
export class Response {
  constructor(status, headers, body) {
    /** The HTTP status code. */
    this.status = status;
    /** Header names (lower-case) and values, in order. */
    this.headers = headers;
    /** The body. */
    this.body = body;
  }

  /** The first value of a header, by its name (any case), or null. */
  header(name) {
    const lower = String(name).toLowerCase();
    const found = this.headers.find(([n]) => n === lower);
    return found ? found[1] : null;
  }

  /** The body as text (UTF-8). */
  text() {
    return utf8Decode(this.body);
  }

  /** The body parsed as JSON; a SyntaxError when it is not. */
  json() {
    return JSON.parse(this.text());
  }
}

function headerList(headers) {
  const entries = headers === undefined || headers === null ? [] : Array.isArray(headers) ? headers : Object.entries(headers);
  return entries.map((entry) => {
    if (!Array.isArray(entry) || entry.length !== 2) throw invalid('headers: expected an object or a list of [name, value] pairs');
    return [String(entry[0]).toLowerCase(), utf8Encode(String(entry[1]))];
  });
}

function bodyBytes(body) {
  if (body === undefined || body === null) return new Uint8Array(0);
  if (typeof body === 'string') return utf8Encode(body);
  if (body instanceof Uint8Array) return body;
  if (Array.isArray(body)) return Uint8Array.from(body);
  throw invalid('body: expected a string or a Uint8Array (JSON.stringify an object first)');
}

/**
 * Send a request and wait for the whole response: `method` (`GET`, `POST`, ... or another
 * token), an absolute `http://` or `https://` URL, headers as an object or a list of pairs, and
 * a body (a string, sent as UTF-8, or bytes). Throws `KithError`: `invalid` for a bad URL,
 * method or header, `access-denied` for a host not granted, `failed` when the exchange fails.
 */
export function request(method, url, headers = {}, body = null) {
  const target = String(url);
  const split = target.indexOf('://');
  if (split < 0) throw invalid(`\`${target}\` is not an absolute URL`);
  const scheme = target.slice(0, split).toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') throw invalid(`unsupported scheme \`${scheme}\``);
  const rest = target.slice(split + 3);
  const slash = rest.search(/[/?]/);
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  let pathWithQuery = slash < 0 ? '/' : rest.slice(slash);
  if (pathWithQuery.startsWith('?')) pathWithQuery = `/${pathWithQuery}`;
  const hash = pathWithQuery.indexOf('#');
  if (hash >= 0) pathWithQuery = pathWithQuery.slice(0, hash);
  const name = String(method).toUpperCase();
  const witMethod = METHODS[name] ? { tag: METHODS[name] } : { tag: 'other', val: String(method) };
  const payload = bodyBytes(body);

  let fields;
  try {
    fields = types.Fields.fromList(headerList(headers));
  } catch (e) {
    if (e instanceof KithError) throw e;
    throw invalid(`headers: ${describeCode(payloadOf(e))}`);
  }
  const outgoing = new types.OutgoingRequest(fields);
  const set = (what, f) => {
    try {
      f();
    } catch {
      throw invalid(`invalid ${what}`);
    }
  };
  set('method', () => outgoing.setMethod(witMethod));
  set('scheme', () => outgoing.setScheme({ tag: scheme === 'http' ? 'HTTP' : 'HTTPS' }));
  set('authority', () => outgoing.setAuthority(authority));
  set('path', () => outgoing.setPathWithQuery(pathWithQuery));
  const outgoingBody = outgoing.body();

  let future;
  try {
    future = outgoingHandler.handle(outgoing, null);
  } catch (e) {
    throw httpError(payloadOf(e));
  }
  // When the request fails (a denied host, a refused connection) the body stream closes; the
  // response future then holds the reason, so a write error is reported only after it.
  let written = null;
  try {
    const stream = outgoingBody.write();
    try {
      for (let at = 0; at < payload.length; at += CHUNK) stream.blockingWriteAndFlush(payload.subarray(at, at + CHUNK));
    } finally {
      drop(stream);
    }
    types.OutgoingBody.finish(outgoingBody, null);
  } catch (e) {
    written = failed(`writing the request body: ${describeCode(payloadOf(e))}`);
  }

  const pollable = future.subscribe();
  pollable.block();
  drop(pollable);
  const outcome = future.get();
  drop(future);
  if (outcome === null || outcome === undefined) throw failed('no response');
  if (outcome.tag !== 'ok') throw failed('response already taken');
  if (outcome.val.tag !== 'ok') throw httpError(outcome.val.val);
  if (written) throw written;
  const response = outcome.val.val;

  const status = response.status();
  const headerFields = response.headers();
  const responseHeaders = headerFields.entries().map(([n, v]) => [String(n).toLowerCase(), utf8Decode(v)]);
  drop(headerFields);
  const incoming = response.consume();
  const chunks = [];
  let size = 0;
  const stream = incoming.stream();
  try {
    for (;;) {
      let chunk;
      try {
        chunk = stream.blockingRead(READ);
      } catch (e) {
        const error = payloadOf(e);
        if (error && error.tag === 'closed') break;
        throw failed(`reading the response: ${describeCode(error)}`);
      }
      chunks.push(chunk);
      size += chunk.length;
    }
  } finally {
    drop(stream);
    drop(incoming);
    drop(response);
  }
  const data = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    data.set(chunk, offset);
    offset += chunk.length;
  }
  return new Response(status, responseHeaders, data);
}
