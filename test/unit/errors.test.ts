import { describe, expect, it } from 'vitest';
import { describeError, ProxyError } from '../../src/errors.js';

describe('describeError', () => {
  it('follows the cause chain, with system error codes', () => {
    const sys = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    const err = new ProxyError('upstream_unavailable', 'IMAP server 127.0.0.1:1: login failed', { cause: sys });
    expect(describeError(err)).toBe('IMAP server 127.0.0.1:1: login failed: connect ECONNREFUSED 127.0.0.1:1 (ECONNREFUSED)');
  });

  it('does not say a cause twice when the message already quotes it', () => {
    const sys = Object.assign(new Error('listen EADDRINUSE: address already in use 127.0.0.1:1143'), { code: 'EADDRINUSE' });
    const err = new ProxyError('config_invalid', `cannot listen on 127.0.0.1:1143: ${describeError(sys)}`, { cause: sys });
    expect(describeError(err)).toBe('cannot listen on 127.0.0.1:1143: listen EADDRINUSE: address already in use 127.0.0.1:1143 (EADDRINUSE)');
  });
});
