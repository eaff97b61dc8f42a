// The Docker HEALTHCHECK (and the same check in CI, run by scripts/check-container-steps.mjs):
// exit 0 when the admin listener's /healthz answers 2xx, 1 otherwise. /healthz needs no
// credentials and answers 200 while the listeners are up. The admin listener's address is the
// config's `admin.listen`; set HEALTHCHECK_URL when it is not the default 127.0.0.1:8025.
const url = process.env.HEALTHCHECK_URL || 'http://127.0.0.1:8025/healthz';
try {
  // Below Docker's --timeout, so that a hung listener reads as "unhealthy", not "timed out".
  const res = await fetch(url, { signal: AbortSignal.timeout(4_000) });
  if (!res.ok) process.stderr.write(`healthcheck: ${url} answered ${res.status}\n`);
  process.exitCode = res.ok ? 0 : 1;
} catch (err) {
  process.stderr.write(`healthcheck: ${url}: ${err instanceof Error ? (err.cause?.code ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
}
