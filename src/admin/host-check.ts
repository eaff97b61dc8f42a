import { isIP } from 'node:net';
import type { AdminSettings } from '../config/resolve.js';

/**
 * Which Host headers the admin listener answers: the defence against DNS rebinding. A page on
 * http://evil.example:8025 whose name the attacker then points at 127.0.0.1 is same-origin with
 * itself, so the browser lets it read our answers and post our forms; only the Host header it
 * must send (`evil.example:8025`) gives it away. Names that cannot be pointed elsewhere by an
 * attacker are always answered: IP literals (nothing to rebind) and `localhost` / `*.localhost`
 * (loopback by definition, RFC 6761 section 6.3). Any other name must be configured: the host of
 * `admin.public_url`, or an entry of `admin.allowed_hosts` (`.example.com` also covers its
 * subdomains). The port is not compared: an `ssh -L 9000:...` tunnel or a container's published
 * port changes it, and a rebinding page cannot change the name it was loaded from.
 */

export type HostCheck = (host: string | undefined) => boolean;

/** Host = uri-host [":" port] (RFC 9110 section 7.2); only the characters a browser sends. */
const HOST_HEADER = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::\d{1,5})?$/;

/** The name of a Host header, lowercase, without brackets, port or a final dot; undefined when malformed. */
export function hostName(host: string): string | undefined {
  const match = HOST_HEADER.exec(host);
  if (!match) return undefined;
  if (match[1] !== undefined) return isIP(match[1]) === 6 ? match[1].toLowerCase() : undefined;
  return match[2]!.toLowerCase().replace(/\.$/, '');
}

function isLocalhostName(name: string): boolean {
  return name === 'localhost' || name.endsWith('.localhost');
}

/** One entry of `allowed_hosts` (or public_url's host) as a matcher: `.example.com` is the domain and everything under it. */
function nameMatcher(entry: string): (name: string) => boolean {
  const bare = entry.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
  if (!bare.startsWith('.')) return (name) => name === bare;
  const domain = bare.slice(1);
  return (name) => name === domain || name.endsWith(bare);
}

/** The names an operator configured for this listener. */
function configuredNames(settings: AdminSettings): string[] {
  const names = [...(settings.allowedHosts ?? [])];
  if (settings.publicUrl) names.push(new URL(settings.publicUrl).hostname);
  return names;
}

export function createHostCheck(settings: AdminSettings): HostCheck {
  const matchers = configuredNames(settings).map(nameMatcher);
  return (host) => {
    // No Host at all is HTTP/1.0 from a script; a browser always sends one, so it is no rebinding.
    if (host === undefined) return true;
    const name = hostName(host);
    if (name === undefined) return false;
    return isIP(name) !== 0 || isLocalhostName(name) || matchers.some((matches) => matches(name));
  };
}
