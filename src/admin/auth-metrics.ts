import { Counter, Gauge, type Registry } from 'prom-client';
import type { LoginThrottle } from '../accounts/throttle.js';
import type { AuthEvents } from '../accounts/types.js';

/**
 * Brute-force metrics (SPEC section 4, issue 8): refused local logins by protocol and by how
 * the throttle answered them, lockouts, and the addresses locked out now. Labels never carry
 * an address or a user name, so a scan from many addresses cannot blow up the series count.
 */
export function registerAuthMetrics(registry: Registry, throttle: LoginThrottle): AuthEvents {
  const registers = [registry];
  const failures = new Counter({
    name: 'oauth_mail_proxy_login_failures_total',
    help: 'Local logins refused, by protocol and throttle response (immediate, delayed, locked_out)',
    labelNames: ['protocol', 'throttle'],
    registers,
  });
  const lockouts = new Counter({ name: 'oauth_mail_proxy_login_lockouts_total', help: 'Client addresses locked out after repeated login failures, by protocol', labelNames: ['protocol'], registers });
  new Gauge({
    name: 'oauth_mail_proxy_login_locked_out_addresses',
    help: 'Client addresses (IPv6: /64 networks) locked out now',
    registers,
    collect() {
      this.set(throttle.lockedOutCount());
    },
  });
  return {
    loginFailed({ protocol, delayMs, lockedOut }) {
      failures.inc({ protocol, throttle: lockedOut ? 'locked_out' : delayMs > 0 ? 'delayed' : 'immediate' });
    },
    lockedOut({ protocol }) {
      lockouts.inc({ protocol });
    },
  };
}
