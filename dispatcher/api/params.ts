/** Parameters several routes share (kept apart from app.ts, which imports every route module). */
import { z } from 'zod';
import { ID_PATTERN } from '../terms.ts';

/** `:id` of a grid, household, staff member, device, alert or override (DEV-02 grammar). */
export const idParam = z.object({ id: z.string().regex(ID_PATTERN, 'invalid id') });

/**
 * An instant in a query or body: epoch milliseconds from 1970 to 2100. Larger numbers are no date the
 * service can compute with (9e15 is past JavaScript's last Date): 400, never 500.
 */
export const epochMs = z.coerce
  .number()
  .int()
  .min(0)
  .max(4_102_444_800_000, 'expected epoch milliseconds before 2100');
