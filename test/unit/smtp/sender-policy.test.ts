import { describe, expect, it } from 'vitest';
import type { AccountSettings } from '../../../src/config/resolve.js';
import { MAX_SMTP_HEADER_REWRITE_BYTES } from '../../../src/limits.js';
import { envelopeSender, mailParameters, rewriteFromHeader, wireAddress } from '../../../src/smtp/sender-policy.js';

const ACCOUNT = 'printer@example.com';

async function rewrite(message: string, cuts: number[] = []): Promise<string> {
  const bytes = Buffer.from(message, 'utf8');
  async function* chunks(): AsyncGenerator<Buffer> {
    let from = 0;
    for (const cut of [...cuts, bytes.length]) {
      yield bytes.subarray(from, cut);
      from = cut;
    }
  }
  const out: Buffer[] = [];
  for await (const chunk of rewriteFromHeader(chunks(), ACCOUNT)) out.push(chunk);
  return Buffer.concat(out).toString('utf8');
}

describe('header From rewrite', () => {
  it.each([
    ['"Scan to Email" <scanner@printer.lan>', '"Scan to Email" <printer@example.com>'],
    ['Scanner <scanner@printer.lan>', 'Scanner <printer@example.com>'],
    ['=?utf-8?q?B=C3=BCro?= <scanner@printer.lan>', '=?utf-8?q?B=C3=BCro?= <printer@example.com>'],
    ['scanner@printer.lan (Office "MFP")', '"Office \\"MFP\\"" <printer@example.com>'],
    ['scanner@printer.lan', '<printer@example.com>'],
    ['<scanner@printer.lan>', '<printer@example.com>'],
  ])('From: %s', async (from, expected) => {
    expect(await rewrite(`From: ${from}\r\nTo: bob@example.org\r\n\r\nFrom: not a header\r\n`))
      .toBe(`From: ${expected}\r\nTo: bob@example.org\r\n\r\nFrom: not a header\r\n`);
  });

  it('rewrites a folded From field, keeps other fields and the body byte for byte, across chunk cuts', async () => {
    const message = 'Subject: Grüße\r\nfrom: "Büro\r\n Scanner" <scan@printer.lan>\r\nX-A: 1\r\n\r\nbody\r\nFrom: x\r\n';
    const expected = 'Subject: Grüße\r\nFrom: "Büro Scanner" <printer@example.com>\r\nX-A: 1\r\n\r\nbody\r\nFrom: x\r\n';
    for (const cuts of [[], [1], [20, 21, 40], [55, 56, 57, 58]]) {
      expect(await rewrite(message, cuts)).toBe(expected);
    }
  });

  it('leaves a message without From, with bare LF endings, or without a body intact apart from From', async () => {
    expect(await rewrite('To: a@b\r\n\r\nhi\r\n')).toBe('To: a@b\r\n\r\nhi\r\n');
    expect(await rewrite('From: A <a@b>\nTo: c@d\n\nhi\n')).toBe('From: A <printer@example.com>\nTo: c@d\n\nhi\n');
    expect(await rewrite('From: A <a@b>\r\n')).toBe('From: A <printer@example.com>\r\n');
    expect(await rewrite('\r\nFrom: body only\r\n')).toBe('\r\nFrom: body only\r\n');
  });

  it('passes a header section longer than the limit on unchanged', async () => {
    const huge = `X-Big: ${'y'.repeat(MAX_SMTP_HEADER_REWRITE_BYTES + 10)}\r\nFrom: A <a@b>\r\n\r\nbody\r\n`;
    expect(await rewrite(huge, [1000, 70_000, 200_000])).toBe(huge);
  });
});

describe('envelope', () => {
  const account = (senderPolicy: 'keep' | 'rewrite') => ({ upstreamUsername: ACCOUNT, senderPolicy }) as AccountSettings;

  it('keeps or rewrites the envelope sender per account', () => {
    expect(envelopeSender(account('keep'), 'scanner@printer.lan')).toBe('scanner@printer.lan');
    expect(envelopeSender(account('rewrite'), 'scanner@printer.lan')).toBe(ACCOUNT);
    expect(envelopeSender(account('rewrite'), '')).toBe(ACCOUNT);
  });

  it('gives the server ASCII domains unless the client asked for SMTPUTF8', () => {
    expect(wireAddress('user@bücher.example', false)).toBe('user@xn--bcher-kva.example');
    expect(wireAddress('user@bücher.example', true)).toBe('user@bücher.example');
    expect(wireAddress('user@[192.0.2.1]', false)).toBe('user@[192.0.2.1]');
    expect(wireAddress('', false)).toBe('');
  });

  it('passes SIZE and BODY on when the server announced them, SMTPUTF8 always, nothing else', () => {
    const all = new Map([['SIZE', '35882577'], ['8BITMIME', '']]);
    const args = { SIZE: '1234', BODY: '8bitmime', SMTPUTF8: true as const, RET: 'FULL' };
    expect(mailParameters(args, all)).toEqual(['SIZE=1234', 'BODY=8BITMIME', 'SMTPUTF8']);
    expect(mailParameters(args, new Map())).toEqual(['SMTPUTF8']);
    expect(mailParameters(false, all)).toEqual([]);
  });
});
