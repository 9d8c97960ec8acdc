// GET, PUT, DELETE /register/{client_id}: the client configuration endpoint (RFC 7592 §2), with the client's
// registration access token; functions/usecases/registration.ts.
import { httpHandler, json, jsonBody, noContent } from '../runtime/http.ts';
import { deleteRegisteredClient, readClient, registrationEnabled, updateClient } from '../usecases/registration.ts';

export const handler = httpHandler('client-configuration', async (event) => {
  if (!registrationEnabled()) return json(404, { error: 'not_found' });
  const clientId = event.pathParameters?.client_id ?? '';
  const authorization = event.headers.authorization;
  switch (event.requestContext.http.method) {
    case 'PUT':
      return json(200, await updateClient(clientId, authorization, jsonBody(event, 'invalid_client_metadata')));
    case 'DELETE':
      await deleteRegisteredClient(clientId, authorization);
      return noContent();
    default:
      return json(200, await readClient(clientId, authorization));
  }
});
