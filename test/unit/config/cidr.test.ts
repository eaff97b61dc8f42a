import { describe, expect, it } from 'vitest';
import { parseCidr, tooWideForRelay } from '../../../src/config/cidr.js';

/** Client networks in the config, and which are too wide to send mail from without AUTH. */

describe('parseCidr', () => {
  it.each(['10.0.0.0/24', '192.168.1.20', '0.0.0.0/0', 'fd00::/8', '::1', '::ffff:10.0.0.0/104', '2001:db8::/128'])('takes %s', (text) => {
    expect(parseCidr(text)).toBeDefined();
  });

  // Number() reads every one of these prefixes as a number; none is a network as written.
  it.each(['0.0.0.0/00', '0.0.0.0/0x0', '0.0.0.0/+0', '0.0.0.0/ 0', '0.0.0.0/-0', '10.0.0.0/024', '10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0/8', 'host/8', '10.0.0.0/8/8', ''])('refuses %j', (text) => {
    expect(parseCidr(text)).toBeUndefined();
  });

  it('reads IPv6 with and without "::" and an IPv4 tail', () => {
    expect(parseCidr('::ffff:1.2.3.4')?.address).toBe(0xffff01020304n);
    expect(parseCidr('2001:db8::1')?.address).toBe(0x20010db8000000000000000000000001n);
    expect(parseCidr('1:2:3:4:5:6:7:8')?.address).toBe(0x00010002000300040005000600070008n);
    expect(parseCidr('::')?.address).toBe(0n);
  });
});

describe('tooWideForRelay', () => {
  const wide = (text: string) => tooWideForRelay(parseCidr(text)!);

  it.each(['192.168.1.0/24', '10.0.0.0/8', '172.16.0.0/12', '100.64.0.0/10', '203.0.113.0/24', '198.51.0.0/16', '8.8.8.8', 'fd00::/8', 'fc00::/7', '2001:db8:1::/48', '::1', '::ffff:192.168.0.0/112', '::ffff:10.0.0.0/104'])('takes %s', (text) => {
    expect(wide(text)).toBeUndefined();
  });

  it.each([
    ['0.0.0.0/0', /public network wider than \/16 of IPv4/],
    ['0.0.0.0/1', /IPv4/],
    ['128.0.0.0/1', /IPv4/],
    ['11.0.0.0/8', /IPv4/],
    ['10.0.0.0/7', /IPv4/],
    ['::/0', /IPv4 \(as IPv4-mapped IPv6\)/],
    ['::/64', /IPv4 \(as IPv4-mapped IPv6\)/],
    ['::ffff:0:0/96', /IPv4 \(as IPv4-mapped IPv6\)/],
    ['::ffff:10.0.0.0/103', /IPv4 \(as IPv4-mapped IPv6\)/],
    ['2000::/3', /wider than \/48 of IPv6/],
    ['2001:db8::/32', /IPv6/],
    ['fc00::/6', /IPv6/],
  ])('refuses %s', (text, message) => {
    expect(wide(text)).toMatch(message);
  });
});
