// Assertions shared by the core unit tests: an OAuthError with an exact code and HTTP status (and, where several
// branches share a code, the message that shows which rule fired).
import assert from 'node:assert/strict';
import { OAuthError } from '../../../functions/core/errors.ts';

export function isOAuthError(e: unknown, error: string, status: number, message?: RegExp): true {
  assert.ok(
    e instanceof OAuthError,
    `expected an OAuthError, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
  );
  assert.equal(e.error, error, `error code (message: ${e.message})`);
  assert.equal(e.status, status, `HTTP status of ${e.error}`);
  if (message) assert.match(e.message, message);
  return true;
}

export function throwsOAuth(fn: () => unknown, error: string, status: number, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => isOAuthError(e, error, status, message));
}

export async function rejectsOAuth(
  promise: Promise<unknown>,
  error: string,
  status: number,
  message?: RegExp,
): Promise<void> {
  await assert.rejects(promise, (e: unknown) => isOAuthError(e, error, status, message));
}

/** The error a function throws (fails when it does not throw). */
export function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  assert.fail('expected an error to be thrown');
}
