// The POP3 and SMTP bulk measurements: the same shape as the IMAP one (one session, the
// 10 MB message 20 times), through a direct or a proxied path.
import { performance } from 'node:perf_hooks';
import { RawPop3 } from './pop3-client.mjs';
import { RawSmtp } from './smtp-client.mjs';

/** One POP3 session: LIST for the biggest message, then `times` RETRs of it. */
export async function pop3BulkRun(path, times) {
  const client = await RawPop3.connect(path.target);
  try {
    await path.login(client);
    const big = await client.largestMessage();
    const started = performance.now();
    let bytes = 0;
    for (let i = 0; i < times; i++) {
      const got = await client.retr(big.number);
      // The body as sent: the message (no line starts with ".") plus the ".\r\n" end line.
      if (got < big.size) throw new Error(`RETR returned ${got} bytes, expected at least ${big.size}`);
      bytes += got;
    }
    const seconds = (performance.now() - started) / 1000;
    await client.quit();
    return { mbps: bytes / 1e6 / seconds, bytes };
  } finally {
    client.destroy();
  }
}

/** One SMTP session: `times` messages of `message` (MAIL, RCPT, DATA, the bytes, "."). */
export async function smtpBulkRun(path, message, from, to, times) {
  const client = await RawSmtp.connect(path.target);
  try {
    await path.login(client);
    const started = performance.now();
    let bytes = 0;
    for (let i = 0; i < times; i++) bytes += await client.send(from, to, message);
    const seconds = (performance.now() - started) / 1000;
    await client.quit();
    return { mbps: bytes / 1e6 / seconds, bytes };
  } finally {
    client.destroy();
  }
}
