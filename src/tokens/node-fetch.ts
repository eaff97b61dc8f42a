import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';

/**
 * A minimal fetch over node:http / node:https for oauth4webapi's `[customFetch]`: the global
 * fetch cannot take extra CA certificates per request, and this one also bounds the body size
 * and notices a truncated response (connection closed before Content-Length was reached).
 */

export interface NodeFetchInit {
  method: string;
  headers: Record<string, string>;
  body?: URLSearchParams | string | undefined;
  signal?: AbortSignal | undefined;
}

export interface NodeFetchOptions {
  /** Trusted CAs for https (replaces Node's default list, so pass tls.rootCertificates too). */
  ca?: string[] | undefined;
  /** Largest response body accepted. */
  maxBytes: number;
}

export type NodeFetch = (url: string, init: NodeFetchInit) => Promise<Response>;

/** Statuses whose Response must have a null body (Fetch standard). */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

function toHeaders(res: IncomingMessage): Headers {
  const headers = new Headers();
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
    try {
      headers.append(res.rawHeaders[i] as string, res.rawHeaders[i + 1] as string);
    } catch {
      // A header value fetch refuses (control characters) is dropped rather than failing the call.
    }
  }
  return headers;
}

function readBody(res: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        res.destroy(new Error(`response body larger than ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    // An error or 'close' before the message is complete: the server hung up mid-body.
    const truncated = (cause?: unknown) =>
      Object.assign(new Error('response truncated: connection closed mid-body', { cause }), { code: 'ETRUNCATED' });
    res.on('error', (err) => reject(res.complete || size > maxBytes ? err : truncated(err)));
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('close', () => {
      if (!res.complete) reject(truncated());
    });
  });
}

export function createNodeFetch(options: NodeFetchOptions): NodeFetch {
  return (url, init) =>
    new Promise<Response>((resolve, reject) => {
      const target = new URL(url);
      const body = init.body === undefined ? undefined : Buffer.from(init.body.toString(), 'utf8');
      const headers: Record<string, string> = { ...init.headers };
      if (body) headers['content-length'] = String(body.length);
      const reqOptions: RequestOptions = { method: init.method, headers, signal: init.signal };
      const req =
        target.protocol === 'https:'
          ? httpsRequest(target, { ...reqOptions, ...(options.ca ? { ca: options.ca } : {}) })
          : httpRequest(target, reqOptions);
      req.on('error', reject);
      req.on('response', (res) => {
        readBody(res, options.maxBytes).then((buf) => {
          const status = res.statusCode ?? 0;
          const payload = NULL_BODY_STATUSES.has(status) ? null : new Uint8Array(buf);
          try {
            resolve(new Response(payload, { status, headers: toHeaders(res) }));
          } catch (err) {
            reject(err);
          }
        }, reject);
      });
      req.end(body);
    });
}
