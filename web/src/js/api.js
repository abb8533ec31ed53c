// Talking to the aapi server.  Every failure becomes an ApiError carrying
// the server's own reason ({"error": ...}) when it gave one.

const TOKEN_KEY = "aapi.token";

export class ApiError extends Error {
  constructor(status, reason) {
    super(status ? `${reason} (HTTP ${status})` : reason);
    this.status = status;
    this.reason = reason;
  }
}

export function getToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

export function setToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // Private windows may refuse storage; the token then lasts the page.
  }
}

// The server's reason for a failed response, or the status text.
async function failureReason(response) {
  const text = await response.text().catch(() => "");
  try {
    const doc = JSON.parse(text);
    if (doc && typeof doc.error === "string") return doc.error;
  } catch {
    // Not JSON: fall through to the raw text.
  }
  return text.trim().slice(0, 300) || response.statusText || "request failed";
}

// The header that carries the token; empty when none is set.  It goes
// with reads too, for servers that close reads behind tokens.
export function authHeaders() {
  const token = getToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// fetch with the bearer token and errors turned into ApiError.
export async function request(method, path, options = {}) {
  const headers = Object.assign(authHeaders(), options.headers || {});
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: options.body,
      signal: options.signal,
      cache: "no-store",
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, `cannot reach the server: ${e.message}`);
  }
  if (!response.ok) {
    throw new ApiError(response.status, await failureReason(response));
  }
  return response;
}

export async function getJSON(path, options) {
  const r = await request("GET", path, options);
  return r.json();
}

export function query(params) {
  return Object.entries(params)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join("&");
}

// The routes the viewer uses, in one place.
export const api = {
  slides: () => getJSON("/api/v1/slides"),
  slide: (id) => getJSON(`/api/v1/slides/${id}`),
  latest: (id) =>
    getJSON(`/api/v1/slides/${id}/versions/latest?format=geojson`),
  versions: (id) => getJSON(`/api/v1/slides/${id}/versions`),
  revert: async (id, seq) =>
    (await request("POST", `/api/v1/slides/${id}/versions/${seq}/revert`))
      .json(),
  predict: (id, r, signal) => getJSON(
    `/api/v1/slides/${id}/predict?${query(r)}`, { signal }),
  save: (id, r, body, contentType) => request("POST",
    `/annotation/${id}?${query(r)}`,
    { body, headers: { "Content-Type": contentType } }),
  models: () => getJSON("/api/v1/models"),
  jobs: () => getJSON("/api/v1/jobs"),
  train: async (options) => (await request("POST", "/api/v1/train", {
    body: JSON.stringify(options),
    headers: { "Content-Type": "application/json" },
  })).json(),
  dzi: (id) => `/api/v1/slides/${id}.dzi`,
  thumbnail: (id, max) => `/api/v1/slides/${id}/thumbnail?max=${max}`,
};
