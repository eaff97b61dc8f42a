import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';

/** SMTP keys of the config file: listener limits, relay mode (never an open relay), sender policy. */

function config(listener: string, account = ''): string {
  return `
listeners:
  - protocol: smtp
    listen: 127.0.0.1:1587
${listener}
accounts:
  - username: printer@example.com
    password: pw
    provider: google
    client_id: cid
    flow: refresh_token
    refresh_token: rt
${account}
  - username: ropc@example.com
    provider: microsoft
    client_id: cid
    flow: password
`;
}

function problem(text: string): string {
  try {
    parseConfig(text);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected the config to be refused');
}

describe('SMTP config', () => {
  it('defaults: 50 MB messages, 500 recipients, envelope sender kept, header From untouched', () => {
    const cfg = parseConfig(config(''));
    expect(cfg.listeners[0]).toMatchObject({ max_message_size: 52_428_800, max_recipients: 500 });
    expect(cfg.accounts[0]).toMatchObject({ senderPolicy: 'keep', rewriteFromHeader: false });
    expect(cfg.accounts[0]?.servers.smtp).toMatchObject({ host: 'smtp.gmail.com' });
  });

  it('takes relay_account with allow networks, listener limits and the sender policy', () => {
    const cfg = parseConfig(config(
      '    relay_account: printer@example.com\n    allow: [192.168.1.0/24, "fd00::/8"]\n    max_message_size: 1000\n    max_recipients: 3',
      '    sender_policy: rewrite\n    rewrite_from_header: true',
    ));
    expect(cfg.listeners[0]).toMatchObject({ relay_account: 'printer@example.com', max_message_size: 1000, max_recipients: 3 });
    expect(cfg.accounts[0]).toMatchObject({ senderPolicy: 'rewrite', rewriteFromHeader: true });
  });

  it.each([
    ['    relay_account: printer@example.com', /listeners\[0\]\.allow: relay_account needs allow.*never an open relay/],
    ['    relay_account: printer@example.com\n    allow: [0.0.0.0/0]', /open relay/],
    ['    relay_account: printer@example.com\n    allow: ["::/0"]', /open relay/],
    ['    relay_account: printer@example.com\n    allow: ["0.0.0.0/00"]', /allow\[0\]: expected an IP address or CIDR/],
    ['    relay_account: printer@example.com\n    allow: [192.168.1.0/24, 0.0.0.0/1, 128.0.0.0/1]', /allow\[1\]: a public network.*open relay/],
    ['    relay_account: printer@example.com\n    allow: ["::ffff:0:0/96"]', /IPv4-mapped.*open relay/],
    ['    relay_account: nobody@example.com\n    allow: [10.0.0.0/8]', /relay_account.*no account "nobody@example.com"/s],
    ['    relay_account: ropc@example.com\n    allow: [10.0.0.0/8]', /flow "password" account needs its password/],
  ])('refuses %j', (listener, message) => {
    expect(problem(config(listener))).toMatch(message);
  });

  it('refuses sender_policy values other than keep and rewrite', () => {
    expect(problem(config('', '    sender_policy: spoof'))).toMatch(/sender_policy/);
  });
});
