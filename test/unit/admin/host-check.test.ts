import { describe, expect, it } from 'vitest';
import { createHostCheck, hostName } from '../../../src/admin/host-check.js';
import type { AdminSettings } from '../../../src/config/resolve.js';
import { parseConfig } from '../../../src/config/load.js';

const settings = (extra: Partial<AdminSettings> = {}): AdminSettings => ({ listen: '127.0.0.1:8025', username: 'admin', ...extra });

describe('admin Host check (DNS rebinding)', () => {
  it('answers IP literals, localhost and *.localhost, with or without a port, and nothing else unconfigured', () => {
    const allowed = createHostCheck(settings());
    for (const host of ['127.0.0.1', '127.0.0.1:8025', '10.1.2.3:18025', '[::1]', '[::1]:8025', '[fe80::1]:80', 'localhost', 'LocalHost:8025', 'localhost.:9000', 'app.localhost:8025']) {
      expect(allowed(host), host).toBe(true);
    }
    for (const host of ['evil.example', 'evil.example:8025', 'localhost.evil.example', 'evillocalhost', '127.0.0.1.evil.example', '', ':8025', '[evil]:8025', '[::1', 'a b', 'evil.example@127.0.0.1', '127.0.0.1/x', 'evil.example:8025:1']) {
      expect(allowed(host), host).toBe(false);
    }
  });

  it('no Host header at all (HTTP/1.0, never a browser) is not a rebinding', () => {
    expect(createHostCheck(settings())(undefined)).toBe(true);
  });

  it('answers the names in allowed_hosts (a leading dot for a domain and its subdomains) and public_url\'s host', () => {
    const allowed = createHostCheck(settings({ allowedHosts: ['Mail-Proxy.lan', '.example.com'], publicUrl: 'https://proxy.corp.test/admin' }));
    for (const host of ['mail-proxy.lan', 'MAIL-PROXY.LAN:8025', 'example.com', 'a.b.example.com:443', 'proxy.corp.test', 'proxy.corp.test:8443']) expect(allowed(host), host).toBe(true);
    for (const host of ['other.lan', 'notexample.com', 'example.com.evil.test', 'corp.test', 'x.proxy.corp.test']) expect(allowed(host), host).toBe(false);
  });

  it('reads the name out of a Host header: lowercase, no brackets, port or final dot', () => {
    expect(hostName('Mail.Example.:8025')).toBe('mail.example');
    expect(hostName('[::1]:8025')).toBe('::1');
    expect(hostName('[not-an-ip]')).toBeUndefined();
  });

  it('allowed_hosts in the config takes names and addresses, not URLs or ports', () => {
    const yaml = (hosts: string) => `listeners: [{protocol: imap, listen: "127.0.0.1:1143"}]\nadmin: { listen: "127.0.0.1:8025", allowed_hosts: ${hosts} }\n`;
    expect(parseConfig(yaml('[mail-proxy.lan, .example.com, 192.168.1.10, "[::1]", "fd00::2"]')).admin?.allowedHosts).toEqual(['mail-proxy.lan', '.example.com', '192.168.1.10', '[::1]', 'fd00::2']);
    expect(parseConfig(yaml('[]')).admin?.allowedHosts).toEqual([]);
    for (const bad of ['["mail-proxy.lan:8025"]', '["https://mail-proxy.lan"]', '["*"]', '["mail proxy"]']) {
      expect(() => parseConfig(yaml(bad)), bad).toThrow(/admin\.allowed_hosts\[0\]: expected a host name/);
    }
  });
});
