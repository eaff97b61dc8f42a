import type { SMTPServerAddress, SMTPServerDataStream } from 'smtp-server';
import { ProxyError } from '../errors.js';
import { SMTP_REPLIES, smtpErrorReply, upstreamReplyError, upstreamReplyText } from './replies.js';
import { envelopeSender, mailParameters, rewriteFromHeader, wireAddress } from './sender-policy.js';
import { connectAs, relayAccountFor, type SmtpSession } from './session.js';
import type { UpstreamSmtpSession } from './upstream-client.js';

/**
 * One mail transaction, passed on step by step (SPEC section 5): MAIL, each RCPT and DATA go to
 * the server as the client sends them, and the client gets the server's own reply to each.
 * Every function here throws the SmtpReplyError the client is to see, or returns on success.
 */

/** MAIL FROM: the sending account (from AUTH, or the relay account), a live upstream, then MAIL upstream. */
export async function startMail(s: SmtpSession, address: SMTPServerAddress): Promise<void> {
  const account = s.account ?? relayAccount(s);
  const upstream = await liveUpstream(s, account);
  const signal = s.gone.signal;
  try {
    // RFC 5321 section 4.1.1.5: whatever the last transaction left behind (a RSET or EHLO the
    // client sent to us, a refused DATA), the server starts this one clean.
    if (s.upstreamDirty && (await upstream.reset(signal)).code !== 250) throw new ProxyError('upstream_unavailable', 'RSET refused');
  } catch (err) {
    throw smtpErrorReply(err, 'transaction');
  }
  s.smtpUtf8 = address.args !== false && address.args.SMTPUTF8 === true;
  s.recipients = 0;
  s.upstreamDirty = true;
  const sender = wireAddress(envelopeSender(account, address.address), s.smtpUtf8);
  const reply = await step(() => upstream.mailFrom(sender, mailParameters(address.args, upstream.extensions), signal));
  if (reply.code >= 400) throw upstreamReplyError(reply);
}

/** RCPT TO: the server's verdict on this one recipient. */
export async function addRecipient(s: SmtpSession, address: SMTPServerAddress): Promise<void> {
  const upstream = s.upstream;
  if (!upstream?.usable) throw smtpErrorReply(new ProxyError('upstream_unavailable', 'connection lost'), 'transaction');
  const reply = await step(() => upstream.rcptTo(wireAddress(address.address, s.smtpUtf8), s.gone.signal));
  if (reply.code >= 400) throw upstreamReplyError(reply);
  s.recipients++;
}

/**
 * DATA: the message streams to the server as it arrives (dot-stuffed, with backpressure, so
 * memory does not grow with its size), then the server's verdict. smtp-server has already said
 * 354 to the client, so a server that refuses DATA is answered after the client's final dot,
 * with the server's reply. The client's stream is always read to its end, never cut off.
 * Returns the server's acceptance text (it usually names the queue id).
 */
export async function transferMessage(s: SmtpSession, stream: SMTPServerDataStream): Promise<string> {
  const upstream = s.upstream;
  const { account } = s;
  if (!upstream?.usable || !account) throw smtpErrorReply(new ProxyError('upstream_unavailable', 'connection lost'), 'transaction');
  const begin = await step(() => upstream.beginData(s.gone.signal));
  if (begin.code !== 354) throw upstreamReplyError(begin);
  const max = s.deps.listener.max_message_size;
  // RFC 1870: the limit (and the SIZE we announced) is on the message as the client sends it,
  // so what our From rewrite adds is not counted. Without a rewrite the loop counts itself,
  // keeping the common path free of a generator per chunk.
  let size = 0;
  const rewrite = account.rewriteFromHeader === true;
  const body = rewrite ? rewriteFromHeader(stream, account.upstreamUsername, (n) => { size += n; }) : stream;
  let failure: unknown;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (!rewrite) size += chunk.length;
      if (failure !== undefined) continue;
      if (size > max) failure = SMTP_REPLIES.messageTooBig(max);
      else {
        try {
          // Awaited only when the server's socket is full: no promise per chunk otherwise.
          const wait = upstream.writeBody(chunk);
          if (wait) await wait;
        } catch (err) {
          failure = smtpErrorReply(err, 'transaction');
        }
      }
      // SMTP cannot take back a DATA in progress: hanging up makes the server discard it.
      if (failure !== undefined) upstream.destroy();
    }
  } catch (err) {
    upstream.destroy();
    throw err;
  }
  if (failure !== undefined) throw failure;
  const end = await step(() => upstream.endData(s.gone.signal));
  s.upstreamDirty = false;
  if (end.code >= 400) throw upstreamReplyError(end);
  Object.assign(s.end, { messages: s.end.messages + 1, recipients: s.end.recipients + s.recipients, bytes: s.end.bytes + size, outcome: 'sent' });
  return upstreamReplyText(end);
}

/**
 * MAIL without AUTH: on a relay listener the client's address decides; outside the relay
 * networks, and on any other listener (a STARTTLS one before TLS lets MAIL through to us,
 * see server.ts), AUTH is required.
 */
function relayAccount(s: SmtpSession): NonNullable<SmtpSession['account']> {
  const account = relayAccountFor(s);
  if (!account) {
    if (s.deps.listener.relay_account) s.log.info({ event: 'relay.refused' }, 'MAIL without AUTH from outside the relay networks refused');
    throw SMTP_REPLIES.authRequired();
  }
  Object.assign(s.end, { account: account.username, method: 'relay' });
  return account;
}

/** The session's upstream, logged in anew when there is none or it has gone away between transactions. */
async function liveUpstream(s: SmtpSession, account: NonNullable<SmtpSession['account']>): Promise<UpstreamSmtpSession> {
  if (s.upstream?.usable && s.account === account) return s.upstream;
  try {
    return await connectAs(s, account, s.password);
  } catch (err) {
    throw smtpErrorReply(err, 'login');
  }
}

/** One upstream step; a broken connection or timeout becomes the client's 451. */
async function step<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw smtpErrorReply(err, 'transaction');
  }
}
