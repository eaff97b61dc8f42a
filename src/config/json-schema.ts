import { z } from 'zod';
import { SECRET_FILE_KEYS } from './load.js';
import { configSchema } from './schema.js';

type JsonSchema = { properties?: Record<string, JsonSchema>; items?: JsonSchema; additionalProperties?: unknown; [k: string]: unknown };

/**
 * The config file's JSON Schema for editors (yaml-language-server), generated from the zod
 * schema so the two cannot drift. The loader reads `password_file` and friends before
 * validation; the editor schema lists them beside the keys they fill.
 */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  addSecretFileKeys(schema);
  return { ...schema, title: 'oauth-mail-proxy configuration', description: 'See config.example.yaml and README.md.' };
}

function addSecretFileKeys(node: JsonSchema): void {
  if (node.properties) {
    for (const fileKey of SECRET_FILE_KEYS) {
      const target = fileKey.slice(0, -'_file'.length);
      if (target in node.properties) {
        node.properties[fileKey] = { type: 'string', description: `path of a file whose content is ${target}` };
      }
    }
    for (const child of Object.values(node.properties)) addSecretFileKeys(child);
  }
  if (node.items) addSecretFileKeys(node.items);
  if (node.additionalProperties && typeof node.additionalProperties === 'object') addSecretFileKeys(node.additionalProperties as JsonSchema);
}
