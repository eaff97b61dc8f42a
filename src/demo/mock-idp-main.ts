import { parseArgs } from 'node:util';
import { startMockIdp, type MockClient, type MockUser } from './mock-idp.js';

/**
 * Runs the mock identity provider on its own, for the Dovecot end-to-end setup:
 *   node dist/demo/mock-idp-main.js --port 9080 --user alice@example.com:secret \
 *     --client proxy:proxy-secret --lifetime 3600 --rotate
 * Prints one JSON line with its endpoints, then serves until SIGINT or SIGTERM.
 */

function splitPair(value: string, what: string): [string, string | undefined] {
  const colon = value.indexOf(':');
  if (colon === 0) throw new Error(`--${what} expects name:secret`);
  return colon < 0 ? [value, undefined] : [value.slice(0, colon), value.slice(colon + 1)];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      user: { type: 'string', multiple: true, default: [] },
      client: { type: 'string', multiple: true, default: [] },
      lifetime: { type: 'string', default: '3600' },
      rotate: { type: 'boolean', default: false },
    },
  });
  const users: MockUser[] = values.user.map((u) => {
    const [username, password] = splitPair(u, 'user');
    return { username, password: password ?? '' };
  });
  const clients: MockClient[] = values.client.map((c) => {
    const [clientId, clientSecret] = splitPair(c, 'client');
    return { clientId, clientSecret };
  });
  const idp = await startMockIdp({
    host: values.host,
    port: Number(values.port),
    users,
    ...(clients.length > 0 ? { clients } : {}),
    accessTokenLifetimeSec: Number(values.lifetime),
    rotateRefreshTokens: values.rotate,
  });
  const { url, tokenUrl, introspectionUrl, deviceAuthorizationUrl, authorizeUrl, verificationUrl } = idp;
  process.stdout.write(`${JSON.stringify({ url, tokenUrl, introspectionUrl, deviceAuthorizationUrl, authorizeUrl, verificationUrl })}\n`);
  const stop = () => void idp.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`mock-idp: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
