// The POP3 and SMTP bulk measurements: the same shape as the IMAP one (one session, the
// 10 MB message again and again), through a direct or a proxied path. Each is a bench session
// (bench/lib/interleave.mjs) whose step moves the message once.
import { timed } from './interleave.mjs';
import { RawPop3 } from './pop3-client.mjs';
import { RawSmtp } from './smtp-client.mjs';

/**
 * One POP3 session, logged in, with the biggest message found by LIST; a step is one RETR of it.
 * @returns {Promise<import('./interleave.mjs').BenchSession>}
 */
export async function retrSession(path) {
  const client = await RawPop3.connect(path.target);
  try {
    await path.login(client);
    const big = await client.largestMessage();
    return {
      step: () => timed(async () => {
        const bytes = await client.retr(big.number);
        // The body as sent: the message (no line starts with ".") plus the ".\r\n" end line.
        if (bytes < big.size) throw new Error(`RETR returned ${bytes} bytes, expected at least ${big.size}`);
        return bytes;
      }),
      close: () => quitAndDestroy(client),
    };
  } catch (err) {
    client.destroy();
    throw err;
  }
}

/**
 * One SMTP session, logged in; a step sends `message` once (MAIL, RCPT, DATA, the bytes, ".").
 * @returns {(path: any) => Promise<import('./interleave.mjs').BenchSession>}
 */
export function sendSession(message, from, to) {
  return async (path) => {
    const client = await RawSmtp.connect(path.target);
    try {
      await path.login(client);
    } catch (err) {
      client.destroy();
      throw err;
    }
    return {
      step: () => timed(() => client.send(from, to, message)),
      close: () => quitAndDestroy(client),
    };
  };
}

async function quitAndDestroy(client) {
  try {
    await client.quit();
  } finally {
    client.destroy();
  }
}
