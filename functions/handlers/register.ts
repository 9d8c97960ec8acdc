// POST /register: dynamic client registration (RFC 7591 §3), functions/usecases/registration.ts.
import { httpHandler, json, jsonBody } from '../runtime/http.ts';
import { registerClient, registrationEnabled } from '../usecases/registration.ts';

export const handler = httpHandler('register', async (event) => {
  if (!registrationEnabled()) return json(404, { error: 'not_found' });
  return json(201, await registerClient(jsonBody(event, 'invalid_client_metadata'), event.headers.authorization));
});
