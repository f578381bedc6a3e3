/**
 * Finds keys the schema does not know. Nebula ignores them silently; we warn (with the key path) because a typo
 * such as `lighthous:` otherwise just leaves a node without lighthouses.
 */
import type { z } from 'zod';
import { formatPath } from './errors';
import { LIST_ITEMS, SECTION_SHAPES } from './fields';

function isMap(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function findUnknownKeys(schema: z.ZodType, value: unknown, path: (string | number)[] = [], out: string[] = []): string[] {
  const shape = SECTION_SHAPES.get(schema);
  if (shape !== undefined) {
    if (!isMap(value)) return out;
    for (const [key, v] of Object.entries(value)) {
      const sub = shape[key];
      if (sub === undefined) out.push(formatPath([...path, key]));
      else findUnknownKeys(sub, v, [...path, key], out);
    }
    return out;
  }
  const item = LIST_ITEMS.get(schema);
  if (item !== undefined && Array.isArray(value)) value.forEach((v, i) => findUnknownKeys(item, v, [...path, i], out));
  return out;
}
