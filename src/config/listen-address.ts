import { isIP } from 'node:net';
import { ProxyError } from '../errors.js';

/**
 * A `listen` value, "host:port", parsed once for both the schema (so that `check` refuses what
 * `serve` could not bind) and the listeners that bind it. Pure: config must not depend on net,
 * so net imports this from here.
 */
export interface ListenAddress {
  /** IPv4 literal, IPv6 literal without its brackets, or a DNS name such as localhost. */
  host: string;
  port: number;
}

const SHAPE = /^(?:\[([^\]]*)\]|([^\s:[\]]*)):(\d{1,5})$/;
/** RFC 1123 labels: letters, digits and inner hyphens, up to 63 characters each. */
const DNS_LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/** "127.0.0.1:1143", "[::1]:1143", "localhost:1143" to host and port, or why it is not one. */
export function splitListen(listen: string): ListenAddress | { problem: string } {
  const m = SHAPE.exec(listen);
  if (!m) return { problem: 'expected host:port, e.g. 127.0.0.1:1143 or [::1]:1143' };
  const [, bracketed, bare = '', digits] = m;
  const port = Number(digits);
  if (port > 65535) return { problem: `port ${port} is out of range (0-65535)` };
  if (bracketed !== undefined) {
    return isIP(bracketed) === 6 ? { host: bracketed, port } : { problem: `[${bracketed}] is not an IPv6 address` };
  }
  const problem = hostProblem(bare);
  return problem ? { problem } : { host: bare, port };
}

function hostProblem(host: string): string | undefined {
  if (host === '' || host === '*') return 'expected a host before the port: 0.0.0.0 for every IPv4 address, [::] for every address';
  // Digits and dots only can only mean an IPv4 literal; 999.1.1.1 must not go on to a DNS lookup.
  if (/^[\d.]+$/.test(host)) return isIP(host) === 4 ? undefined : `${host} is not an IPv4 address`;
  const labels = host.replace(/\.$/, '').split('.');
  if (host.length > 253 || !labels.every((l) => DNS_LABEL.test(l))) return `${host} is not an IP address or host name`;
  return undefined;
}

/** Why `listen` cannot be bound, or undefined when it is a usable host:port. */
export function listenProblem(listen: string): string | undefined {
  const parsed = splitListen(listen);
  return 'problem' in parsed ? parsed.problem : undefined;
}

/** As splitListen, for values the schema has already accepted; throws config_invalid otherwise. */
export function parseListen(listen: string): ListenAddress {
  const parsed = splitListen(listen);
  if ('problem' in parsed) throw new ProxyError('config_invalid', `listen "${listen}": ${parsed.problem}`);
  return parsed;
}
