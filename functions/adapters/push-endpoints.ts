// SNS mobile push endpoints (docs/device-api.md, "Channels"): a native app's push token (FCM, APNs) becomes an SNS
// platform endpoint in the platform application configured for its platform (CIBA_SNS_PLATFORM_*_ARN). The server
// keeps the endpoint ARN, never the token. On the local stack the local SNS (local/sns.ts) serves both actions.
import type { SnsPlatform } from '../core/device-channel.ts';
import { OAuthError } from '../core/errors.ts';
import { CreatePlatformEndpointCommand, DeleteEndpointCommand } from '@aws-sdk/client-sns';
import { sns } from './sns.ts';
import { errorFields, log } from '../runtime/log.ts';
import { config } from '../config.ts';

/** The platform application of `platform`, or undefined when this server has none configured. */
export function platformApplicationArn(platform: SnsPlatform): string | undefined {
  const cfg = config();
  const arn = { fcm: cfg.snsPlatformFcmArn, apns: cfg.snsPlatformApnsArn, apns_sandbox: cfg.snsPlatformApnsSandboxArn }[
    platform
  ];
  return arn || undefined;
}

/** Refuses an sns channel this server cannot serve: checked before anything is consumed. */
export function requirePlatform(platform: SnsPlatform): string {
  const arn = platformApplicationArn(platform);
  if (!arn) throw new OAuthError('invalid_request', `the sns channel for ${platform} is not configured on this server`);
  return arn;
}

/**
 * Creates (or finds: SNS answers the same ARN for the same token) the platform endpoint of a push token. A token SNS
 * refuses is invalid_request; any other failure (SNS unavailable, permissions) is temporarily_unavailable.
 */
export async function createPlatformEndpoint(platform: SnsPlatform, token: string): Promise<string> {
  const application = requirePlatform(platform);
  try {
    const out = await sns().send(
      new CreatePlatformEndpointCommand({ PlatformApplicationArn: application, Token: token }),
    );
    if (!out.EndpointArn) throw new Error('CreatePlatformEndpoint returned no EndpointArn');
    return out.EndpointArn;
  } catch (e) {
    const name = (e as { name?: string } | null)?.name;
    if (name === 'InvalidParameterException' || name === 'InvalidParameter') {
      throw new OAuthError('invalid_request', `channel: the ${platform} push token was refused`);
    }
    log.error('CreatePlatformEndpoint failed', { platform, ...errorFields(e) });
    throw new OAuthError('temporarily_unavailable', 'the push channel could not be set up; try again', {
      headers: { 'Retry-After': '1' },
      cause: e,
    });
  }
}

/** Deletes a platform endpoint (idempotent: a missing one is fine). */
export async function deletePlatformEndpoint(endpointArn: string): Promise<void> {
  await sns().send(new DeleteEndpointCommand({ EndpointArn: endpointArn }));
}
