import { isIP } from 'node:net';

/**
 * Client networks as the config writes them ("10.0.0.0/24", "192.168.1.20", "fd00::/8"), parsed
 * strictly: the prefix is plain decimal, so that "/00", "/0x0" or "/ 0" cannot pass for a
 * narrow network while Number() reads them as /0.
 */
export interface Cidr {
  family: 4 | 6;
  /** The address as written, without the prefix. */
  host: string;
  /** The address as a number (32 or 128 bits). */
  address: bigint;
  prefix: number;
}

/** A network as the relay check compares it: no text. */
type Network = Omit<Cidr, 'host'>;

export function parseCidr(text: string): Cidr | undefined {
  const [addr = '', bits, extra] = text.split('/');
  const family = isIP(addr);
  if (extra !== undefined || (family !== 4 && family !== 6)) return undefined;
  const max = family === 4 ? 32 : 128;
  if (bits !== undefined && !/^(0|[1-9][0-9]{0,2})$/.test(bits)) return undefined;
  const prefix = bits === undefined ? max : Number(bits);
  if (prefix > max) return undefined;
  return { family, host: addr, address: family === 4 ? ipv4ToBigInt(addr) : ipv6ToBigInt(addr), prefix };
}

/**
 * The widest public relay network taken: a /16 of IPv4, a /48 of IPv6 (a site's allocation).
 * Networks inside the private and local ranges below are not reachable from the Internet and
 * may be as wide as those ranges.
 */
export const WIDEST_RELAY_PREFIX = { 4: 16, 6: 48 } as const;

/** RFC 1918, loopback, link-local, shared address space (RFC 6598); ULA (RFC 4193), link-local, loopback. */
const LOCAL_RANGES: Cidr[] = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '127.0.0.0/8', '169.254.0.0/16', '100.64.0.0/10', 'fc00::/7', 'fe80::/10', '::1/128']
  .map((text) => parseCidr(text) as Cidr);

/** ::ffff:0:0/96, where IPv4 clients of a dual-stack socket live (RFC 4291 section 2.5.5.2). */
const MAPPED_IPV4 = 0xffffn << 32n;

/**
 * Why a network is too wide to send mail without AUTH from, or undefined. An IPv6 entry that
 * holds IPv4-mapped addresses counts as the IPv4 network it holds: Node's BlockList matches an
 * IPv4 client against it, so ::ffff:0:0/96 is every IPv4 address.
 */
export function tooWideForRelay(cidr: Cidr): string | undefined {
  const net = cidr.family === 6 && holdsMappedIpv4(cidr) ? asIpv4(cidr) : cidr;
  if (LOCAL_RANGES.some((range) => within(net, range))) return undefined;
  const widest = WIDEST_RELAY_PREFIX[net.family];
  if (net.prefix >= widest) return undefined;
  const what = cidr.family === net.family ? `IPv${net.family}` : 'IPv4 (as IPv4-mapped IPv6)';
  return `a public network wider than /${widest} of ${what} would make this an open relay; list the device networks`;
}

/** True when `net` lies inside `range`. */
function within(net: Network, range: Network): boolean {
  if (net.family !== range.family || net.prefix < range.prefix) return false;
  const shift = BigInt((net.family === 4 ? 32 : 128) - range.prefix);
  return net.address >> shift === range.address >> shift;
}

/** The IPv4 network held by an IPv6 network that overlaps ::ffff:0:0/96. */
function asIpv4({ address, prefix }: Cidr): Network {
  return { family: 4, address: address & 0xffffffffn, prefix: Math.max(prefix - 96, 0) };
}

/** True when the network overlaps ::ffff:0:0/96. */
function holdsMappedIpv4({ address, prefix }: Cidr): boolean {
  const shared = BigInt(Math.min(prefix, 96));
  return address >> (128n - shared) === MAPPED_IPV4 >> (128n - shared);
}

function ipv4ToBigInt(addr: string): bigint {
  return addr.split('.').reduce((n, octet) => (n << 8n) | BigInt(Number(octet)), 0n);
}

/** An IPv6 literal (isIP already said it is one) to its 128 bits, an IPv4 tail included. */
function ipv6ToBigInt(addr: string): bigint {
  let text = addr;
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tail?.[1]) {
    const v4 = ipv4ToBigInt(tail[1]);
    text = `${text.slice(0, -tail[1].length)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = rest ? rest.split(':') : [];
  const groups = rest === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.reduce((n, group) => (n << 16n) | BigInt(parseInt(group, 16)), 0n);
}
