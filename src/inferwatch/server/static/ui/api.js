// Calls to the JSON API with the tab's key (sessionStorage), and the key box on a 401.

const KEY = "inferwatch.apiKey";
export const base = new URL("..", document.baseURI).pathname.replace(/\/$/, "");

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status; this.code = code; this.details = details;
  }
}

export const getKey = () => sessionStorage.getItem(KEY);
export function setKey(key) {
  if (key) sessionStorage.setItem(KEY, key); else sessionStorage.removeItem(KEY);
}

let onUnauthorized = () => {};
export function whenUnauthorized(fn) { onUnauthorized = fn; }

/** ``path`` under the server root (``/v1/...``); the parsed JSON, or an ApiError. */
export async function api(path, { method = "GET", body = undefined, params = undefined } = {}) {
  const url = new URL(base + path, location.origin);
  for (const [k, v] of Object.entries(params || {})) if (v != null) url.searchParams.set(k, v);
  const headers = { accept: "application/json" };
  const key = getKey();
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  let resp;
  try {
    resp = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, "network", `the server did not answer (${e.message})`);
  }
  let data = null;
  const text = await resp.text();
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (resp.ok) return data;
  const err = (data && data.error) || {};
  const error = new ApiError(resp.status, err.code || `http_${resp.status}`,
    err.message || `${method} ${path} answered ${resp.status}`, err.details);
  if (resp.status === 401) onUnauthorized(error);
  throw error;
}

/** Like api() but null for a route this server lacks (404 not_found / 405), for optional data. */
export async function optional(path, opts) {
  try { return await api(path, opts); } catch (e) {
    if (e.status === 405 || (e.status === 404 && e.code !== "unknown_model")) return null;
    throw e;
  }
}
