import { MAX_PRELOGIN_LINE_BYTES } from '../../src/limits.js';
import { FUZZ_PASSWORD, FUZZ_TOKEN, FUZZ_USER, type EndMode, type FuzzTarget, type Transcript } from './fuzz-types.js';

/** Why a transcript breaks one of the shared properties, or undefined when it holds them all. */
export function checkTranscript(t: Transcript, target: FuzzTarget, end: EndMode): string | undefined {
  if (t.rejected !== undefined) return `session handler failed: ${String((t.rejected as Error)?.stack ?? t.rejected)}`;
  const errors = t.logRecords.filter((r) => typeof r.level === 'number' && r.level >= 50);
  if (errors.length > 0) return `logged at error level: ${JSON.stringify(errors[0])}`;
  const rightLogins = t.authCalls.filter((c) => c.ok);
  for (const c of rightLogins) {
    if (c.username.toLowerCase() !== FUZZ_USER || c.password !== FUZZ_PASSWORD) return `a wrong login was accepted: ${JSON.stringify(c)}`;
  }
  if (t.tokenCalls.length > rightLogins.length) return `token manager asked ${t.tokenCalls.length} times after ${rightLogins.length} right logins`;
  if (t.upstreamConnectionsTotal > t.tokenCallsTotal) return `mail server reached ${t.upstreamConnectionsTotal} times after ${t.tokenCallsTotal} token requests`;
  for (const secret of [FUZZ_PASSWORD, FUZZ_TOKEN]) {
    if (t.received.includes(Buffer.from(secret, 'utf8')) || t.received.includes(Buffer.from(secret, 'latin1'))) return 'a secret went back to the client';
    if (t.logText.includes(secret)) return 'a secret reached the log';
  }
  // A reply may echo a client's tag, so a line may be as long as the longest line we read.
  const bad = t.lines.find((l) => !/^[\x20-\x7e]*$/.test(l) || l.length > MAX_PRELOGIN_LINE_BYTES + 400);
  if (bad !== undefined) return `unframed or unprintable reply line: ${JSON.stringify(bad.slice(0, 120))}`;
  if (end === 'stay' && !target.saidGoodbye(t.lines)) return `closed a silent client without a goodbye: ${JSON.stringify(t.lines.slice(-3))}`;
  const ends = t.logRecords.filter((r) => r.event === 'session.end').length;
  if (ends !== 1) return `${ends} session.end log lines`;
  return undefined;
}
