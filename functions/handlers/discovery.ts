// GET and HEAD /.well-known/openid-configuration (OIDC Discovery §4, CIBA Core §4; HEAD: functions/runtime/http.ts).
import { httpHandler, json } from '../runtime/http.ts';
import { providerMetadata } from '../core/discovery.ts';
import { config } from '../config.ts';

export const handler = httpHandler('discovery', async () =>
  json(
    200,
    providerMetadata(config().issuer, config().acrValues, config().mtlsBaseUrl, {
      registration: config().registration === 'on',
      ...(config().authorizationDetailsTypes ? { authorizationDetailsTypes: config().authorizationDetailsTypes } : {}),
    }),
    {
      'Cache-Control': 'public, max-age=300',
      Pragma: '',
    },
  ),
);
