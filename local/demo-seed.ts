// The built-in demo seed (seed file format, docs/seed-file.md), loaded by `npm start` when CIBA_SEED is not set: a poll client,
// a ping client and a push client (CIBA Core §5) and alice with her phone. The ping and push clients are notified at
// a loopback receiver that `npm run demo -- --mode ping|push` runs, on the port demoReceiverPort() gives both sides.
// The demo device's private key is published here on purpose: it exists only so `npm run demo` can play the
// phone. Never register it anywhere but the local stack.
import type { JWK } from 'jose';

export const DEMO_CLIENT = {
  client_id: 'demo-rp',
  client_secret: 'demo-rp-secret-0123456789abcdef',
} as const;

/** Ping client (CIBA §10.2): told `{auth_req_id}` at http://127.0.0.1:<receiver port>/ping, then redeems. */
export const DEMO_PING_CLIENT = {
  client_id: 'demo-ping',
  client_secret: 'demo-ping-secret-0123456789abcdef',
} as const;

/** Push client (CIBA §10.3): receives the tokens themselves at http://127.0.0.1:<receiver port>/push. */
export const DEMO_PUSH_CLIENT = {
  client_id: 'demo-push',
  client_secret: 'demo-push-secret-0123456789abcdef',
} as const;

export const DEMO_RECEIVER_PATHS = { ping: '/ping', push: '/push' } as const;

/**
 * The port of the demo's notification receiver: CIBA_DEMO_RECEIVER_PORT if set, else the server's port + 1.
 * `npm start` registers the demo ping/push clients with it and `npm run demo` listens on it, so both must agree.
 */
export function demoReceiverPort(serverPort: number, env: Record<string, string | undefined> = process.env): number {
  const text = env.CIBA_DEMO_RECEIVER_PORT;
  const port = text ? Number(text) : serverPort + 1;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(
      text
        ? `CIBA_DEMO_RECEIVER_PORT must be a port number (1-65535), got ${JSON.stringify(text)}`
        : `no receiver port after server port ${serverPort}; set CIBA_DEMO_RECEIVER_PORT`,
    );
  }
  return port;
}

export const demoReceiverUrl = (receiverPort: number, mode: 'ping' | 'push'): string =>
  `http://127.0.0.1:${receiverPort}${DEMO_RECEIVER_PATHS[mode]}`;

export const DEMO_DEVICE_ID = 'alice-phone';

export const DEMO_DEVICE_PRIVATE_JWK: JWK = {
  kty: 'EC',
  crv: 'P-256',
  x: 'ynwX_EEepxaPHlfGjWG4GCGClhEc-sXxit3ZydsXDWI',
  y: 'E58Dk6ztlqBS_Cz8AKeyvJXl3QaQ2P-mbKtYOgaLp2w',
  d: 'NsolXdHJv-ljRVJJkBy_J3nuZg3WvuoIpkdzYVJb9dc',
};

const { d: _private, ...devicePublicJwk } = DEMO_DEVICE_PRIVATE_JWK;

const CIBA_GRANT = 'urn:openid:params:grant-type:ciba';

/** The demo seed, with the ping and push clients notified at the loopback receiver on `receiverPort`. */
export function demoSeed(receiverPort: number) {
  const common = {
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: [CIBA_GRANT, 'refresh_token'],
    scope: 'openid profile email phone',
    backchannel_user_code_parameter: false,
    id_token_signed_response_alg: 'RS256',
  };
  return {
    clients: [
      {
        client_id: DEMO_CLIENT.client_id,
        client_secret: DEMO_CLIENT.client_secret,
        client_name: 'Demo Call Centre',
        ...common,
        backchannel_token_delivery_mode: 'poll',
      },
      {
        client_id: DEMO_PING_CLIENT.client_id,
        client_secret: DEMO_PING_CLIENT.client_secret,
        client_name: 'Demo Kiosk (ping)',
        ...common,
        backchannel_token_delivery_mode: 'ping',
        backchannel_client_notification_endpoint: demoReceiverUrl(receiverPort, 'ping'),
      },
      {
        client_id: DEMO_PUSH_CLIENT.client_id,
        client_secret: DEMO_PUSH_CLIENT.client_secret,
        client_name: 'Demo POS (push)',
        ...common,
        backchannel_token_delivery_mode: 'push',
        backchannel_client_notification_endpoint: demoReceiverUrl(receiverPort, 'push'),
      },
    ],
    users: [
      {
        sub: 'alice',
        email: 'alice@example.com',
        email_verified: true,
        phone_number: '+15551234567',
        name: 'Alice Example',
        given_name: 'Alice',
        family_name: 'Example',
        devices: [{ device_id: DEMO_DEVICE_ID, jwk: devicePublicJwk }],
      },
    ],
  };
}

/**
 * The demo seed for a server on the default port 8080 (receiver on 8081).
 * @deprecated use demoSeed(demoReceiverPort(serverPort)), which follows the server's real port and CIBA_DEMO_RECEIVER_PORT.
 */
export const DEMO_SEED = demoSeed(8081);
