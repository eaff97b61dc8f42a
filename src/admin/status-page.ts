import type { AccountRow } from './status-model.js';

/**
 * The status page: server-rendered HTML, inline CSS and a small inline script (allowed by a CSP
 * nonce) that polls /api/status every few seconds, so that a row turns "ok" by itself when a
 * sign-in completes. No external assets; it works, minus the live updates, without script.
 */

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `
:root{--bg:#f5f6f8;--card:#fff;--ink:#1c2230;--muted:#677085;--line:#e3e6ec;--ok:#1f7a44;--okbg:#e3f4ea;
--warn:#8a5a00;--warnbg:#fff1d6;--bad:#b42318;--badbg:#fde8e7;--info:#1d4ed8;--infobg:#e4ecfd;--accent:#2456d6}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;background:var(--bg);color:var(--ink)}
header{padding:1.4rem 2rem .6rem}h1{font-size:1.25rem;margin:0}header p{margin:.2rem 0 0;color:var(--muted)}
main{padding:0 2rem 2rem}.card{background:var(--card);border:1px solid var(--line);border-radius:10px;overflow:hidden}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.7rem .9rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:.75rem;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);background:#fafbfc;font-weight:600;white-space:nowrap}
tr:last-child td{border-bottom:0}.account{font-weight:600}.flow{color:var(--muted);font-size:.8rem}
.badge{display:inline-block;padding:.12rem .55rem;border-radius:999px;font-size:.8rem;font-weight:600;white-space:nowrap}
.s-ok{color:var(--ok);background:var(--okbg)}.s-refreshing{color:var(--info);background:var(--infobg)}
.s-needs_authorization{color:var(--warn);background:var(--warnbg)}.s-failing{color:var(--bad);background:var(--badbg)}
.s-unknown{color:var(--muted);background:#eef0f3}.error{color:var(--bad);min-width:16rem;max-width:30rem;font-size:.85rem}.error:empty::before{content:"—";color:var(--muted)}.num{text-align:right}
.actions{white-space:nowrap}.actions form{display:block}.actions form+form{margin-top:.2rem}button{font:inherit;border-radius:6px;padding:.38rem .8rem;cursor:pointer;border:1px solid var(--line);background:#fff;color:var(--ink)}
button.primary{background:var(--accent);border-color:var(--accent);color:#fff}button.link{border:0;background:none;color:var(--accent);padding:0;font-size:.85rem}
.device{white-space:normal;max-width:16rem;margin-top:.5rem;padding:.5rem .7rem;border-radius:8px;background:var(--infobg);font-size:.85rem}
.device code{font-size:1.05rem;font-weight:700;letter-spacing:.08em}.device[hidden]{display:none}
footer{color:var(--muted);font-size:.8rem;margin-top:.8rem}footer a{color:inherit}`;

/** The live part: every few seconds, /api/status into the rows. */
const SCRIPT = `
const fields=['expires','lastRefresh','lastError','activeSessions'];
async function refresh(){
  let data;try{const r=await fetch('api/status',{cache:'no-store'});if(!r.ok)return;data=await r.json();}catch{return;}
  for(const a of data.accounts){
    const row=document.querySelector('tr[data-account="'+CSS.escape(a.account)+'"]');if(!row)continue;
    const badge=row.querySelector('.badge');badge.className='badge s-'+a.state;badge.textContent=a.stateLabel;row.dataset.state=a.state;
    for(const f of fields){const el=row.querySelector('[data-field="'+f+'"]');if(el)el.textContent=String(a[f]);}
    const box=row.querySelector('.device');if(!box)continue;
    box.hidden=!a.device;
    if(a.device){box.querySelector('code').textContent=a.device.userCode;const link=box.querySelector('a');link.href=a.device.verificationUriComplete||a.device.verificationUri;link.textContent=a.device.verificationUri;}
  }
  document.getElementById('updated').textContent=new Date().toISOString().slice(11,19)+' UTC';
}
setInterval(refresh,2000);`;

function signInCell(row: AccountRow): string {
  if (row.signInMethods.length === 0) return '<td class="actions"></td>';
  const primary = row.state === 'needs_authorization' || row.state === 'unknown' ? 'primary' : '';
  const label = row.state === 'needs_authorization' || row.state === 'unknown' ? 'Sign in' : 'Sign in again';
  const [first, second] = row.signInMethods;
  const button = (method: string, text: string, cls: string) =>
    `<form method="post" action="sign-in"><input type="hidden" name="account" value="${escapeHtml(row.account)}">` +
    `<input type="hidden" name="method" value="${method}"><button class="${cls}" type="submit">${text}</button></form>`;
  const other = second ? button(second, second === 'device' ? 'or use a code' : 'or use the browser', 'link') : '';
  const device = row.device;
  const box = `<div class="device"${device ? '' : ' hidden'}>Open <a href="${escapeHtml(device?.verificationUriComplete ?? device?.verificationUri ?? '#')}" target="_blank" rel="noreferrer">${escapeHtml(device?.verificationUri ?? '')}</a> and enter <code>${escapeHtml(device?.userCode ?? '')}</code></div>`;
  return `<td class="actions">${button(first ?? 'browser', label, primary)}${other}${box}</td>`;
}

function rowHtml(row: AccountRow): string {
  const title = (at: number | undefined) => (at === undefined ? '' : ` title="${new Date(at).toISOString()}"`);
  return `<tr data-account="${escapeHtml(row.account)}" data-state="${row.state}">
<td><div class="account">${escapeHtml(row.account)}</div><div class="flow">${escapeHtml(row.flow.replace('_', ' '))}</div></td>
<td><span class="badge s-${row.state}">${escapeHtml(row.stateLabel)}</span></td>
<td data-field="expires"${title(row.expiresAt)}>${escapeHtml(row.expires)}</td>
<td data-field="lastRefresh"${title(row.lastRefreshAt)}>${escapeHtml(row.lastRefresh)}</td>
<td class="error" data-field="lastError">${escapeHtml(row.lastError)}</td>
<td class="num" data-field="activeSessions">${row.activeSessions}</td>
${signInCell(row)}</tr>`;
}

export function renderStatusPage(rows: AccountRow[], nonce: string, now: number): string {
  const needing = rows.filter((r) => r.state === 'needs_authorization').length;
  const accounts = rows.length === 1 ? '1 account' : `${rows.length} accounts`;
  const summary = rows.length === 0 ? 'No accounts configured.' : needing > 0 ? `${needing} of ${accounts} ${needing === 1 ? 'needs' : 'need'} authorization.` : `${accounts}, none needs authorization.`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>oauth-mail-proxy status</title><style>${STYLE}</style></head><body>
<header><h1>oauth-mail-proxy</h1><p>${escapeHtml(summary)}</p></header>
<main><div class="card"><table><thead><tr><th>Account</th><th>State</th><th>Token expires</th><th>Last refresh</th><th>Last error</th><th class="num">Sessions</th><th></th></tr></thead>
<tbody>${rows.map(rowHtml).join('\n')}</tbody></table></div>
<footer>Updated <span id="updated">${new Date(now).toISOString().slice(11, 19)} UTC</span> · <a href="metrics">metrics</a> · <a href="api/status">json</a></footer></main>
<script nonce="${nonce}">${SCRIPT}</script></body></html>`;
}

/** A short page for the end of a browser sign-in that went wrong. */
export function renderMessagePage(title: string, text: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><header><h1>${escapeHtml(title)}</h1></header><main><div class="card" style="padding:1rem 1.2rem"><p>${escapeHtml(text)}</p><p><a href="./">Back to the status page</a></p></div></main></body></html>`;
}
