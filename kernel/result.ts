/**
 * Expected outcomes are values, bugs are exceptions. A domain function that can refuse (accepting a
 * resolved alert, a shift with nobody on duty) returns a Result; the HTTP layer maps `code` to a status
 * in one place.
 */
export type Result<T, C extends string = string> = Ok<T> | Err<C>;
export interface Ok<T> {
  readonly ok: true;
  readonly value: T;
}
export interface Err<C extends string> {
  readonly ok: false;
  readonly code: C;
  readonly message: string;
  readonly details?: Record<string, unknown>;
}

export const ok = <T>(value: T): Ok<T> => ({ ok: true, value });
export const err = <C extends string>(code: C, message: string, details?: Record<string, unknown>): Err<C> =>
  details === undefined ? { ok: false, code, message } : { ok: false, code, message, details };
