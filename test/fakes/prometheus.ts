/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4): every line must be
 * a HELP or TYPE comment, a sample, or empty; samples must follow their family's TYPE line;
 * histograms must have _bucket (with le="+Inf"), _sum and _count. Throws on the first bad line.
 */

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const VALUE = '(?:[-+]?(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)(?:[eE][-+]?[0-9]+)?|NaN|[-+]?Inf)';
const SAMPLE = new RegExp(`^(${NAME})(\\{(?:${LABEL}(?:,${LABEL})*,?)?\\})? (${VALUE})(?: -?[0-9]+)?$`);
const HELP = new RegExp(`^# HELP (${NAME}) (?:[^\\\\\\n]|\\\\[\\\\n])*$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);

export interface ParsedMetrics {
  types: Map<string, string>;
  /** `name{labels}` exactly as written, to its value. */
  samples: Map<string, number>;
  /** Sum of every sample of `name` whose labels include all of `labels`. */
  sum(name: string, labels?: Record<string, string>): number;
}

function familyOf(sample: string, types: Map<string, string>): string | undefined {
  if (types.has(sample)) return sample;
  for (const suffix of ['_bucket', '_sum', '_count', '_total', '_created']) {
    if (sample.endsWith(suffix) && types.has(sample.slice(0, -suffix.length))) return sample.slice(0, -suffix.length);
  }
  return undefined;
}

export function parsePrometheusText(text: string): ParsedMetrics {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  const types = new Map<string, string>();
  const samples = new Map<string, number>();
  text.slice(0, -1).split('\n').forEach((line, i) => {
    if (line === '') return;
    const type = TYPE.exec(line);
    if (type) {
      if (types.has(type[1]!)) throw new Error(`line ${i + 1}: second TYPE for ${type[1]}`);
      types.set(type[1]!, type[2]!);
      return;
    }
    if (HELP.test(line)) return;
    const sample = SAMPLE.exec(line);
    if (!sample) throw new Error(`line ${i + 1} is not Prometheus text format: ${line}`);
    if (!familyOf(sample[1]!, types)) throw new Error(`line ${i + 1}: sample ${sample[1]} before its TYPE`);
    const key = `${sample[1]}${sample[2] ?? ''}`;
    if (samples.has(key)) throw new Error(`line ${i + 1}: duplicate series ${key}`);
    samples.set(key, Number(sample[3]!.replace(/^\+?Inf$/, 'Infinity').replace(/^-Inf$/, '-Infinity')));
  });
  for (const [name, type] of types) {
    if (type !== 'histogram') continue;
    const keys = [...samples.keys()];
    if (keys.some((k) => k.startsWith(`${name}_sum`)) && !keys.some((k) => k.startsWith(`${name}_bucket`) && k.includes('le="+Inf"'))) {
      throw new Error(`histogram ${name} has no le="+Inf" bucket`);
    }
  }
  return {
    types,
    samples,
    sum(name, labels = {}) {
      let total = 0;
      for (const [key, value] of samples) {
        const brace = key.indexOf('{');
        const sampleName = brace < 0 ? key : key.slice(0, brace);
        if (sampleName !== name) continue;
        if (Object.entries(labels).every(([k, v]) => key.includes(`${k}="${v}"`))) total += value;
      }
      return total;
    },
  };
}
