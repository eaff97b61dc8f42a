// The benchmark's 10 MB message, made the same way for every protocol.

/** 10 MiB in total, headers included. */
export const BIG_MESSAGE_BYTES = 10 * 1024 * 1024;

/**
 * A plain-text RFC 5322 message of exactly `bytes` bytes with CRLF line ends and 76-character
 * lines (like a base64 attachment). No line starts with "." (no SMTP/POP3 dot-stuffing).
 */
export function bigMessage(to, bytes = BIG_MESSAGE_BYTES, subject = 'the 10 MB message') {
  const head = Buffer.from([
    'From: Bench Sender <sender@example.com>',
    `To: ${to}`,
    `Subject: ${subject}`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${Date.now()}.${Math.random().toString(36).slice(2)}@bench.invalid>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    '',
  ].join('\r\n'));
  const line = `${'0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'.repeat(2).slice(0, 76)}\r\n`;
  const room = bytes - head.length - 2;
  const body = line.repeat(Math.floor(room / line.length)) + 'x'.repeat(room % line.length) + '\r\n';
  const message = Buffer.concat([head, Buffer.from(body, 'latin1')]);
  if (message.length !== bytes) throw new Error(`big message is ${message.length} bytes, not ${bytes}`);
  return message;
}
