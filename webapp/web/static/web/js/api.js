// The REST API, asked with the key stored in this browser (if any). Every answer's RateLimit headers
// are passed to `onQuota`, so the page can say how many requests are left; the free plan allows 10
// a minute, so the page asks once per user action and never polls.
const STORE = "gpubroker.apiKey";

export const apiKey = {
  get: () => localStorage.getItem(STORE) || "",
  set: (key) => localStorage.setItem(STORE, key),
  clear: () => localStorage.removeItem(STORE),
};

export class ApiError extends Error {
  constructor(status, detail, retryAfter) {
    super(detail);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

let onQuota = () => {};
export const reportQuota = (callback) => { onQuota = callback; };

/** GET `base + path` with `params` (arrays become repeated parameters); the JSON body, or ApiError. */
export async function get(base, path, params = {}) {
  const url = new URL(base + path, location.origin);
  for (const [name, value] of Object.entries(params)) {
    for (const one of [].concat(value)) if (one !== "" && one != null) url.searchParams.append(name, one);
  }
  const headers = { Accept: "application/json" };
  if (apiKey.get()) headers.Authorization = `Bearer ${apiKey.get()}`;
  let response;
  try {
    // Each action asks the server (counted, with fresh RateLimit headers): answers are `public`
    // and the browser's cache does not tell a keyed request from an anonymous one.
    response = await fetch(url, { headers, cache: "no-store" });
  } catch {
    throw new ApiError(0, "the server cannot be reached; try again shortly");
  }
  const limit = response.headers.get("RateLimit-Limit");
  if (limit) onQuota({ limit: Number(limit), remaining: Number(response.headers.get("RateLimit-Remaining")) });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const retryAfter = Number(response.headers.get("Retry-After")) || null;
    throw new ApiError(response.status, body.detail || `${response.status} ${response.statusText}`, retryAfter);
  }
  return body;
}
