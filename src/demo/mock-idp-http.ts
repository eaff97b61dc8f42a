import type { IncomingMessage, ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { oauthError, type MockClient, type OAuthReply } from './mock-idp-state.js';

/** HTTP plumbing of the mock identity provider: bodies, client authentication, replies. */

const MAX_FORM_BYTES = 64 * 1024;

/** Reads an application/x-www-form-urlencoded body (RFC 6749 section 3.2). */
export async function readForm(req: IncomingMessage): Promise<URLSearchParams | OAuthReply> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) return oauthError(413, 'invalid_request', 'request body too large');
    chunks.push(chunk);
  }
  if (req.method === 'GET') return new URLSearchParams();
  if (type !== 'application/x-www-form-urlencoded') {
    return oauthError(400, 'invalid_request', 'expected application/x-www-form-urlencoded');
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** RFC 6749 section 2.3.1: Basic uses form-urlencoded id and secret inside base64. */
function parseBasic(header: string): { id: string; secret: string } | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  const unescape = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
  try {
    return { id: unescape(decoded.slice(0, colon)), secret: unescape(decoded.slice(colon + 1)) };
  } catch {
    return undefined;
  }
}

function invalidClient(viaBasic: boolean): OAuthReply {
  const reply = oauthError(401, 'invalid_client', 'client authentication failed');
  // RFC 6749 section 5.2: a 401 after Basic authentication carries the challenge.
  if (viaBasic) reply.headers = { 'www-authenticate': 'Basic realm="mock-idp"' };
  return reply;
}

/**
 * client_secret_basic, client_secret_post, or a public client (client_id only). Using two
 * methods at once is refused (RFC 6749 section 2.3).
 */
export function authenticateClient(
  authorization: string | undefined,
  form: URLSearchParams,
  clients: MockClient[],
): MockClient | OAuthReply {
  const basic = authorization ? parseBasic(authorization) : undefined;
  if (authorization && !basic) return invalidClient(true);
  const postId = form.get('client_id');
  const postSecret = form.get('client_secret');
  if (basic && postSecret !== null) return oauthError(400, 'invalid_request', 'use one client authentication method');
  const id = basic?.id ?? postId;
  const presented = basic?.secret ?? postSecret ?? undefined;
  if (!id) return invalidClient(basic !== undefined);
  const client = clients.find((c) => c.clientId === id);
  if (!client) return invalidClient(basic !== undefined);
  if (client.clientSecret === undefined) return presented === undefined ? client : invalidClient(basic !== undefined);
  if (presented === undefined || !sameSecret(presented, client.clientSecret)) return invalidClient(basic !== undefined);
  return client;
}

/** The client id a request claims (Basic or body), for the request log; never the secret. */
export function clientIdOf(authorization: string | undefined, form: URLSearchParams): string | undefined {
  const basic = authorization ? parseBasic(authorization) : undefined;
  return basic?.id ?? form.get('client_id') ?? undefined;
}

export function isReply(value: unknown): value is OAuthReply {
  return typeof value === 'object' && value !== null && 'status' in value && 'body' in value;
}

export function sendReply(res: ServerResponse, reply: OAuthReply): void {
  const body = JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    'content-type': 'application/json;charset=UTF-8',
    'content-length': Buffer.byteLength(body),
    // RFC 6749 section 5.1: token responses must not be cached.
    'cache-control': 'no-store',
    pragma: 'no-cache',
    ...reply.headers,
  });
  res.end(body);
}

/** The token presented to the introspection endpoint: form `token`, query `token`, or a Bearer header. */
export function presentedToken(req: IncomingMessage, form: URLSearchParams, url: URL): string | undefined {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
  return form.get('token') ?? url.searchParams.get('token') ?? bearer;
}
