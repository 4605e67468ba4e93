/**
 * Requests from other origins are refused (SPEC §8 Access, SEC-03). The session cookie is SameSite=Strict, but a
 * "site" ignores ports and sibling subdomains, so a page on another port of the same host could still
 * make the browser send it. Every state-changing request and every live connection that authenticates
 * with the cookie must therefore come from the console's own origin:
 *
 * - the console's origin is PUBLIC_ORIGIN when set (behind a reverse proxy that rewrites Host), else the
 *   scheme-less host of the request's own Host header (the origin the browser addressed);
 * - `Sec-Fetch-Site`, when the browser sends it, must be `same-origin` (or `none`: typed by the user);
 * - `Origin` must be present and equal that origin (browsers send it on every POST, PATCH, DELETE and
 *   WebSocket request, same-origin included), unless `Sec-Fetch-Site: same-origin` vouches for the request
 *   (a page cannot set Sec-Fetch-* itself; a same-origin GET, such as socket.io's polling handshake, has
 *   no Origin).
 *
 * A request that carries a bearer token is not affected: another origin cannot set that header without a
 * CORS preflight, which this service never grants, so an API client is not a forged request. Pure: headers
 * in, a reason out (null: allowed).
 */

export interface OriginPolicy {
  /** Exact origins (scheme://host[:port]) the console is served at; empty: the request's Host header. */
  publicOrigins: readonly string[];
}

type Headers = Record<string, string | string[] | undefined>;

const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

export function crossOriginRefusal(headers: Headers, policy: OriginPolicy): string | null {
  const site = one(headers['sec-fetch-site']);
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `Sec-Fetch-Site ${site}`;
  const origin = one(headers.origin);
  if (!origin) return site === 'same-origin' ? null : 'no Origin header';
  if (origin === 'null') return 'Origin null';
  if (policy.publicOrigins.length > 0)
    return policy.publicOrigins.includes(origin.toLowerCase()) ? null : `Origin ${origin}`;
  const host = one(headers.host)?.toLowerCase();
  let originHost: string;
  try {
    originHost = new URL(origin).host.toLowerCase();
  } catch {
    return `Origin ${origin}`;
  }
  return host && originHost === withoutDefaultPort(host, origin) ? null : `Origin ${origin}`;
}

/** `new URL().host` drops a default port (80, 443); a Host header may carry it. */
function withoutDefaultPort(host: string, origin: string): string {
  if (origin.startsWith('http://') && host.endsWith(':80')) return host.slice(0, -3);
  if (origin.startsWith('https://') && host.endsWith(':443')) return host.slice(0, -4);
  return host;
}

/** Methods that change nothing (RFC 9110 §9.2.1): the cookie alone is enough for them. */
export const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
