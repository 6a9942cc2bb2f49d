// The console's only way to the kernel: the public HTTP API, on the same origin.
//
// Signed in, the browser sends the session cookie (HttpOnly: this code never sees it) and every
// write carries the session's CSRF token in `X-Kith-CSRF`. Errors are the API's problem+json,
// thrown as ApiError with the field at fault, so forms can show the message beside the field.

let csrfToken = null;
const signedOutListeners = new Set();

export function setCsrf(token) {
  csrfToken = token || null;
}

/** Call `fn` whenever a request answers 401 (the session ended or was revoked). */
export function onSignedOut(fn) {
  signedOutListeners.add(fn);
  return () => signedOutListeners.delete(fn);
}

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || null;
    /** The field at fault, e.g. `definition.and[1].op`, when the API names one. */
    this.field = (problem && problem.field) || null;
    this.type = (problem && problem.type) || null;
    /** Seconds the kernel asks to wait (Retry-After), on 429 and 503. */
    this.retryAfter = null;
  }

  /** The problem type's last part, e.g. `locked` for `urn:kith:problem:locked`. */
  get kind() {
    return this.type ? this.type.split(':').pop() : null;
  }
}

function withQuery(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((item) => params.append(k, item));
    else params.append(k, String(v));
  }
  const s = params.toString();
  return s ? `${path}${path.includes('?') ? '&' : '?'}${s}` : path;
}

/**
 * One request. `body` is sent as JSON unless it is a string, Blob or FormData (sent as is, with
 * `contentType`). Answers the parsed JSON, the text (`as: 'text'`), the Blob (`as: 'blob'`), or
 * null for 204.
 */
export async function request(method, path, { body, query, as, contentType, signal, headers } = {}) {
  const h = { accept: 'application/json, application/problem+json, */*', ...(headers || {}) };
  let payload;
  if (body !== undefined) {
    if (typeof body === 'string' || body instanceof Blob || body instanceof FormData) {
      payload = body;
      if (contentType) h['content-type'] = contentType;
    } else {
      payload = JSON.stringify(body);
      h['content-type'] = 'application/json';
    }
  }
  const write = method !== 'GET' && method !== 'HEAD';
  if (write && csrfToken) h['x-kith-csrf'] = csrfToken;
  let res = await fetch(withQuery(path, query), { method, headers: h, body: payload, credentials: 'same-origin', signal });
  // A stale CSRF token (the user signed in again in another tab, which made a new session): take
  // the session's current token and try once more. Only a body that can be sent again is retried.
  if (res.status === 403 && write && csrfToken && !(payload instanceof FormData) && (await isCsrfProblem(res))) {
    const fresh = await refreshCsrf();
    if (fresh) {
      h['x-kith-csrf'] = fresh;
      res = await fetch(withQuery(path, query), { method, headers: h, body: payload, credentials: 'same-origin', signal });
    }
  }
  if (!res.ok) {
    let problem = null;
    try {
      problem = await res.json();
    } catch {
      problem = null;
    }
    const err = new ApiError(res.status, problem);
    const retry = Number(res.headers.get('retry-after'));
    if (Number.isFinite(retry) && retry > 0) err.retryAfter = retry;
    if (res.status === 401 && !path.startsWith('/v1/console/sign-in')) signedOutListeners.forEach((fn) => fn(err));
    throw err;
  }
  if (res.status === 204) return null;
  if (as === 'text') return res.text();
  if (as === 'blob') return res.blob();
  const type = res.headers.get('content-type') || '';
  if (type.includes('json')) return res.json();
  return res.text();
}

async function isCsrfProblem(res) {
  try {
    const problem = await res.clone().json();
    return problem && problem.type === 'urn:kith:problem:csrf';
  } catch {
    return false;
  }
}

/** The session's CSRF token as the kernel has it now (null when there is no session). */
async function refreshCsrf() {
  const res = await fetch('/v1/console/session', { credentials: 'same-origin', headers: { accept: 'application/json' } });
  if (!res.ok) return null;
  const me = await res.json();
  csrfToken = me.csrf_token || null;
  return csrfToken;
}

export const get = (path, query, opts) => request('GET', path, { query, ...(opts || {}) });
export const post = (path, body, opts) => request('POST', path, { body, ...(opts || {}) });
export const put = (path, body, opts) => request('PUT', path, { body, ...(opts || {}) });
export const del = (path, opts) => request('DELETE', path, opts || {});
