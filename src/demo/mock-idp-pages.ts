import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuthorizationRequest, CodeRegistry } from './mock-idp-codes.js';
import { isReply, readForm } from './mock-idp-http.js';
import type { MockUser } from './mock-idp-state.js';

/**
 * The mock identity provider's pages for people: the consent page of the authorization code
 * flow (/authorize) and the device verification page of RFC 8628 (/device). Plain HTML forms,
 * no script, so that a test browser, curl or a person can drive them.
 */

export interface PageDeps {
  codes: CodeRegistry;
  users: MockUser[];
  approveDevice(userCode: string, username: string): boolean;
  denyDevice(userCode: string): boolean;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `body{font:15px/1.5 system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}
main{max-width:26rem;margin:4rem auto;background:#fff;border-radius:10px;padding:2rem;box-shadow:0 1px 4px #0002}
h1{font-size:1.3rem;margin:0 0 1rem}label{display:block;margin:.8rem 0 .2rem;font-weight:600}
input{width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #bbc;border-radius:6px;font:inherit}
.buttons{display:flex;gap:.6rem;margin-top:1.4rem}button{flex:1;padding:.6rem;border-radius:6px;border:0;font:inherit;cursor:pointer}
.approve{background:#2456d6;color:#fff}.deny{background:#e4e6eb}.muted{color:#667;font-size:.9rem}`;

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body><main><h1>${escapeHtml(title)}</h1>${body}</main></body></html>`;
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(html);
}

function redirect(res: ServerResponse, target: string, params: Record<string, string | undefined>): void {
  const url = new URL(target);
  for (const [key, value] of Object.entries(params)) if (value !== undefined) url.searchParams.set(key, value);
  res.writeHead(302, { location: url.href, 'cache-control': 'no-store' }).end();
}

function hidden(params: URLSearchParams): string {
  const keep = ['response_type', 'client_id', 'redirect_uri', 'state', 'scope', 'code_challenge', 'code_challenge_method', 'login_hint'];
  return keep
    .filter((k) => params.has(k))
    .map((k) => `<input type="hidden" name="${k}" value="${escapeHtml(params.get(k) ?? '')}">`)
    .join('');
}

function consentPage(request: AuthorizationRequest, params: URLSearchParams, users: MockUser[]): string {
  const who = request.loginHint ?? users[0]?.username ?? '';
  return page('Sign in to the mock identity provider', `
<p><b>${escapeHtml(request.clientId)}</b> asks for access to <b>${escapeHtml(request.scope)}</b>.</p>
<form method="post" action="/authorize">${hidden(params)}
<label for="username">Account</label><input id="username" name="username" value="${escapeHtml(who)}" required>
<div class="buttons"><button class="approve" name="decision" value="approve">Approve</button>
<button class="deny" name="decision" value="deny" formnovalidate>Deny</button></div></form>
<p class="muted">You will return to ${escapeHtml(new URL(request.redirectUri).host)}.</p>`);
}

/** GET shows the consent page; POST approves (code) or denies (access_denied) and redirects back. */
export async function serveAuthorize(req: IncomingMessage, res: ServerResponse, url: URL, deps: PageDeps): Promise<number> {
  const post = req.method === 'POST';
  if (!post && req.method !== 'GET') return sendStatus(res, 405, 'method not allowed');
  const form = post ? await readForm(req) : url.searchParams;
  if (isReply(form)) return sendStatus(res, form.status, String(form.body.error_description));
  const checked = deps.codes.check(form);
  if ('kind' in checked && checked.kind === 'page') {
    sendHtml(res, 400, page('Cannot sign in', `<p>${escapeHtml(checked.message)}</p>`));
    return 400;
  }
  if ('kind' in checked) {
    redirect(res, checked.redirectUri, { error: checked.error, error_description: checked.description, state: checked.state });
    return 302;
  }
  if (!post) {
    sendHtml(res, 200, consentPage(checked, form, deps.users));
    return 200;
  }
  if (form.get('decision') !== 'approve') {
    redirect(res, checked.redirectUri, { error: 'access_denied', error_description: 'the user denied the request', state: checked.state });
    return 302;
  }
  const username = form.get('username')?.trim() || checked.loginHint || deps.users[0]?.username;
  if (!username) return sendStatus(res, 400, 'username is required');
  redirect(res, checked.redirectUri, { code: deps.codes.issue(checked, username), state: checked.state });
  return 302;
}

function devicePage(userCode: string, users: MockUser[], message = ''): string {
  return page('Connect a device', `${message}
<form method="post" action="/device">
<label for="user_code">Code shown on your device</label><input id="user_code" name="user_code" value="${escapeHtml(userCode)}" autocomplete="off" required>
<label for="username">Account</label><input id="username" name="username" value="${escapeHtml(users[0]?.username ?? '')}">
<div class="buttons"><button class="approve" name="decision" value="approve">Approve</button>
<button class="deny" name="decision" value="deny">Deny</button></div></form>`);
}

/** RFC 8628 section 3.3: the page where a person types the user code and approves or denies. */
export async function serveDevice(req: IncomingMessage, res: ServerResponse, url: URL, deps: PageDeps): Promise<number> {
  if (req.method === 'GET') {
    sendHtml(res, 200, devicePage(url.searchParams.get('user_code') ?? '', deps.users));
    return 200;
  }
  if (req.method !== 'POST') return sendStatus(res, 405, 'method not allowed');
  const form = await readForm(req);
  if (isReply(form)) return sendStatus(res, form.status, String(form.body.error_description));
  const userCode = form.get('user_code') ?? '';
  const username = form.get('username')?.trim() || deps.users[0]?.username;
  const approve = form.get('decision') === 'approve';
  if (approve && !username) return sendStatus(res, 400, 'username is required');
  const done = approve ? deps.approveDevice(userCode, username ?? '') : deps.denyDevice(userCode);
  if (!done) {
    sendHtml(res, 400, devicePage(userCode, deps.users, '<p><b>That code is unknown or has expired.</b></p>'));
    return 400;
  }
  const text = approve ? 'Device approved. You can return to your device.' : 'Request denied. The device gets no access.';
  sendHtml(res, 200, page(approve ? 'Approved' : 'Denied', `<p>${text}</p>`));
  return 200;
}

function sendStatus(res: ServerResponse, status: number, text: string): number {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(`${text}\n`);
  return status;
}
