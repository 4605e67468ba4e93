/**
 * The API explains itself (OPS-02, OPS-05): the OpenAPI at `/docs` gives every operation a tag, a summary,
 * a description, and every operation that takes a body a schema of that body, never `{}`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../kernel/clock.ts';
import { instant } from '../../kernel/time.ts';
import { type Harness, startHarness } from '../helpers.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

interface Operation {
  tags?: string[];
  summary?: string;
  description?: string;
  requestBody?: { content?: Record<string, { schema?: Record<string, unknown> }> };
}

const BODY_METHODS = new Set(['post', 'put', 'patch']);
/** Actions whose whole meaning is the path (log out, rotate a secret): no body to describe. */
const NO_BODY = new Set([
  'post /api/auth/logout',
  'post /api/devices/{id}/rotate-secret',
  'post /api/devices/{id}/disable',
  'post /api/devices/{id}/enable',
]);

describe('the OpenAPI document', () => {
  it('gives every operation a tag, a summary, a description and a body schema', async () => {
    h = await startHarness({ clock: new ManualClock(instant(Date.parse('2026-03-10T10:00:00+08:00'))) });
    const res = await fetch(`${h.baseUrl}/docs/json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { paths: Record<string, Record<string, Operation>>; tags?: unknown[] };
    const missing: string[] = [];
    let count = 0;
    for (const [path, ops] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(ops)) {
        count++;
        const name = `${method} ${path}`;
        if (!op.tags?.length) missing.push(`${name}: tag`);
        if (!op.summary?.trim()) missing.push(`${name}: summary`);
        if (!op.description?.trim()) missing.push(`${name}: description`);
        if (BODY_METHODS.has(method) && !NO_BODY.has(name)) {
          const schemas = Object.values(op.requestBody?.content ?? {}).map((c) => c.schema ?? {});
          const described = schemas.some(
            (s) => Object.keys(s).some((k) => k !== '$schema') && JSON.stringify(s) !== '{}',
          );
          if (!described) missing.push(`${name}: body schema`);
        }
      }
    expect(count).toBeGreaterThan(25);
    expect(missing).toEqual([]);
  });
});
