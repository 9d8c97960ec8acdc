// Enrolling authentication devices (docs/device-api.md, "Enrolling devices"): one-time codes, issued by a device of
// the user or by an operator (`npm run admin -- devices code`), and the enrolment that uses one. The rules are
// core/enrolment.ts; this applies them with the store, SNS and the limit on failed attempts per source address.
// Every step that takes something (the proof's jti, a device slot, the code) is a conditional write, and a refused
// enrolment gives back what it took: no code used, no slot held.
import { randomId, sha256b64u } from '../core/crypto.ts';
import type { DeviceChannel } from '../core/device-channel.ts';
import {
  ENROLMENT_CODE_BYTES,
  enrolUrl,
  parseEnrolmentRequest,
  verifyEnrolmentProof,
  type EnrolmentRequest,
} from '../core/enrolment.ts';
import { OAuthError } from '../core/errors.ts';
import type { Device, StoredChannel } from '../core/model.ts';
import {
  claimDeviceSlot,
  getEnrolmentCode,
  getUser,
  putDevice,
  putEnrolmentCode,
  releaseDeviceSlot,
  restoreEnrolmentCode,
  useEnrolmentCode,
  useOnce,
} from '../adapters/store.ts';
import { createPlatformEndpoint, requirePlatform } from '../adapters/push-endpoints.ts';
import { publishDeviceEnrolled } from '../adapters/device-notifier.ts';
import { reserveEnrolmentAttempt } from './rate-limit.ts';
import { errorFields, log } from '../runtime/log.ts';
import { config } from '../config.ts';

/** What `POST /device/enrolment-codes` and `npm run admin -- devices code` answer; `expires_at` in epoch seconds. */
export type EnrolmentCodeView = { code: string; expires_at: number; enrol_url: string };

/**
 * A new one-time code enrolling another device of `sub`: 256 random bits, stored only as their SHA-256.
 * `createdBy` says who asked (a device id or an operator), never a secret.
 */
export async function issueEnrolmentCode(sub: string, createdBy: string): Promise<EnrolmentCodeView> {
  const { issuer, enrolmentCodeTtl } = config();
  const code = randomId(ENROLMENT_CODE_BYTES);
  const expiresAt = Date.now() + enrolmentCodeTtl * 1000;
  await putEnrolmentCode(sha256b64u(code), { sub, expires_at: expiresAt, created_by: createdBy });
  log.info('enrolment code issued', { sub, createdBy });
  return { code, expires_at: Math.floor(expiresAt / 1000), enrol_url: enrolUrl(issuer, code) };
}

export type EnrolmentResult = { ok: true; deviceId: string } | { ok: false; error: 'too_many_devices' };

const invalidGrant = (why: string) => new OAuthError('invalid_grant', why);
const CODE_REFUSED = 'the enrolment code is unknown, used or expired';

/**
 * `POST /device/enrol`. Failed attempts count against the source address (counted first, so concurrent guesses
 * cannot exceed the limit; given back when the enrolment succeeds or only the cap refused it).
 */
export async function enrolDevice(body: unknown, sourceIp: string): Promise<EnrolmentResult> {
  const now = Date.now();
  const attempt = reserveEnrolmentAttempt(sourceIp, Math.floor(now / 1000));
  attempt.catch(() => undefined);
  try {
    const { issuer, localMode } = config();
    const request = parseEnrolmentRequest(body, { localMode });
    if (request.channel?.type === 'sns') requirePlatform(request.channel.platform);
    const proof = await verifyEnrolmentProof(request, issuer, Math.floor(now / 1000));
    const giveBack = await attempt; // beyond the limit: 429 before anything is taken
    const result = await enrol(request, proof, now);
    await giveBack().catch(() => undefined);
    return result;
  } catch (e) {
    await attempt; // beyond the limit, the 429 is the answer whatever else was wrong
    throw e;
  }
}

async function enrol(
  request: EnrolmentRequest,
  proof: { jti: string; exp: number },
  now: number,
): Promise<EnrolmentResult> {
  const hash = sha256b64u(request.code);
  const [fresh, code] = await Promise.all([
    useOnce(`enrol:${hash}`, proof.jti, proof.exp, Math.floor(now / 1000)),
    getEnrolmentCode(hash),
  ]);
  if (!fresh) throw invalidGrant('proof was already used');
  if (!code || code.used_at !== undefined || code.expires_at <= now) throw invalidGrant(CODE_REFUSED);
  const { sub } = code;
  // 128 random bits; the prefix keeps ids from starting with "-" (command-line arguments, e.g. the admin CLI).
  const deviceId = `dev_${randomId(16)}`;
  // The slot is claimed alongside the user read (one round trip); a user who cannot enrol gives it back.
  const [user, claimed] = await Promise.all([
    getUser(sub),
    claimDeviceSlot(sub, deviceId, config().maxDevicesPerUser, now),
  ]);
  if (!user || user.disabled) {
    if (claimed) await releaseDeviceSlot(sub, deviceId);
    throw invalidGrant(CODE_REFUSED);
  }
  if (!claimed) {
    log.warn('device enrolment refused: too many devices', { sub });
    return { ok: false, error: 'too_many_devices' };
  }
  // Exactly one enrolment uses the code; a lost race gives the slot back.
  if (!(await useEnrolmentCode(hash, now))) {
    await releaseDeviceSlot(sub, deviceId);
    throw invalidGrant(CODE_REFUSED);
  }
  try {
    const channel = request.channel && (await storedChannel(request.channel));
    const device: Device = {
      device_id: deviceId,
      sub,
      jwk: request.jwk,
      created_at: now,
      ...(request.name !== undefined ? { name: request.name } : {}),
      ...(channel ? { channel } : {}),
    };
    await putDevice(device);
  } catch (e) {
    // Not enrolled after all (SNS refused the push token, or a write failed): the code and the slot come back.
    await Promise.allSettled([restoreEnrolmentCode(hash, now), releaseDeviceSlot(sub, deviceId)]);
    throw e;
  }
  log.info('device enrolled', { sub, deviceId, channel: request.channel?.type ?? 'none' });
  try {
    await publishDeviceEnrolled({
      sub,
      device_id: deviceId,
      ...(request.name !== undefined ? { name: request.name } : {}),
    });
  } catch (e) {
    log.error('enrolment notification failed', { sub, deviceId, ...errorFields(e) });
  }
  return { ok: true, deviceId };
}

/** A channel as kept: an SNS push token becomes the platform endpoint made from it (the token is not kept). */
export async function storedChannel(channel: DeviceChannel): Promise<StoredChannel> {
  if (channel.type === 'webpush') return channel;
  return {
    type: 'sns',
    platform: channel.platform,
    endpoint_arn: await createPlatformEndpoint(channel.platform, channel.token),
  };
}
