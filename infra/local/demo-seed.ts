// The built-in demo seed (CONTRACT.md seed format), loaded by `npm start` when CIBA_SEED is not set.
// The demo device's private key is published here on purpose: it exists only so `npm run demo` can play the
// phone. Never register it anywhere but the local stack.
import type { JWK } from 'jose';

export const DEMO_CLIENT = {
  client_id: 'demo-rp',
  client_secret: 'demo-rp-secret-0123456789abcdef',
} as const;

export const DEMO_DEVICE_ID = 'alice-phone';

export const DEMO_DEVICE_PRIVATE_JWK: JWK = {"kty":"EC","crv":"P-256","x":"ynwX_EEepxaPHlfGjWG4GCGClhEc-sXxit3ZydsXDWI","y":"E58Dk6ztlqBS_Cz8AKeyvJXl3QaQ2P-mbKtYOgaLp2w","d":"NsolXdHJv-ljRVJJkBy_J3nuZg3WvuoIpkdzYVJb9dc"};

const { d: _private, ...devicePublicJwk } = DEMO_DEVICE_PRIVATE_JWK;

export const DEMO_SEED = {
  clients: [
    {
      client_id: DEMO_CLIENT.client_id,
      client_secret: DEMO_CLIENT.client_secret,
      client_name: 'Demo Call Centre',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['urn:openid:params:grant-type:ciba', 'refresh_token'],
      scope: 'openid profile email phone',
      backchannel_token_delivery_mode: 'poll',
      backchannel_user_code_parameter: false,
      id_token_signed_response_alg: 'RS256',
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
