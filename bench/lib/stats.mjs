// Median, min and max of repeated measurements, and their formatting for the report.

/** @param {number[]} values @returns {{ median: number, min: number, max: number, n: number }} */
export function summarize(values) {
  if (values.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], n: sorted.length };
}

/** "12.3 (11.9–12.8)": median with min–max. */
export function formatSummary(s, digits = 1) {
  if (!s || s.n === 0) return 'n/a';
  const f = (v) => v.toFixed(digits);
  return s.n === 1 ? f(s.median) : `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
}

/** Ratio of medians. */
export function ratio(proxied, direct) {
  return proxied && direct && direct.median > 0 ? proxied.median / direct.median : NaN;
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs `work(i)` for i in [0, count) with at most `parallel` at a time; collects results and
 * errors (a failed item does not stop the others).
 */
export async function pool(count, parallel, work) {
  const results = new Array(count);
  const errors = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      try {
        results[i] = await work(i);
      } catch (err) {
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
  return { results, errors };
}
