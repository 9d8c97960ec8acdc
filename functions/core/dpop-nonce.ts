// DPoP server nonces (RFC 9449 §8 at the token endpoint, §9 at userinfo), when CIBA_DPOP_NONCE is on. A nonce is
// the number of a 5-minute time slot and an HMAC of it under one server-wide key: any function instance that holds
// the key checks a nonce without a lookup or shared state. The current slot's nonce is handed out (DPoP-Nonce header);
// it is accepted during its slot and the next, so for 5 to 10 minutes. The key is created once and kept in the table
// (functions/adapters/store/dpop-nonce.ts; docs/tokens.md says why it is not sealed).
import { createHmac, timingSafeEqual } from 'node:crypto';

export const DPOP_NONCE_PERIOD_S = 300;
const NONCE = /^([0-9a-z]{1,11})\.([A-Za-z0-9_-]{22})$/;

const slotOf = (nowS: number) => Math.floor(nowS / DPOP_NONCE_PERIOD_S);
const macOf = (key: Uint8Array, slot: number) =>
  createHmac('sha256', key).update(`ciba-dpop-nonce:${slot}`).digest().subarray(0, 16).toString('base64url');

/** The nonce to hand out now: `<slot in base 36>.<128-bit HMAC>` (RFC 9449 §8.1 NQCHAR only). */
export function dpopNonce(key: Uint8Array, nowS: number): string {
  const slot = slotOf(nowS);
  return `${slot.toString(36)}.${macOf(key, slot)}`;
}

/** Whether `nonce` was issued with `key` in this slot or the previous one. */
export function dpopNonceValid(key: Uint8Array, nonce: string, nowS: number): boolean {
  const m = NONCE.exec(nonce);
  if (!m) return false;
  const slot = Number.parseInt(m[1]!, 36);
  const current = slotOf(nowS);
  if (slot !== current && slot !== current - 1) return false;
  const expected = Buffer.from(macOf(key, slot));
  const given = Buffer.from(m[2]!);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
